"""The Anthropic provider against `httpx.MockTransport` and the loopback server."""

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
    AuthenticationFailed,
    ConfigurationError,
    ConnectionFailed,
    ContextTooLong,
    ModelNotFound,
    ProviderTimeout,
    RateLimited,
    ServerError,
    StreamError,
)
from codeact_kernel.providers import Model
from codeact_kernel.providers.anthropic import AnthropicProvider, normalize_base_url
from codeact_kernel.providers.base import Message, ProviderConfig, TextDelta, Usage
from codeact_kernel.providers.retry import RetryPolicy

KEY = "sk-ant-api03-SECRET-0123456789"
PROXY = "http://claude.test"


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def provider(base_url: str | None = PROXY, *, sleeps: Sleeps | None = None, **config: Any) -> Any:
    policy = RetryPolicy(sleep=sleeps or Sleeps(), random=lambda: 0.0)

    def make(client: httpx.AsyncClient) -> AnthropicProvider:
        settings = ProviderConfig(model="claude-x", base_url=base_url, **config)
        return AnthropicProvider(settings, client, retry=policy)

    return make


def event(name: str, **data: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n".encode()


def start(input_tokens: int = 25) -> bytes:
    usage = {"input_tokens": input_tokens, "output_tokens": 1}
    message = {"id": "msg_1", "role": "assistant", "content": [], "usage": usage}
    return event("message_start", message=message) + event(
        "content_block_start", index=0, content_block={"type": "text", "text": ""}
    )


def delta(text_: str) -> bytes:
    return event("content_block_delta", index=0, delta={"type": "text_delta", "text": text_})


def finish(output_tokens: int = 9) -> bytes:
    return (
        event("content_block_stop", index=0)
        + event(
            "message_delta",
            delta={"stop_reason": "end_turn"},
            usage={"output_tokens": output_tokens},
        )
        + event("message_stop")
    )


PING = event("ping")


def sse(*parts: bytes, **kwargs: Any) -> httpx.Response:
    return httpx.Response(
        200, headers={"content-type": "text/event-stream"}, stream=ByteStream(parts, **kwargs)
    )


def anthropic_error(status: int, kind: str, message: str, **headers: str) -> httpx.Response:
    body = {"type": "error", "error": {"type": kind, "message": message}}
    return httpx.Response(status, json=body, headers=headers)


def test_request_shape_and_usage() -> None:
    messages = [
        Message("system", "You write code."),
        Message("system", "Be brief."),
        Message("user", "first"),
        Message("user", "second", images=("iVBORw0KGgo",)),
        Message("assistant", "ok"),
        Message("user", "go on"),
    ]
    outcome = drive(
        provider(api_key=KEY),
        lambda request: sse(start(), PING, delta("Hel"), delta("lo"), finish()),
        messages=messages,
        stop=["</execute>", "  "],
    )
    assert outcome.error is None
    assert [i for i in outcome.items if isinstance(i, TextDelta)] == [
        TextDelta("Hel"),
        TextDelta("lo"),
    ]
    assert outcome.items[-1] == Usage(25, 9)
    request = outcome.requests[0]
    assert str(request.url) == "http://claude.test/v1/messages"
    assert request.headers["x-api-key"] == KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in request.headers
    body = json.loads(request.content)
    assert body["system"] == "You write code.\n\nBe brief."
    assert body["stop_sequences"] == ["</execute>"]
    assert body["stream"] is True
    assert body["max_tokens"] == 4096
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "first"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo"},
                },
                {"type": "text", "text": "second"},
            ],
        },
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "go on"},
    ]


@pytest.mark.parametrize(
    ("given_url", "expected"),
    [
        (None, "https://api.anthropic.com"),
        ("https://api.anthropic.com/v1/", "https://api.anthropic.com"),
        ("http://proxy:8080/v1/messages", "http://proxy:8080"),
        ("proxy.example/anthropic", "https://proxy.example/anthropic"),
    ],
)
def test_base_url_normalisation(given_url: str | None, expected: str) -> None:
    assert normalize_base_url(given_url) == expected


def test_name_endpoint_repr() -> None:
    async def build() -> AnthropicProvider:
        async with httpx.AsyncClient() as client:
            return AnthropicProvider(ProviderConfig("claude-sonnet-4-5", api_key=KEY), client)

    model = asyncio.run(build())
    assert isinstance(model, Model)
    assert model.name == "anthropic:claude-sonnet-4-5"
    assert model.endpoint == "https://api.anthropic.com"
    assert KEY not in repr(model)


