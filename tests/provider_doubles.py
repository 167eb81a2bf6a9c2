"""Doubles for the provider tests: a model driven over `httpx.MockTransport`, and each
provider's wire format.

- `drive` runs a model's stream against a MockTransport handler (or real HTTP) and
  returns an `Outcome`; `ByteStream` is a response body that arrives in pieces, pauses
  or breaks; `Sleeps` records retry waits instead of waiting; `SilentServer` is a hung
  server: it takes connections and requests, and never answers anything.
- The bytes each provider's server sends: OpenAI's chat-completion chunks (`chunk`,
  `USAGE`, `DONE`), Anthropic's message events (`start`, `delta`, `finish`), Ollama's
  lines (`line`, `done`), and their error bodies.
- `Dialect` puts one provider and its format together, so that a behaviour every
  provider shares is one test parametrized over `DIALECTS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from model_server import ScriptedModelServer

from codeact_kernel.errors import ProviderError
from codeact_kernel.providers.anthropic import AnthropicProvider
from codeact_kernel.providers.base import (
    Message,
    Model,
    Notice,
    ProviderConfig,
    StreamItem,
    TextDelta,
    Truncated,
    Usage,
)
from codeact_kernel.providers.http_model import HttpModel
from codeact_kernel.providers.ollama import OllamaProvider
from codeact_kernel.providers.openai import OpenAIProvider
from codeact_kernel.providers.retry import RetryPolicy

# --- driving a model --------------------------------------------------------------


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

    @property
    def truncated(self) -> list[Truncated]:
        return [i for i in self.items if isinstance(i, Truncated)]

    @property
    def kinds(self) -> list[str]:
        """The items' types in order, runs of text as one "TextDelta"."""
        kinds = [type(i).__name__ for i in self.items]
        return [k for n, k in enumerate(kinds) if not (n and k == "TextDelta" == kinds[n - 1])]


class ByteStream(httpx.AsyncByteStream):
    """A response body arriving in the given pieces, `pause` seconds apart, after a
    `wait` before the first (a slow start); `fail` breaks it after the last."""

    def __init__(
        self,
        parts: Sequence[bytes],
        *,
        fail: Exception | None = None,
        pause: float = 0.0,
        wait: float = 0.0,
    ) -> None:
        self.parts = parts
        self.fail = fail
        self.pause = pause
        self.wait = wait

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self.wait:
            await asyncio.sleep(self.wait)
        for index, part in enumerate(self.parts):
            if index and self.pause:
                await asyncio.sleep(self.pause)
            yield part
        if self.fail is not None:
            raise self.fail


class Sleeps:
    """A `RetryPolicy.sleep` that records the waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


Handler = Callable[[httpx.Request], httpx.Response]
MakeModel = Callable[[httpx.AsyncClient], Model]


def drive(
    make_model: MakeModel,
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


class SilentServer:
    """A hung server on 127.0.0.1: it accepts connections and reads requests, and never
    answers any of them (model listings included). A context manager."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._port = self._listener.getsockname()[1]
        self._connections: list[socket.socket] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="silent-server", daemon=True)
        self.requests: list[bytes] = []

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def url(self) -> str:
        return f"{self.root}/v1"

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        for connection in [*self._connections, self._listener]:
            with contextlib.suppress(OSError):
                connection.close()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                connection, _ = self._listener.accept()
                connection.settimeout(0.05)
                self._connections.append(connection)
            for connection in self._connections:
                with contextlib.suppress(TimeoutError, OSError):
                    if data := connection.recv(65536):
                        self.requests.append(data)

    def request_lines(self) -> list[str]:
        """The request lines ("POST /v1/chat/completions HTTP/1.1") received so far."""
        return [
            data.split(b"\r\n", 1)[0].decode()
            for data in self.requests
            if data[:4] in (b"POST", b"GET ")
        ]


def timed(make_model: MakeModel, handler: Handler | None = None) -> tuple[Outcome, float]:
    """`drive`, and how many seconds it took."""
    started = time.monotonic()
    outcome = drive(make_model, handler)
    return outcome, time.monotonic() - started


