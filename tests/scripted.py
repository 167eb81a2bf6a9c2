"""A scripted in-process model for fast agent tests (the HTTP double is model_server.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from codeact_kernel.providers.base import Message, Notice, StreamItem, TextDelta, Usage


@dataclass
class ScriptedModel:
    """Answers each call with the next scripted reply: text, or an exception to raise.

    Text is streamed in `chunk`-sized deltas; every call's messages are logged.
    """

    replies: list[str | BaseException]
    chunk: int = 5
    delay: float = 0.0
    notices: tuple[str, ...] = ()
    calls: list[list[Message]] = field(default_factory=list)
    stops: list[tuple[str, ...]] = field(default_factory=list)

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
        if not self.replies:
            raise AssertionError("ScriptedModel: script exhausted")
        reply = self.replies.pop(0)
        for notice in self.notices:
            yield Notice(notice)
        if isinstance(reply, BaseException):
            raise reply
        for start in range(0, len(reply), self.chunk):
            if self.delay:
                await asyncio.sleep(self.delay)
            yield TextDelta(reply[start : start + self.chunk])
        yield Usage(input_tokens=sum(len(m.content) for m in messages) // 4, output_tokens=7)