def test_cached_input_tokens_count_and_message_delta_input() -> None:
    usage = {"input_tokens": 5, "cache_read_input_tokens": 100, "output_tokens": 1}
    message = {"id": "m", "content": [], "usage": usage}
    body = event("message_start", message=message) + delta("x") + finish(3)
    outcome = drive(provider(), lambda request: sse(body))
    assert outcome.usage == [Usage(105, 3)]


def test_missing_usage_is_estimated() -> None:
    body = event("message_start", message={"id": "m"}) + delta("y" * 8) + event("message_stop")
    outcome = drive(provider(), lambda request: sse(body))
    assert outcome.usage == [Usage(5, 2, estimated=True)]


def test_thinking_deltas_are_not_answer_text() -> None:
    thinking = event(
        "content_block_delta", index=0, delta={"type": "thinking_delta", "thinking": "hmm"}
    )
    outcome = drive(provider(), lambda request: sse(start(), thinking, delta("answer"), finish()))
    assert outcome.text == "answer"


def test_error_event_mid_stream() -> None:
    overloaded = event("error", error={"type": "overloaded_error", "message": "Overloaded"})
    outcome = drive(provider(), lambda request: sse(start(), delta("part"), overloaded))
    assert outcome.text == "part"
    assert isinstance(outcome.error, StreamError)
    assert "Overloaded" in str(outcome.error)
    assert len(outcome.requests) == 1


def test_malformed_event_data() -> None:
    outcome = drive(provider(), lambda request: sse(start(), b"event: ping\ndata: {oops\n\n"))
    assert isinstance(outcome.error, StreamError)
    assert "malformed" in str(outcome.error)


def test_stream_without_message_stop_is_truncated() -> None:
    outcome = drive(provider(), lambda request: sse(start(), delta("half")))
    assert outcome.text == "half"
    assert isinstance(outcome.error, StreamError)


def test_disconnect_mid_stream() -> None:
    broken = httpx.ReadError("connection reset")
    outcome = drive(provider(), lambda request: sse(start(), delta("so"), fail=broken))
    assert outcome.text == "so"
    assert isinstance(outcome.error, StreamError)


def test_empty_answer() -> None:
    outcome = drive(provider(), lambda request: sse(start(), finish()))
    assert isinstance(outcome.error, StreamError)
    assert "empty answer" in str(outcome.error)


def test_401_names_the_variable_never_the_key() -> None:
    outcome = drive(
        provider(api_key=KEY, api_key_source="ANTHROPIC_API_KEY"),
        lambda request: anthropic_error(401, "authentication_error", f"invalid x-api-key {KEY}"),
    )
    assert isinstance(outcome.error, AuthenticationFailed)
    assert "ANTHROPIC_API_KEY" in str(outcome.error)
    assert KEY not in str(outcome.error)


def test_missing_key_for_anthropic_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="ANTHROPIC_API_KEY"):
        drive(provider(None), lambda request: sse(start()))


def test_prompt_too_long() -> None:
    outcome = drive(
        provider(),
        lambda request: anthropic_error(
            400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"
        ),
    )
    assert isinstance(outcome.error, ContextTooLong)
    assert "210000" in str(outcome.error)


def test_request_too_large() -> None:
    outcome = drive(
        provider(),
        lambda request: anthropic_error(413, "request_too_large", "Request exceeds 32MB"),
    )
    assert isinstance(outcome.error, ContextTooLong)


def test_overloaded_529_is_retried() -> None:
    replies = iter(
        [
            anthropic_error(529, "overloaded_error", "Overloaded"),
            anthropic_error(429, "rate_limit_error", "slow", **{"retry-after": "1"}),
            sse(start(), delta("ok"), finish()),
        ]
    )
    sleeps = Sleeps()
    outcome = drive(provider(sleeps=sleeps), lambda request: next(replies))
    assert outcome.text == "ok"
    assert outcome.notices == [
        "server overloaded, retrying in 0.5 s",
        "rate-limited, retrying in 1 s",
    ]
    assert sleeps.waits == [0.5, 1.0]


def test_429_exhausted() -> None:
    outcome = drive(
        provider(max_retries=1),
        lambda request: anthropic_error(429, "rate_limit_error", "Number of requests exceeded"),
    )
    assert isinstance(outcome.error, RateLimited)
    assert "Number of requests exceeded" in str(outcome.error)
    assert len(outcome.requests) == 2


def test_404_lists_models() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            assert request.headers["anthropic-version"] == "2023-06-01"
            return httpx.Response(200, json={"data": [{"id": "claude-a"}, {"id": "claude-b"}]})
        return anthropic_error(404, "not_found_error", "model: claude-x")

    outcome = drive(provider(), handler)
    assert isinstance(outcome.error, ModelNotFound)
    assert "Available models: claude-a, claude-b." in str(outcome.error)


