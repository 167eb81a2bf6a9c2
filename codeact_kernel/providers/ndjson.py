"""A newline-delimited JSON reader (Ollama's streaming format) fed chunk by chunk."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Any

import httpx

from .base import Notice
from .http import Endpoint, StreamFormat, malformed, stream_body
from .lines import LineDecoder
from .retry import RetryPolicy


class MalformedLine(ValueError):
    """A line of the stream is not a JSON object."""


class NDJSONDecoder:
    """Feed body bytes, get one parsed object per complete non-blank line."""

    def __init__(self) -> None:
        self._lines = LineDecoder()

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        """The objects completed by `data`; raises `MalformedLine` on a bad line."""
        return [_parse(line) for line in self._lines.feed(data) if line.strip()]

    def close(self) -> list[dict[str, Any]]:
        """The last object when the body does not end with a newline."""
        return [_parse(line) for line in self._lines.close() if line.strip()]


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
                else:
                    for value in decoder.feed(chunk):
                        yield value
        for value in decoder.close():
            yield value
    except MalformedLine as exc:
        raise malformed(endpoint, str(exc), shown=shown()) from None
