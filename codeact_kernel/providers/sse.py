"""A server-sent events reader (the WHATWG event-stream format) fed chunk by chunk.

Written here rather than taken from `httpx-sse` so that one decoder serves the
MockTransport tests, the loopback server and real endpoints alike, and so that the
property tests exercise exactly the code that runs.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass

import httpx

from .base import Notice
from .http import Endpoint, StreamFormat, foreign_content, stream_body
from .lines import LineDecoder
from .retry import RetryPolicy


@dataclass(frozen=True)
class ServerSentEvent:
    """One dispatched event; `event` is "message" unless the server named it."""

    data: str
    event: str = "message"
    id: str | None = None


class SSEDecoder:
    """Feed body bytes, get complete events. Comments (keep-alives) are dropped.

    A line that cannot be part of an event stream (markup, or text without a field
    name) is where the stream turned into something else, typically a proxy's error
    page: from there on every line goes to `foreign`, and no event is dispatched.
    """

    def __init__(self) -> None:
        self._lines = LineDecoder()
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._started = False
        self.foreign: list[str] = []

    def feed(self, data: bytes) -> list[ServerSentEvent]:
        """The events completed by `data`, in order."""
        return self._take(self._lines.feed(data))

    def close(self) -> list[ServerSentEvent]:
        """Events still pending when the body ends.

        The spec drops an event that is not followed by a blank line. We dispatch it
        instead: a server that omits the final blank line still sent valid data, and
        a torn last line is caught by whoever parses the data (it is not valid JSON).
        """
        events = self._take(self._lines.close())
        if self._data and not self.foreign:
            events.append(self._dispatch())
        return events

    def _take(self, lines: list[str]) -> list[ServerSentEvent]:
        events: list[ServerSentEvent] = []
        for line in lines:
            if not self._started:
                self._started = True
                line = line.removeprefix("\ufeff")
            if self.foreign or _is_foreign(line):
                self.foreign.append(line)
                continue
            if not line:
                if self._data:
                    events.append(self._dispatch())
                else:
                    self._event = ""
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                self._data.append(value)
            elif name == "event":
                self._event = value
            elif name == "id" and "\0" not in value:
                self._id = value
        return events

    def _dispatch(self) -> ServerSentEvent:
        event = ServerSentEvent("\n".join(self._data), self._event or "message", self._id)
        self._data = []
        self._event = ""
        return event


_FOREIGN_LIMIT = 8192
_FIELD = re.compile(r"(data|event|id|retry)(:|$)|:")
# A line an event stream may hold: a known field, a comment, or another field name and
# its colon (the spec ignores unknown fields). Text with spaces before its first colon
# ("reset reason: connection termination") is not one.
_STREAM_LINE = re.compile(r"(data|event|id|retry)(:|$)|:|[A-Za-z][\w-]*:|$")
# A web page's line, also as the data of an event (a proxy that frames its error page).
_MARKUP = re.compile(r"\s*(data:\s*)?<")


def _is_foreign(line: str) -> bool:
    """Whether `line` cannot be part of an event stream: markup, or text that is not a
    field (a proxy's error message)."""
    return bool(_MARKUP.match(line)) or not _STREAM_LINE.match(line.strip() and line)


def _looks_like_events(line: str, declared: bool) -> bool:
    """Whether a reply whose first line is `line` is an event stream.

    Declared one, any line an event stream may hold will do; otherwise the line must
    be one of the fields the APIs send, or a comment.
    """
    if _is_foreign(line):
        return False
    return declared or bool(_FIELD.match(line))


EVENT_STREAM = StreamFormat(
    "an event stream (text/event-stream)", ("text/event-stream",), _looks_like_events
)


async def sse_stream(
    client: httpx.AsyncClient,
    request: httpx.Request,
    endpoint: Endpoint,
    policy: RetryPolicy,
    *,
    shown: Callable[[], bool],
) -> AsyncGenerator[Notice | ServerSentEvent, None]:
    """Send `request` (see `stream_body`) and yield its events, or notices.

    `shown` tells whether any of the answer has reached the user (for error messages).
    """
    decoder = SSEDecoder()
    body = stream_body(client, request, endpoint, policy, expect=EVENT_STREAM, shown=shown)
    async with aclosing(body) as chunks:
        async for chunk in chunks:
            if isinstance(chunk, Notice):
                yield chunk
                continue
            for event in decoder.feed(chunk):
                yield event
            # Enough of what came instead of the stream to quote its gist.
            if sum(map(len, decoder.foreign)) > _FOREIGN_LIMIT:
                break
    for event in decoder.close():
        yield event
    if decoder.foreign:
        raise foreign_content(endpoint, "\n".join(decoder.foreign).encode(), shown=shown())