def test_connection_refused() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused")

    outcome = drive(provider(max_retries=0), refuse)
    assert isinstance(outcome.error, ConnectionFailed)
    assert PROXY in str(outcome.error)
    assert "ANTHROPIC_BASE_URL" in str(outcome.error)


def test_idle_timeout() -> None:
    outcome = drive(
        provider(idle_timeout=0.05), lambda request: sse(start(), delta("a"), finish(), pause=0.3)
    )
    assert isinstance(outcome.error, ProviderTimeout)


@settings(max_examples=100, deadline=None)
@given(
    texts=st.lists(st.text(st.characters(codec="utf-8"), min_size=1, max_size=10), max_size=10),
    eol=st.sampled_from([b"\n", b"\r", b"\r\n"]),
    cuts=st.lists(st.integers(min_value=0, max_value=5000), max_size=25),
)
def test_any_chunking_yields_the_text(texts: list[str], eol: bytes, cuts: list[int]) -> None:
    body = (start() + PING + b"".join(delta(t) for t in texts) + delta("!") + finish()).replace(
        b"\n", eol
    )
    bounds = sorted({c % (len(body) + 1) for c in cuts} | {0, len(body)})
    parts = [body[a:b] for a, b in itertools.pairwise(bounds)]
    outcome = drive(provider(), lambda request: sse(*parts))
    assert outcome.error is None
    assert [i.text for i in outcome.items if isinstance(i, TextDelta)] == [*texts, "!"]


# --- against the loopback server ----------------------------------------------------


def loopback(server: ScriptedModelServer, **config: Any) -> Any:
    return provider(server.root, **config)


def test_loopback_stream_with_stop(model_server: ScriptedModelServer) -> None:
    model_server.script(text("x = 1\n</execute>\nmore", chunk_size=3, usage=(40, 7)))
    outcome = drive(loopback(model_server, api_key=KEY), stop=("</execute>",))
    assert outcome.error is None
    assert outcome.text == "x = 1\n"
    assert outcome.usage == [Usage(40, 7)]
    sent = model_server.requests[0]
    assert sent["path"] == "/v1/messages"
    assert sent["headers"]["x-api-key"] == KEY


def test_loopback_faults(model_server: ScriptedModelServer) -> None:
    model_server.script(
        error(529, "Overloaded"),
        text("fine"),
        error(401, "invalid x-api-key"),
        cut("partial"),
        error_event("so far", "Overloaded"),
        hang(5),
    )
    recovered = drive(loopback(model_server))
    assert recovered.text == "fine"
    assert recovered.notices == ["server overloaded, retrying in 0.5 s"]
    rejected = drive(loopback(model_server, api_key=KEY, api_key_source="CODEACT_API_KEY"))
    assert isinstance(rejected.error, AuthenticationFailed)
    assert "CODEACT_API_KEY" in str(rejected.error)
    broken = drive(loopback(model_server))
    assert broken.text == "partial"
    assert isinstance(broken.error, StreamError)
    failed = drive(loopback(model_server))
    assert failed.text == "so far"
    assert isinstance(failed.error, StreamError)
    stalled = drive(loopback(model_server, idle_timeout=0.2, max_retries=0))
    assert isinstance(stalled.error, ProviderTimeout)


def test_loopback_404_and_listing(model_server: ScriptedModelServer) -> None:
    model_server.models = ["claude-a", "claude-b"]
    model_server.script(error(404, "model: claude-x"))
    outcome = drive(loopback(model_server))
    assert isinstance(outcome.error, ModelNotFound)
    assert "Available models: claude-a, claude-b." in str(outcome.error)


def test_loopback_server_error(model_server: ScriptedModelServer) -> None:
    model_server.script(error(500, "Internal"), error(500, "Internal"))
    outcome = drive(loopback(model_server, max_retries=1))
    assert isinstance(outcome.error, ServerError)
    assert "HTTP 500: Internal" in str(outcome.error)


def test_loopback_context_and_refused(model_server: ScriptedModelServer) -> None:
    model_server.script(error(400, "prompt is too long: 210000 tokens > 200000 maximum"))
    too_long = drive(loopback(model_server))
    assert isinstance(too_long.error, ContextTooLong)
    with ScriptedModelServer() as gone:
        root = gone.root
    refused = drive(provider(root, max_retries=0))
    assert isinstance(refused.error, ConnectionFailed)
    assert root in str(refused.error)


def test_loopback_without_usage_estimates(model_server: ScriptedModelServer) -> None:
    model_server.script(text("abcdefgh", usage=None))
    outcome = drive(loopback(model_server))
    assert outcome.usage == [Usage(5, 2, estimated=True)]
