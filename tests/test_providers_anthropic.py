"""The Anthropic provider against `httpx.MockTransport` and the loopback server.

What every provider does alike is in test_providers_http_model.py.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from model_server import ScriptedModelServer, cut, error, error_event, text
from provider_doubles import (
    ANTHROPIC,
    PING,
    Sleeps,
    anthropic_error,
    delta,
    drive,
    event,
    finish,
    sse,
    start,
)

from codeact_kernel.errors import (
    AuthenticationFailed,
    ContextTooLong,
    ServerError,
    StreamError,
)
from codeact_kernel.providers.base import Message, TextDelta, Truncated, Usage

KEY = "sk-ant-api03-SECRET-0123456789"
provider = ANTHROPIC.make
loopback = ANTHROPIC.loopback


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


def test_the_listing_sends_the_api_version_and_key() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/models"
        assert request.headers["anthropic-version"] == "2023-06-01"
        assert request.headers["x-api-key"] == KEY
        return httpx.Response(200, json={"data": [{"id": "claude-a"}, {"id": "claude-b"}]})

    async def listing() -> list[str]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await provider(api_key=KEY)(client).list_models()

    assert asyncio.run(listing()) == ["claude-a", "claude-b"]


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


def test_an_answer_that_filled_the_context_window_is_truncated() -> None:
    body = start() + delta("x = [1,") + finish(reason="model_context_window_exceeded")
    outcome = drive(provider(max_tokens=64_000), lambda request: sse(body))
    assert outcome.error is None
    assert outcome.kinds == ["TextDelta", "Truncated", "Usage"]


@pytest.mark.parametrize(
    ("reason", "stopped"),
    [("refusal", "refusal"), ("pause_turn", "pause")],
)
def test_an_answer_stopped_for_another_reason_is_truncated_with_it(
    reason: str, stopped: str
) -> None:
    body = start() + delta("x = [1,") + finish(reason=reason)
    outcome = drive(provider(max_tokens=100), lambda request: sse(body))
    assert outcome.error is None and outcome.truncated == [Truncated(100, stopped)]


# A reason added to the API later ends where the model chose: its code still runs.
@pytest.mark.parametrize("reason", ["end_turn", "stop_sequence", "tool_use", "something_new"])
def test_normal_stop_reasons_are_not_truncations(reason: str) -> None:
    outcome = drive(provider(), lambda request: sse(start() + delta("hi") + finish(reason=reason)))
    assert outcome.error is None and outcome.truncated == [] and outcome.text == "hi"


def test_a_refusal_before_any_text_says_so() -> None:
    outcome = drive(provider(), lambda request: sse(start() + finish(reason="refusal")))
    assert isinstance(outcome.error, StreamError)
    assert "stopped the answer" in str(outcome.error) and "the model refused" in str(outcome.error)


def test_a_tool_use_answer_says_codeact_needs_text() -> None:
    message = {"id": "m", "content": [], "usage": {"input_tokens": 1, "output_tokens": 1}}
    tool = {"type": "tool_use", "id": "t", "name": "python", "input": {}}
    body = (
        event("message_start", message=message)
        + event("content_block_start", index=0, content_block=tool)
        + finish(reason="tool_use")
    )
    outcome = drive(provider(), lambda request: sse(body))
    assert isinstance(outcome.error, StreamError)
    assert "answered with a tool call and no text" in str(outcome.error)


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


# --- against the loopback server ----------------------------------------------------


def test_loopback_faults(model_server: ScriptedModelServer) -> None:
    model_server.script(
        error(529, "Overloaded"),
        text("fine"),
        error(401, "invalid x-api-key"),
        cut("partial"),
        error_event("so far", "Overloaded"),
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


def test_loopback_server_error(model_server: ScriptedModelServer) -> None:
    model_server.script(error(500, "Internal"), error(500, "Internal"))
    outcome = drive(loopback(model_server, max_retries=1))
    assert isinstance(outcome.error, ServerError)
    assert "HTTP 500: Internal" in str(outcome.error)


def test_loopback_without_usage_estimates(model_server: ScriptedModelServer) -> None:
    model_server.script(text("abcdefgh", usage=None))
    outcome = drive(loopback(model_server))
    assert outcome.usage == [Usage(5, 2, estimated=True)]
