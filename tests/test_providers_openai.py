"""The OpenAI-compatible provider against `httpx.MockTransport` and the loopback server."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from model_server import ScriptedModelServer, cut, error, error_event, text
from provider_doubles import DONE, OPENAI, USAGE, Sleeps, chunk, drive, openai_error, split, sse

from codeact_kernel.errors import (
    AuthenticationFailed,
    ContextTooLong,
    ModelNotFound,
    ProviderTimeout,
    RateLimited,
    ServerError,
    StreamError,
)
from codeact_kernel.providers.base import Message, ProviderConfig, TextDelta, Truncated, Usage
from codeact_kernel.providers.openai import OpenAIProvider

KEY = "sk-test-SECRET-0123456789abcdef"
LOCAL = OPENAI.base_url
provider = OPENAI.make
loopback = OPENAI.loopback
answer = OPENAI.answer


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
        "max_tokens": 4096,
        "stop": ["</execute>"],
    }


def test_openai_itself_gets_max_completion_tokens() -> None:
    outcome = drive(
        provider(base_url=None, api_key=KEY, max_tokens=512),
        lambda request: sse(*answer("ok")),
    )
    body = json.loads(outcome.requests[0].content)
    assert body["max_completion_tokens"] == 512
    assert "max_tokens" not in body


def test_a_server_that_wants_max_completion_tokens_is_asked_again_with_it() -> None:
    refusal = (
        "Unsupported parameter: 'max_tokens' is not supported with this model. "
        "Use 'max_completion_tokens' instead."
    )

    def handler(request: httpx.Request) -> httpx.Response:
        if "max_tokens" in json.loads(request.content):
            return openai_error(400, refusal)
        return sse(*answer("ok"))

    async def run() -> tuple[list[str], list[dict[str, object]]]:
        sent: list[dict[str, object]] = []

        def record(request: httpx.Request) -> httpx.Response:
            sent.append(json.loads(request.content))
            return handler(request)

        async with httpx.AsyncClient(transport=httpx.MockTransport(record)) as client:
            model = provider(base_url="https://azure.example/openai/v1")(client)
            texts = []
            for _ in range(2):
                texts.append(
                    "".join([i.text async for i in model.stream([]) if isinstance(i, TextDelta)])
                )
            return texts, sent

    texts, sent = asyncio.run(run())
    assert texts == ["ok", "ok"]
    assert [sorted(k for k in body if "tokens" in k) for body in sent] == [
        ["max_tokens"],
        ["max_completion_tokens"],
        ["max_completion_tokens"],
    ]


def test_other_400s_about_the_limit_are_not_retried() -> None:
    outcome = drive(
        provider(), lambda request: openai_error(400, "max_tokens must be at most 2048")
    )
    assert isinstance(outcome.error, ServerError)
    assert len(outcome.requests) == 1


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


@pytest.mark.parametrize("reason", ["length", "max_tokens"])
def test_a_proxys_finish_reasons_for_the_output_limit_are_truncations(reason: str) -> None:
    body = sse(chunk("x = [1,"), chunk(finish=reason), DONE)
    outcome = drive(OPENAI.make(max_tokens=50), lambda request: body)
    assert outcome.error is None and outcome.truncated == [Truncated(50)]


@pytest.mark.parametrize(
    ("reason", "stopped"),
    [("content_filter", "content_filter"), ("refusal", "refusal"), ("recitation", "recitation")],
)
def test_an_answer_stopped_for_another_reason_is_truncated_with_it(
    reason: str, stopped: str
) -> None:
    body = sse(chunk("x = [1,"), chunk(finish=reason), DONE)
    outcome = drive(OPENAI.make(max_tokens=50), lambda request: body)
    assert outcome.error is None and outcome.truncated == [Truncated(50, stopped)]


@pytest.mark.parametrize(
    "reason", ["stop", "tool_calls", "eos_token", "end_turn", "eos", "STOP", "a_new_reason"]
)
def test_normal_finish_reasons_are_not_truncations(reason: str) -> None:
    outcome = drive(provider(), lambda request: sse(chunk("hi"), chunk(finish=reason), DONE))
    assert outcome.error is None and outcome.truncated == [] and outcome.text == "hi"


def test_an_answer_filtered_before_any_text_says_so() -> None:
    body = sse(chunk(finish="content_filter"), DONE)
    outcome = drive(provider(), lambda request: body)
    assert isinstance(outcome.error, StreamError)
    assert "stopped the answer" in str(outcome.error) and "content filter" in str(outcome.error)


def test_openais_refusal_field_is_the_answer_and_stops_it() -> None:
    body = (
        b'data: {"choices": [{"index": 0, "delta": {"refusal": "I can\'t."}}]}\n\n'
        + b'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}\n\n'
        + DONE
    )
    outcome = drive(provider(max_tokens=50), lambda request: sse(body))
    assert outcome.text == "I can't." and outcome.truncated == [Truncated(50, "refusal")]


@pytest.mark.parametrize(
    ("content", "read"),
    [
        ([{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}], "Hello"),
        ([{"type": "image_url", "image_url": {"url": "x"}}, {"type": "text", "text": "a"}], "a"),
        (["plain ", "parts"], "plain parts"),
        (42, "42"),
        (1.5, "1.5"),
    ],
)
def test_content_in_other_shapes_is_read_as_text(content: object, read: str) -> None:
    piece = json.dumps({"choices": [{"index": 0, "delta": {"content": content}}]})
    body = f"data: {piece}\n\n".encode() + chunk(finish="stop") + DONE
    outcome = drive(provider(), lambda request: sse(body))
    assert outcome.error is None and outcome.text == read


def test_a_tool_call_answer_says_codeact_needs_text() -> None:
    call = {"index": 0, "id": "c", "type": "function", "function": {"name": "python"}}
    piece = json.dumps({"choices": [{"index": 0, "delta": {"tool_calls": [call]}}]})
    body = f"data: {piece}\n\n".encode() + chunk(finish="tool_calls") + DONE
    outcome = drive(provider(), lambda request: sse(body))
    assert isinstance(outcome.error, StreamError)
    assert "answered with a tool call and no text" in str(outcome.error)
    assert "empty answer" not in str(outcome.error)


def test_html_page_means_a_wrong_base_url() -> None:
    page = httpx.Response(200, headers={"content-type": "text/html"}, text="<html></html>")
    outcome = drive(provider(), lambda request: page)
    assert isinstance(outcome.error, ServerError)
    assert "base URL" in str(outcome.error)


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


def test_retry_after_beyond_the_cap_is_not_waited_for() -> None:
    outcome = drive(
        provider(), lambda request: openai_error(429, "later", **{"retry-after": "3600"})
    )
    assert isinstance(outcome.error, RateLimited)
    assert "3600 s" in str(outcome.error)
    assert len(outcome.requests) == 1


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


def test_connection_refused_then_success() -> None:
    attempts = iter([httpx.ConnectError("refused"), None])

    def flaky(request: httpx.Request) -> httpx.Response:
        failure = next(attempts)
        if failure is not None:
            raise failure
        return sse(*answer("back"))

    outcome = drive(provider(), flaky)
    assert outcome.text == "back"


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
    parts = split("".join(lines).encode(), cuts)

    async def run() -> list[str]:
        transport = httpx.MockTransport(lambda request: sse(*parts))
        async with httpx.AsyncClient(transport=transport) as client:
            model = OpenAIProvider(ProviderConfig("m", base_url=LOCAL), client)
            return [i.text async for i in model.stream([]) if isinstance(i, TextDelta)]

    assert asyncio.run(run()) == texts


# --- against the loopback server ----------------------------------------------------


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
