"""A scripted in-process model for fast agent tests (the HTTP double is model_server.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from codeact_kernel.providers.base import Message, Notice, StreamItem, TextDelta, Truncated, Usage


@dataclass(frozen=True)
class Cut:
    """A reply that hits the output limit: `text` streams, then `Truncated(limit)`."""

    text: str
    limit: int | None = 64


Reply = str | Cut | BaseException


@dataclass
class ScriptedModel:
    """Answers each call with the next scripted reply: text, text cut at the output limit
    (`Cut`), or an exception to raise.

    Text is streamed in `chunk`-sized deltas, whatever the stop sequences (as a server
    that ignores them does); every call's messages are logged, and whether the caller
    read each answer to its end (`finished`).
    """

    replies: list[Reply]
    chunk: int = 5
    delay: float = 0.0
    notices: tuple[str, ...] = ()
    calls: list[list[Message]] = field(default_factory=list)
    stops: list[tuple[str, ...]] = field(default_factory=list)
    finished: list[bool] = field(default_factory=list)

    @property
    def name(self) -> str:
        return "scripted:test"

    @property
    def endpoint(self) -> str:
        return "scripted"

    async def list_models(self) -> list[str]:
        return ["test"]

    async def stream(
        self, messages: Sequence[Message], *, stop: Sequence[str] = ()
    ) -> AsyncIterator[StreamItem]:
        self.calls.append(list(messages))
        self.stops.append(tuple(stop))
        self.finished.append(False)
        if not self.replies:
            raise AssertionError("ScriptedModel: script exhausted")
        reply = self.replies.pop(0)
        for notice in self.notices:
            yield Notice(notice)
        if isinstance(reply, BaseException):
            raise reply
        text = reply.text if isinstance(reply, Cut) else reply
        for start in range(0, len(text), self.chunk):
            if self.delay:
                await asyncio.sleep(self.delay)
            yield TextDelta(text[start : start + self.chunk])
        if isinstance(reply, Cut):
            yield Truncated(reply.limit)
        yield Usage(input_tokens=sum(len(m.content) for m in messages) // 4, output_tokens=7)
        self.finished[-1] = True