def no_request(request: httpx.Request) -> httpx.Response:
    """A handler for clients that must send nothing."""
    raise AssertionError(f"unexpected request to {request.url}")


def split(data: bytes, points: Sequence[int]) -> list[bytes]:
    """`data` cut at `points` (taken modulo its length): how a network may deliver it."""
    bounds = sorted({p % (len(data) + 1) for p in points} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def streamed(*parts: bytes, content_type: str, status: int = 200, **kwargs: Any) -> httpx.Response:
    """A response whose body arrives as `parts` (see `ByteStream` for `fail` and `pause`)."""
    return httpx.Response(
        status, headers={"content-type": content_type}, stream=ByteStream(parts, **kwargs)
    )


def sse(*parts: bytes, status: int = 200, **kwargs: Any) -> httpx.Response:
    return streamed(*parts, content_type="text/event-stream", status=status, **kwargs)


def ndjson(*parts: bytes, **kwargs: Any) -> httpx.Response:
    return streamed(*parts, content_type="application/x-ndjson", **kwargs)


# --- OpenAI chat completions: SSE ----------------------------------------------------


def chunk(content: str | None = None, finish: str | None = None, **extra: Any) -> bytes:
    delta_ = {} if content is None else {"content": content}
    payload = {"choices": [{"index": 0, "delta": delta_, "finish_reason": finish}], **extra}
    return f"data: {json.dumps(payload)}\n\n".encode()


USAGE = b'data: {"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3}}\n\n'
DONE = b"data: [DONE]\n\n"


def openai_error(status: int, message: str, **headers: str) -> httpx.Response:
    body = {"error": {"message": message, "type": "invalid_request_error", "code": None}}
    return httpx.Response(status, json=body, headers=headers)


def openai_error_event(message: str) -> bytes:
    return (
        f"data: {json.dumps({'error': {'message': message, 'type': 'server_error'}})}\n\n".encode()
    )


# --- Anthropic messages: SSE with named events --------------------------------------


def event(name: str, **data: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n".encode()


def start(input_tokens: int = 25) -> bytes:
    usage = {"input_tokens": input_tokens, "output_tokens": 1}
    message = {"id": "msg_1", "role": "assistant", "content": [], "usage": usage}
    return event("message_start", message=message) + event(
        "content_block_start", index=0, content_block={"type": "text", "text": ""}
    )


def delta(text: str) -> bytes:
    return event("content_block_delta", index=0, delta={"type": "text_delta", "text": text})


def finish(output_tokens: int = 9, reason: str = "end_turn") -> bytes:
    return (
        event("content_block_stop", index=0)
        + event(
            "message_delta",
            delta={"stop_reason": reason},
            usage={"output_tokens": output_tokens},
        )
        + event("message_stop")
    )


PING = event("ping")


def anthropic_error(status: int, kind: str, message: str, **headers: str) -> httpx.Response:
    body = {"type": "error", "error": {"type": kind, "message": message}}
    return httpx.Response(status, json=body, headers=headers)


# --- Ollama chat: NDJSON ---------------------------------------------------------------


def line(content: str = "", **extra: Any) -> bytes:
    payload = {"model": "qwen2.5-coder:7b", "message": {"role": "assistant", "content": content}}
    return json.dumps({**payload, "done": False, **extra}).encode() + b"\n"


def done(prompt: int | None = 30, output: int | None = 4, reason: str = "stop") -> bytes:
    counts: dict[str, Any] = {"prompt_eval_count": prompt, "eval_count": output}
    return line(done=True, done_reason=reason, **{k: v for k, v in counts.items() if v is not None})


def ollama_error(status: int, message: str, **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"error": message}, headers=headers)


# --- one provider and its format, for tests that hold for all of them -----------------


@dataclass(frozen=True)
class Dialect:
    """One provider as its tests see it: the class, a fake server, and what it sends."""

    name: str
    provider: type[HttpModel]
    model: str
    base_url: str
    respond: Callable[..., httpx.Response]
    opening: bytes
    piece: Callable[[str], bytes]
    closing: bytes
    #: The end of an answer that stopped at the output limit.
    cut_closing: bytes
    error: Callable[..., httpx.Response]
    error_event: Callable[[str], bytes]
    malformed: bytes
    listing: Callable[[list[str]], Any]
    chat_path: str
    stops: Callable[[dict[str, Any]], Any]
    #: The output limit in a request body; None when there is none.
    limit: Callable[[dict[str, Any]], Any]
    key_header: str
    key_prefix: str
    loopback_url: Callable[[ScriptedModelServer], str]

    def __str__(self) -> str:
        return self.name

    def make(self, *, sleeps: Sleeps | None = None, **config: Any) -> MakeModel:
        """A factory for `drive`; `config` overrides the `ProviderConfig` (base_url too)."""
        policy = RetryPolicy(sleep=sleeps or Sleeps(), random=lambda: 0.0)
        settings = ProviderConfig(**{"model": self.model, "base_url": self.base_url, **config})

        def make(client: httpx.AsyncClient) -> HttpModel:
            return self.provider(settings, client, retry=policy)

        return make

    def loopback(self, server: ScriptedModelServer, **config: Any) -> MakeModel:
        """A factory for `drive` pointed at the scripted model server."""
        return self.make(base_url=self.loopback_url(server), **config)

    def answer(self, *texts: str) -> list[bytes]:
        """A complete streamed answer made of `texts`."""
        return [self.opening, *map(self.piece, texts), self.closing]

    def cut_answer(self, *texts: str) -> list[bytes]:
        """A streamed answer made of `texts` that stopped at the output limit."""
        return [self.opening, *map(self.piece, texts), self.cut_closing]


OPENAI = Dialect(
    name="openai",
    provider=OpenAIProvider,
    model="m",
    base_url="http://llm.test/v1",
    respond=sse,
    opening=b"",
    piece=chunk,
    closing=chunk(finish="stop") + USAGE + DONE,
    cut_closing=chunk(finish="length") + USAGE + DONE,
    error=openai_error,
    error_event=openai_error_event,
    malformed=b"data: {not json\n\n",
    listing=lambda models: {"data": [{"id": m} for m in models]},
    chat_path="/v1/chat/completions",
    stops=lambda body: body["stop"],
    limit=lambda body: body.get("max_tokens"),
    key_header="authorization",
    key_prefix="Bearer ",
    loopback_url=lambda server: server.url,
)
ANTHROPIC = Dialect(
    name="anthropic",
    provider=AnthropicProvider,
    model="claude-x",
    base_url="http://claude.test",
    respond=sse,
    opening=start() + PING,
    piece=delta,
    closing=finish(),
    cut_closing=finish(reason="max_tokens"),
    error=lambda status, message, **headers: anthropic_error(
        status, "invalid_request_error", message, **headers
    ),
    error_event=lambda message: event(
        "error", error={"type": "overloaded_error", "message": message}
    ),
    malformed=b"event: ping\ndata: {oops\n\n",
    listing=lambda models: {"data": [{"id": m} for m in models]},
    chat_path="/v1/messages",
    stops=lambda body: body["stop_sequences"],
    limit=lambda body: body.get("max_tokens"),
    key_header="x-api-key",
    key_prefix="",
    loopback_url=lambda server: server.root,
)
OLLAMA = Dialect(
    name="ollama",
    provider=OllamaProvider,
    model="qwen2.5-coder:7b",
    base_url="http://ollama.test:11434",
    respond=ndjson,
    opening=b"",
    piece=line,
    closing=done(),
    cut_closing=done(reason="length"),
    error=ollama_error,
    error_event=lambda message: json.dumps({"error": message}).encode() + b"\n",
    malformed=b"{torn\n",
    listing=lambda models: {"models": [{"name": m} for m in models]},
    chat_path="/api/chat",
    stops=lambda body: body["options"]["stop"],
    limit=lambda body: body.get("options", {}).get("num_predict"),
    key_header="authorization",
    key_prefix="Bearer ",
    loopback_url=lambda server: server.root,
)
DIALECTS = (OPENAI, ANTHROPIC, OLLAMA)
