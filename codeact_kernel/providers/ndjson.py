"""A newline-delimited JSON reader (Ollama's streaming format) fed chunk by chunk."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Any

import httpx

from .base import Notice
from .http import Endpoint, StreamFormat, foreign_content, malformed, stream_body
from .lines import LineDecoder
from .retry import RetryPolicy

_FOREIGN_LIMIT = 8192


class MalformedLine(ValueError):
    """A line of the stream is not a JSON object."""


class NDJSONDecoder:
    """Feed body bytes, get one parsed object per complete non-blank line.

    A line of markup is where the stream turned into a web page (a proxy's error
    page): from there on every line goes to `foreign`, and none is parsed.
    """

    def __init__(self) -> None:
        self._lines = LineDecoder()
        self.foreign: list[str] = []

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        """The objects completed by `data`; raises `MalformedLine` on a bad line."""
        return self._take(self._lines.feed(data))

    def close(self) -> list[dict[str, Any]]:
        """The last object when the body does not end with a newline."""
        return self._take(self._lines.close())

    def _take(self, lines: list[str]) -> list[dict[str, Any]]:
        values: list[dict[str, Any]] = []
        for line in lines:
            if self.foreign or line.lstrip().startswith("<"):
                self.foreign.append(line)
            elif line.strip():
                values.append(_parse(line))
        return values


def _parse(line: str) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise MalformedLine(f"not JSON: {line[:200]!r}") from exc
    if not isinstance(value, dict):
        raise MalformedLine(f"not a JSON object: {line[:200]!r}")
    return value


async def ndjson_stream(
    client: httpx.AsyncClient,
    request: httpx.Request,
    endpoint: Endpoint,
    policy: RetryPolicy,
    *,
    expect: StreamFormat,
    shown: Callable[[], bool],
) -> AsyncGenerator[Notice | dict[str, Any], None]:
    """Send `request` (see `stream_body`) and yield its objects, or notices.

    `expect` recognises the dialect's lines in a reply (a JSON document is one line
    too); `shown` tells whether any of the answer has reached the user (for error
    messages).
    """
    decoder = NDJSONDecoder()
    body = stream_body(client, request, endpoint, policy, expect=expect, shown=shown)
    try:
        async with aclosing(body) as chunks:
            async for chunk in chunks:
                if isinstance(chunk, Notice):
                    yield chunk
                    continue
                for value in decoder.feed(chunk):
                    yield value
                # Enough of what came instead of the stream to quote its gist.
                if sum(map(len, decoder.foreign)) > _FOREIGN_LIMIT:
                    break
        for value in decoder.close():
            yield value
    except MalformedLine as exc:
        raise malformed(endpoint, str(exc), shown=shown()) from None
    if decoder.foreign:
        raise foreign_content(endpoint, "\n".join(decoder.foreign).encode(), shown=shown())
