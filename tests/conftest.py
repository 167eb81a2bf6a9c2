"""Shared fixtures.

- `model_server`: the scripted model server of tests/model_server.py, reset per test.

Provider doubles, imported by the provider tests: `drive` runs a model's stream
against an `httpx.MockTransport` handler (or real HTTP) and returns an `Outcome`;
`ByteStream` is a response body that arrives in pieces, pauses or breaks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field

import httpx
import pytest
from IPython.core.interactiveshell import InteractiveShell
from model_server import ScriptedModelServer

from codeact_kernel.errors import ProviderError
from codeact_kernel.providers.base import Message, Model, Notice, StreamItem, TextDelta, Usage


@pytest.fixture(scope="session")
def _model_server_session() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer() as server:
        yield server


@pytest.fixture
def model_server(_model_server_session: ScriptedModelServer) -> Iterator[ScriptedModelServer]:
    """A running scripted model server (see tests/model_server.py), fresh per test."""
    server = _model_server_session
    server.reset()
    server.models = ["test-model"]
    yield server
    server.reset()


# --- provider doubles -------------------------------------------------------------


@dataclass
class Outcome:
    """What a provider's stream produced, and the error that ended it (if any)."""

    items: list[StreamItem]
    error: ProviderError | None
    requests: list[httpx.Request] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(i.text for i in self.items if isinstance(i, TextDelta))

    @property
    def notices(self) -> list[str]:
        return [i.message for i in self.items if isinstance(i, Notice)]

    @property
    def usage(self) -> list[Usage]:
        return [i for i in self.items if isinstance(i, Usage)]


class ByteStream(httpx.AsyncByteStream):
    """A response body arriving in the given pieces, optionally pausing or breaking."""

    def __init__(
        self, parts: Sequence[bytes], *, fail: Exception | None = None, pause: float = 0.0
    ) -> None:
        self.parts = parts
        self.fail = fail
        self.pause = pause

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            if self.pause:
                await asyncio.sleep(self.pause)
            yield part
        if self.fail is not None:
            raise self.fail


Handler = Callable[[httpx.Request], httpx.Response]


def drive(
    make_model: Callable[[httpx.AsyncClient], Model],
    handler: Handler | None = None,
    messages: Sequence[Message] = (Message("user", "hi"),),
    stop: Sequence[str] = (),
) -> Outcome:
    """Stream from `make_model(client)`; `client` is served by `handler`, or real HTTP."""
    requests: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        assert handler is not None
        return handler(request)

    async def run() -> Outcome:
        items: list[StreamItem] = []
        transport = httpx.MockTransport(record) if handler else None
        async with httpx.AsyncClient(transport=transport) as client:
            try:
                async for item in make_model(client).stream(messages, stop=stop):
                    items.append(item)
            except ProviderError as exc:
                return Outcome(items, exc, requests)
        return Outcome(items, None, requests)

    return asyncio.run(run())


@pytest.fixture(scope="session")
def ipython() -> InteractiveShell:
    """The process-wide IPython shell for in-process tests (IPython allows one singleton)."""
    from IPython.testing.globalipapp import start_ipython

    shell = start_ipython()
    assert shell is not None
    return shell
