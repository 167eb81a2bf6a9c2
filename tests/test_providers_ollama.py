"""The Ollama provider against `httpx.MockTransport` and the loopback server."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import httpx
import pytest
from conftest import ByteStream, drive
from hypothesis import given, settings
from hypothesis import strategies as st
from model_server import ScriptedModelServer, cut, error, error_event, hang, text

from codeact_kernel.errors import (
    ConnectionFailed,
    ContextTooLong,
    ModelNotFound,
    ProviderTimeout,
    ServerError,
    StreamError,
)
from codeact_kernel.providers import Model
from codeact_kernel.providers.base import Message, ProviderConfig, TextDelta, Usage
from codeact_kernel.providers.ollama import OllamaProvider, normalize_host
from codeact_kernel.providers.retry import RetryPolicy

HOST = "http://ollama.test:11434"


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def provider(host: str | None = HOST, *, sleeps: Sleeps | None = None, **config: Any) -> Any:
    policy = RetryPolicy(sleep=sleeps or Sleeps(), random=lambda: 0.0)

    def make(client: httpx.AsyncClient) -> OllamaProvider:
        settings = ProviderConfig(model="qwen2.5-coder:7b", base_url=host, **config)
        return OllamaProvider(settings, client, retry=policy)

    return make


def line(content: str = "", **extra: Any) -> bytes:
    payload = {"model": "qwen2.5-coder:7b", "message": {"role": "assistant", "content": content}}
    return json.dumps({**payload, "done": False, **extra}).encode() + b"\n"


def done(prompt: int | None = 30, output: int | None = 4) -> bytes:
    counts: dict[str, Any] = {"prompt_eval_count": prompt, "eval_count": output}
    return line(done=True, done_reason="stop", **{k: v for k, v in counts.items() if v is not None})


def ndjson(*parts: bytes, **kwargs: Any) -> httpx.Response:
    return httpx.Response(
        200, headers={"content-type": "application/x-ndjson"}, stream=ByteStream(parts, **kwargs)
    )


def test_request_shape_and_usage() -> None:
    messages = [Message("system", "be brief"), Message("user", "look", images=("iVBOR",))]
    outcome = drive(
        provider(),
        lambda request: ndjson(line("Hel"), line("lo"), done()),
        messages=messages,
        stop=["</execute>"],
    )
    assert outcome.error is None
    assert [i for i in outcome.items if isinstance(i, TextDelta)] == [
        TextDelta("Hel"),
        TextDelta("lo"),
    ]
    assert outcome.items[-1] == Usage(30, 4)
    request = outcome.requests[0]
    assert str(request.url) == "http://ollama.test:11434/api/chat"
    assert "authorization" not in request.headers
    assert json.loads(request.content) == {
        "model": "qwen2.5-coder:7b",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "look", "images": ["iVBOR"]},
        ],
        "stream": True,
        "options": {"stop": ["</execute>"]},
    }


@pytest.mark.parametrize(
    ("given_host", "expected"),
    [
        (None, "http://localhost:11434"),
        ("localhost:11434", "http://localhost:11434"),
        ("0.0.0.0", "http://0.0.0.0:11434"),
        ("gpu-box:8080", "http://gpu-box:8080"),
        ("https://ollama.example.com", "https://ollama.example.com"),
        ("http://127.0.0.1:11434/", "http://127.0.0.1:11434"),
        ("http://127.0.0.1:11434/v1", "http://127.0.0.1:11434"),
        ("http://proxy/ollama/api", "http://proxy:11434/ollama"),
    ],
)
def test_host_normalisation(given_host: str | None, expected: str) -> None:
    assert normalize_host(given_host) == expected


def test_name_endpoint_repr() -> None:
    async def build() -> OllamaProvider:
        async with httpx.AsyncClient() as client:
            return OllamaProvider(ProviderConfig("llama3.2"), client)

    model = asyncio.run(build())
    assert isinstance(model, Model)
    assert model.name == "ollama:llama3.2"
    assert model.endpoint == "http://localhost:11434"


def test_a_configured_key_is_sent_for_proxies() -> None:
    outcome = drive(provider(api_key="proxy-token"), lambda request: ndjson(line("a"), done()))
    assert outcome.requests[0].headers["authorization"] == "Bearer proxy-token"


def test_cached_prompt_leaves_out_its_count() -> None:
    outcome = drive(provider(), lambda request: ndjson(line("abcd"), done(prompt=None, output=1)))
    assert outcome.usage == [Usage(5, 1, estimated=True)]
    missing = drive(provider(), lambda request: ndjson(line("abcd"), done(None, None)))
    assert missing.usage == [Usage(5, 1, estimated=True)]


def test_error_line_mid_stream() -> None:
    failure = json.dumps({"error": "an error was encountered while running the model"}).encode()
    outcome = drive(provider(), lambda request: ndjson(line("part"), failure + b"\n"))
    assert outcome.text == "part"
    assert isinstance(outcome.error, StreamError)
    assert "while running the model" in str(outcome.error)


def test_context_error_line() -> None:
    failure = b'{"error": "the input length exceeds the context length"}\n'
    outcome = drive(provider(), lambda request: ndjson(failure))
    assert isinstance(outcome.error, ContextTooLong)


def test_malformed_line() -> None:
    outcome = drive(provider(), lambda request: ndjson(line("ok"), b"{torn\n", done()))
    assert outcome.text == "ok"
    assert isinstance(outcome.error, StreamError)
    assert "malformed" in str(outcome.error)


def test_stream_without_done_is_truncated() -> None:
    outcome = drive(provider(), lambda request: ndjson(line("half")))
    assert isinstance(outcome.error, StreamError)
    assert "ended before the answer was complete" in str(outcome.error)


def test_disconnect_mid_stream() -> None:
    broken = httpx.RemoteProtocolError("incomplete chunked read")
    outcome = drive(provider(), lambda request: ndjson(line("so"), fail=broken))
    assert outcome.text == "so"
    assert isinstance(outcome.error, StreamError)


def test_empty_answer() -> None:
    outcome = drive(provider(), lambda request: ndjson(done()))
    assert isinstance(outcome.error, StreamError)


def test_missing_model_lists_pulled_models_and_says_how_to_pull() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/tags":
            return httpx.Response(200, json={"models": [{"name": "llama3.2:latest"}]})
        return httpx.Response(
            404, json={"error": 'model "qwen2.5-coder:7b" not found, try pulling it first'}
        )

    outcome = drive(provider(), handler)
    assert isinstance(outcome.error, ModelNotFound)
    message = str(outcome.error)
    assert "Available models: llama3.2:latest." in message
    assert "ollama pull qwen2.5-coder:7b" in message


def test_connection_refused_asks_whether_ollama_runs() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    sleeps = Sleeps()
    outcome = drive(provider(sleeps=sleeps), refuse)
    assert isinstance(outcome.error, ConnectionFailed)
    assert "Is Ollama running?" in str(outcome.error)
    assert HOST in str(outcome.error)
    assert len(sleeps.waits) == 2


def test_server_error_retried_then_reported() -> None:
    sleeps = Sleeps()
    outcome = drive(
        provider(sleeps=sleeps, max_retries=1),
        lambda request: httpx.Response(500, json={"error": "llama runner process has terminated"}),
    )
    assert isinstance(outcome.error, ServerError)
    assert "llama runner process has terminated" in str(outcome.error)
    assert outcome.notices == ["server error 500, retrying in 0.5 s"]


def test_idle_timeout() -> None:
    outcome = drive(
        provider(idle_timeout=0.05), lambda request: ndjson(line("a"), done(), pause=0.3)
    )
    assert isinstance(outcome.error, ProviderTimeout)


@settings(max_examples=100, deadline=None)
@given(
    texts=st.lists(st.text(st.characters(codec="utf-8"), min_size=1, max_size=10), max_size=10),
    eol=st.sampled_from([b"\n", b"\r", b"\r\n"]),
    cuts=st.lists(st.integers(min_value=0, max_value=5000), max_size=25),
)
def test_any_chunking_yields_the_text(texts: list[str], eol: bytes, cuts: list[int]) -> None:
    body = (b"".join(line(t) for t in texts) + line("!") + done()).replace(b"\n", eol)
    bounds = sorted({c % (len(body) + 1) for c in cuts} | {0, len(body)})
    parts = [body[a:b] for a, b in itertools.pairwise(bounds)]
    outcome = drive(provider(), lambda request: ndjson(*parts))
    assert outcome.error is None
    assert [i.text for i in outcome.items if isinstance(i, TextDelta)] == [*texts, "!"]


# --- against the loopback server ----------------------------------------------------


def loopback(server: ScriptedModelServer, **config: Any) -> Any:
    return provider(server.root, **config)


def test_loopback_stream_with_stop(model_server: ScriptedModelServer) -> None:
    model_server.script(text("y = 2\n</execute>\nmore", chunk_size=4, usage=(50, 6)))
    outcome = drive(loopback(model_server), stop=("</execute>",))
    assert outcome.error is None
    assert outcome.text == "y = 2\n"
    assert outcome.usage == [Usage(50, 6)]
    assert model_server.requests[0]["path"] == "/api/chat"


def test_loopback_faults(model_server: ScriptedModelServer) -> None:
    model_server.script(
        error(503, "loading model"),
        text("fine"),
        cut("partial"),
        error_event("so far", "runner crashed"),
        hang(5),
    )
    recovered = drive(loopback(model_server))
    assert recovered.text == "fine"
    assert recovered.notices == ["server error 503, retrying in 0.5 s"]
    broken = drive(loopback(model_server))
    assert broken.text == "partial"
    assert isinstance(broken.error, StreamError)
    failed = drive(loopback(model_server))
    assert failed.text == "so far"
    assert "runner crashed" in str(failed.error)
    stalled = drive(loopback(model_server, idle_timeout=0.2, max_retries=0))
    assert isinstance(stalled.error, ProviderTimeout)


def test_loopback_missing_model_and_listing(model_server: ScriptedModelServer) -> None:
    model_server.models = ["llama3.2:latest", "qwen2.5-coder:7b"]
    model_server.script(error(404, 'model "nope" not found, try pulling it first'))
    outcome = drive(loopback(model_server))
    assert isinstance(outcome.error, ModelNotFound)
    assert "Available models: llama3.2:latest, qwen2.5-coder:7b." in str(outcome.error)

    async def listing() -> list[str]:
        async with httpx.AsyncClient() as client:
            return await loopback(model_server)(client).list_models()

    assert asyncio.run(listing()) == ["llama3.2:latest", "qwen2.5-coder:7b"]


def test_loopback_context_and_refused(model_server: ScriptedModelServer) -> None:
    model_server.script(error(400, "the input length exceeds the context length"))
    too_long = drive(loopback(model_server))
    assert isinstance(too_long.error, ContextTooLong)
    with ScriptedModelServer() as gone:
        root = gone.root
    refused = drive(provider(root, max_retries=0))
    assert isinstance(refused.error, ConnectionFailed)
    assert "Is Ollama running?" in str(refused.error)
