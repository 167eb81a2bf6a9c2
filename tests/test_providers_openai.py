"""The OpenAI-compatible provider against `httpx.MockTransport` and the loopback server."""

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
from codeact_kernel.providers.base import Message, ProviderConfig, TextDelta, Usage
from codeact_kernel.providers.openai import OpenAIProvider, normalize_base_url
from codeact_kernel.providers.retry import RetryPolicy

KEY = "sk-test-SECRET-0123456789abcdef"
LOCAL = "http://llm.test/v1"


class Sleeps:
    """A `RetryPolicy.sleep` that records the waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def provider(
    base_url: str | None = LOCAL,
    *,
    sleeps: Sleeps | None = None,
    **config: Any,
) -> Any:
    """A factory for `drive`: an OpenAIProvider on the given client."""
    policy = RetryPolicy(sleep=sleeps or Sleeps(), random=lambda: 0.0)

    def make(client: httpx.AsyncClient) -> OpenAIProvider:
        return OpenAIProvider(
            ProviderConfig(model="m", base_url=base_url, **config), client, retry=policy
        )

    return make


def chunk(content: str | None = None, finish: str | None = None, **extra: Any) -> bytes:
    delta = {} if content is None else {"content": content}
    payload = {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
    return f"data: {json.dumps(payload)}\n\n".encode()


USAGE = b'data: {"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3}}\n\n'
DONE = b"data: [DONE]\n\n"


def sse(*parts: bytes, status: int = 200, **kwargs: Any) -> httpx.Response:
    return httpx.Response(
        status,
        headers={"content-type": "text/event-stream"},
        stream=ByteStream(parts, **kwargs),
    )


def answer(text_: str) -> list[bytes]:
    return [chunk(text_), chunk(finish="stop"), USAGE, DONE]


def test_request_shape_and_streamed_text() -> None:
    outcome = drive(
        provider(api_key=KEY, api_key_source="OPENAI_API_KEY"),
        lambda request: sse(chunk("Hel"), chunk("lo"), chunk(finish="stop"), USAGE, DONE),
        messages=[Message("system", "be brief"), Message("user", "hi")],
        stop=["</execute>"],
    )
    assert outcome.error is None
    assert [i for i in outcome.items if isinstance(i, TextDelta)] == [
        TextDelta("Hel"),
        TextDelta("lo"),
    ]
    assert outcome.items[-1] == Usage(7, 3)
    request = outcome.requests[0]
    assert str(request.url) == "http://llm.test/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert json.loads(request.content) == {
        "model": "m",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "stop": ["</execute>"],
    }


def test_no_key_means_no_authorization_header() -> None:
    outcome = drive(provider(), lambda request: sse(*answer("ok")))
    assert outcome.text == "ok"
    assert "authorization" not in outcome.requests[0].headers


def test_images_become_content_parts() -> None:
    message = Message("user", "what is this?", images=("iVBORw0KGgo", "/9j/4AAQ"))
    outcome = drive(provider(), lambda request: sse(*answer("a cat")), messages=[message])
    sent = json.loads(outcome.requests[0].content)["messages"][0]["content"]
    assert sent[0] == {"type": "text", "text": "what is this?"}
    assert sent[1]["image_url"]["url"] == "data:image/png;base64,iVBORw0KGgo"
    assert sent[2]["image_url"]["url"] == "data:image/jpeg;base64,/9j/4AAQ"


@pytest.mark.parametrize(
    ("given_url", "expected"),
    [
        (None, "https://api.openai.com/v1"),
        ("http://localhost:8000/v1/", "http://localhost:8000/v1"),
        ("http://localhost:8000", "http://localhost:8000/v1"),
        ("localhost:8080/v1", "http://localhost:8080/v1"),
        ("https://openrouter.ai/api/v1", "https://openrouter.ai/api/v1"),
        ("http://h:1/v1/chat/completions", "http://h:1/v1"),
    ],
)
def test_base_url_normalisation(given_url: str | None, expected: str) -> None:
    assert normalize_base_url(given_url) == expected


def test_name_endpoint_and_repr_hide_the_key() -> None:
    async def build() -> OpenAIProvider:
        async with httpx.AsyncClient() as client:
            return OpenAIProvider(ProviderConfig("gpt-4o-mini", api_key=KEY), client)

    model = asyncio.run(build())
    assert isinstance(model, Model)
    assert model.name == "openai:gpt-4o-mini"
    assert model.endpoint == "https://api.openai.com/v1"
    assert KEY not in repr(model)


def test_keepalives_comments_and_line_endings() -> None:
    body = (
        b": keep-alive\r\n\r\n"
        + chunk("a").replace(b"\n", b"\r\n")
        + b":ping\r\r"
        + chunk("b").replace(b"\n", b"\r")
        + chunk("c", finish="stop")
        + b"event: message\ndata: [DONE]\n\n"
    )
    outcome = drive(
        provider(), lambda request: sse(*[body[i : i + 3] for i in range(0, len(body), 3)])
    )
    assert outcome.error is None
    assert outcome.text == "abc"


def test_missing_usage_is_estimated() -> None:
    outcome = drive(provider(), lambda request: sse(chunk("x" * 40), chunk(finish="stop"), DONE))
    assert outcome.usage == [Usage(input_tokens=5, output_tokens=10, estimated=True)]


def test_done_without_finish_reason_is_complete() -> None:
    outcome = drive(provider(), lambda request: sse(chunk("hi"), DONE))
    assert outcome.error is None
    assert outcome.text == "hi"


def test_error_payload_mid_stream_keeps_the_text() -> None:
    bad = b'data: {"error": {"message": "worker crashed", "type": "server_error"}}\n\n'
    outcome = drive(provider(), lambda request: sse(chunk("partial "), bad))
    assert outcome.text == "partial "
    assert isinstance(outcome.error, StreamError)
    assert "worker crashed" in str(outcome.error)
    assert "incomplete" in str(outcome.error)


def test_context_error_in_stream_is_context_too_long() -> None:
    bad = b'data: {"error": {"message": "maximum context length is 4096 tokens"}}\n\n'
    outcome = drive(provider(), lambda request: sse(bad))
    assert isinstance(outcome.error, ContextTooLong)


def test_malformed_json_is_a_stream_error() -> None:
    outcome = drive(provider(), lambda request: sse(chunk("ok "), b"data: {not json\n\n", DONE))
    assert outcome.text == "ok "
    assert isinstance(outcome.error, StreamError)
    assert "malformed" in str(outcome.error)


def test_disconnect_mid_stream() -> None:
    broken = httpx.RemoteProtocolError("peer closed connection")
    outcome = drive(provider(), lambda request: sse(chunk("half an ans"), fail=broken))
    assert outcome.text == "half an ans"
    assert isinstance(outcome.error, StreamError)
    assert "broke mid-answer" in str(outcome.error)
    assert len(outcome.requests) == 1, "a stream that started is never retried"


def test_stream_ending_without_done_is_truncated() -> None:
    outcome = drive(provider(), lambda request: sse(chunk("half")))
    assert outcome.text == "half"
    assert isinstance(outcome.error, StreamError)
    assert "ended before the answer was complete" in str(outcome.error)


def test_empty_answer_is_an_error() -> None:
    outcome = drive(provider(), lambda request: sse(chunk(""), chunk(finish="stop"), DONE))
    assert isinstance(outcome.error, StreamError)
    assert "empty answer" in str(outcome.error)


def test_html_page_means_a_wrong_base_url() -> None:
    page = httpx.Response(200, headers={"content-type": "text/html"}, text="<html></html>")
    outcome = drive(provider(), lambda request: page)
    assert isinstance(outcome.error, ServerError)
    assert "base URL" in str(outcome.error)


def openai_error(status: int, message: str, **headers: str) -> httpx.Response:
    body = {"error": {"message": message, "type": "invalid_request_error", "code": None}}
    return httpx.Response(status, json=body, headers=headers)


def test_401_names_the_variable_and_never_the_key() -> None:
    echoed = f"Incorrect API key provided: {KEY}."
    outcome = drive(
        provider(api_key=KEY, api_key_source="OPENAI_API_KEY"),
        lambda request: openai_error(401, echoed),
    )
    assert isinstance(outcome.error, AuthenticationFailed)
    message = str(outcome.error)
    assert "OPENAI_API_KEY" in message
    assert "rejected" in message
    assert KEY not in message
    assert KEY not in repr(outcome.error)
    assert outcome.error.status == 401
    assert len(outcome.requests) == 1


def test_401_without_a_key_says_which_variables_to_set() -> None:
    outcome = drive(provider(), lambda request: openai_error(401, "missing key"))
    assert isinstance(outcome.error, AuthenticationFailed)
    assert "CODEACT_API_KEY or OPENAI_API_KEY" in str(outcome.error)


def test_missing_key_for_openai_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        drive(provider(None), lambda request: sse(*answer("never")))


def test_404_lists_the_available_models() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": "llama-3"}, {"id": "qwen"}]})
        return openai_error(404, "The model `m` does not exist")

    outcome = drive(provider(), handler)
    assert isinstance(outcome.error, ModelNotFound)
    assert "'m'" in str(outcome.error)
    assert "Available models: llama-3, qwen." in str(outcome.error)


def test_404_without_a_listing_suggests_checks() -> None:
    outcome = drive(provider(), lambda request: httpx.Response(404, json={"detail": "Not Found"}))
    assert isinstance(outcome.error, ModelNotFound)
    assert "Check the model name and the base URL" in str(outcome.error)


def test_429_is_retried_honouring_retry_after() -> None:
    replies = iter([openai_error(429, "slow down", **{"retry-after": "2"}), sse(*answer("ok"))])
    sleeps = Sleeps()
    outcome = drive(provider(sleeps=sleeps), lambda request: next(replies))
    assert outcome.error is None
    assert outcome.text == "ok"
    assert outcome.notices == ["rate-limited, retrying in 2 s"]
    assert sleeps.waits == [2.0]


def test_429_gives_up_after_max_retries() -> None:
    sleeps = Sleeps()
    outcome = drive(
        provider(sleeps=sleeps, max_retries=2),
        lambda request: openai_error(429, "quota", **{"retry-after-ms": "1500"}),
    )
    assert isinstance(outcome.error, RateLimited)
    assert "quota" in str(outcome.error)
    assert len(outcome.requests) == 3
    assert sleeps.waits == [1.5, 1.5]


def test_retry_after_beyond_the_cap_is_not_waited_for() -> None:
    outcome = drive(
        provider(), lambda request: openai_error(429, "later", **{"retry-after": "3600"})
    )
    assert isinstance(outcome.error, RateLimited)
    assert "3600 s" in str(outcome.error)
    assert len(outcome.requests) == 1


@pytest.mark.parametrize("status", [408, 409, 500, 502, 503, 529])
def test_retryable_statuses_back_off_exponentially(status: int) -> None:
    sleeps = Sleeps()
    outcome = drive(
        provider(sleeps=sleeps, max_retries=3),
        lambda request: openai_error(status, "upstream trouble"),
    )
    assert isinstance(outcome.error, ServerError)
    assert "upstream trouble" in str(outcome.error)
    assert str(status) in str(outcome.error)
    assert sleeps.waits == [0.5, 1.0, 2.0]
    assert len(outcome.notices) == 3


def test_overloaded_notice() -> None:
    replies = iter([openai_error(529, "overloaded"), sse(*answer("ok"))])
    outcome = drive(provider(), lambda request: next(replies))
    assert outcome.notices == ["server overloaded, retrying in 0.5 s"]


def test_client_errors_are_not_retried() -> None:
    outcome = drive(provider(), lambda request: openai_error(400, "bad temperature"))
    assert isinstance(outcome.error, ServerError)
    assert "HTTP 400: bad temperature" in str(outcome.error)
    assert len(outcome.requests) == 1


def test_context_length_error() -> None:
    body = {
        "error": {
            "message": "This model's maximum context length is 8192 tokens.",
            "code": "context_length_exceeded",
        }
    }
    outcome = drive(provider(), lambda request: httpx.Response(400, json=body))
    assert isinstance(outcome.error, ContextTooLong)
    assert len(outcome.requests) == 1


def test_connection_refused_names_the_url() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    outcome = drive(provider(max_retries=1), refuse)
    assert isinstance(outcome.error, ConnectionFailed)
    message = str(outcome.error)
    assert "http://llm.test/v1" in message
    assert "Connection refused" in message
    assert "CODEACT_BASE_URL" in message
    assert outcome.notices == ["could not connect, retrying in 0.5 s"]


def test_connection_refused_then_success() -> None:
    attempts = iter([httpx.ConnectError("refused"), None])

    def flaky(request: httpx.Request) -> httpx.Response:
        failure = next(attempts)
        if failure is not None:
            raise failure
        return sse(*answer("back"))

    outcome = drive(provider(), flaky)
    assert outcome.text == "back"


def test_idle_timeout_between_chunks() -> None:
    outcome = drive(
        provider(idle_timeout=0.05),
        lambda request: sse(chunk("slow"), chunk("er"), pause=0.5),
    )
    assert isinstance(outcome.error, ProviderTimeout)
    assert "idle_timeout" in str(outcome.error)


def test_total_timeout() -> None:
    parts = [chunk("tick ")] * 20 + [chunk(finish="stop"), DONE]
    outcome = drive(provider(total_timeout=0.2), lambda request: sse(*parts, pause=0.03))
    assert isinstance(outcome.error, ProviderTimeout)
    assert "total_timeout" in str(outcome.error)
    assert outcome.text.startswith("tick ")


# --- property: SSE framing never changes the text --------------------------------

pieces = st.lists(
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=12),
    min_size=1,
    max_size=12,
)
endings = st.sampled_from(["\n", "\r", "\r\n"])


@settings(max_examples=150, deadline=None)
@given(
    texts=pieces,
    eol=endings,
    comments=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=30),
)
def test_any_chunking_yields_the_text_exactly_once(
    texts: list[str], eol: str, comments: bool, cuts: list[int]
) -> None:
    lines: list[str] = []
    for piece in texts:
        if comments:
            lines.append(": keep-alive" + eol)
        payload = {"choices": [{"index": 0, "delta": {"content": piece}}]}
        lines.append(f"data: {json.dumps(payload, ensure_ascii=False)}{eol}{eol}")
    lines.append("data: [DONE]" + eol + eol)
    body = "".join(lines).encode()
    bounds = sorted({c % (len(body) + 1) for c in cuts} | {0, len(body)})
    parts = [body[a:b] for a, b in itertools.pairwise(bounds)]

    async def run() -> list[str]:
        transport = httpx.MockTransport(lambda request: sse(*parts))
        async with httpx.AsyncClient(transport=transport) as client:
            model = OpenAIProvider(ProviderConfig("m", base_url=LOCAL), client)
            return [i.text async for i in model.stream([]) if isinstance(i, TextDelta)]

    assert asyncio.run(run()) == texts


# --- against the loopback server ----------------------------------------------------


def loopback(server: ScriptedModelServer, *, sleeps: Sleeps | None = None, **config: Any) -> Any:
    return provider(server.url, sleeps=sleeps, **config)


def test_loopback_streams_and_honours_stop(model_server: ScriptedModelServer) -> None:
    model_server.script(text("print(1)\n</execute>\nObservation: 1", chunk_size=3))
    outcome = drive(loopback(model_server), stop=("</execute>",))
    assert outcome.error is None
    assert outcome.text == "print(1)\n"
    assert outcome.usage == [Usage(10, 5)]
    assert model_server.requests[0]["body"]["stop"] == ["</execute>"]


def test_loopback_errors(model_server: ScriptedModelServer) -> None:
    model_server.script(
        error(401, "Incorrect API key provided"), cut("half"), error_event("so far")
    )
    first = drive(loopback(model_server, api_key=KEY, api_key_source="CODEACT_API_KEY"))
    assert isinstance(first.error, AuthenticationFailed)
    assert "CODEACT_API_KEY" in str(first.error)
    assert model_server.requests[0]["headers"]["authorization"] == f"Bearer {KEY}"
    second = drive(loopback(model_server))
    assert second.text == "half"
    assert isinstance(second.error, StreamError)
    third = drive(loopback(model_server))
    assert third.text == "so far"
    assert isinstance(third.error, StreamError)
    assert "model_server: error mid-stream" in str(third.error)


def test_loopback_retries_then_streams(model_server: ScriptedModelServer) -> None:
    model_server.script(
        error(503, "warming up"), error(429, "busy", headers={"retry-after": "0"}), text("ready")
    )
    sleeps = Sleeps()
    outcome = drive(loopback(model_server, sleeps=sleeps))
    assert outcome.text == "ready"
    assert outcome.notices == [
        "server error 503, retrying in 0.5 s",
        "rate-limited, retrying in 0 s",
    ]
    assert len(model_server.requests) == 3


def test_loopback_hang_hits_the_idle_timeout(model_server: ScriptedModelServer) -> None:
    model_server.script(hang(5))
    outcome = drive(loopback(model_server, idle_timeout=0.2, max_retries=0))
    assert isinstance(outcome.error, ProviderTimeout)
    assert "idle_timeout" in str(outcome.error)


def test_loopback_404_lists_models(model_server: ScriptedModelServer) -> None:
    model_server.models = ["alpha", "beta"]
    model_server.script(error(404, "The model `m` does not exist"))
    outcome = drive(loopback(model_server))
    assert isinstance(outcome.error, ModelNotFound)
    assert "Available models: alpha, beta." in str(outcome.error)


def test_loopback_list_models(model_server: ScriptedModelServer) -> None:
    model_server.models = ["a", "b"]

    async def run() -> list[str]:
        async with httpx.AsyncClient() as client:
            return await OpenAIProvider(
                ProviderConfig("m", base_url=model_server.url), client
            ).list_models()

    assert asyncio.run(run()) == ["a", "b"]


def test_loopback_connection_refused() -> None:
    with ScriptedModelServer() as server:
        url = server.url
    outcome = drive(provider(url, max_retries=0))
    assert isinstance(outcome.error, ConnectionFailed)
    assert url in str(outcome.error)


def test_loopback_context_length(model_server: ScriptedModelServer) -> None:
    model_server.script(
        error(
            400,
            "This model's maximum context length is 8192 tokens.",
            code="context_length_exceeded",
        )
    )
    outcome = drive(loopback(model_server))
    assert isinstance(outcome.error, ContextTooLong)
    assert len(model_server.requests) == 1
