"""The Ollama provider against `httpx.MockTransport` and the loopback server.

What every provider does alike is in test_providers_http_model.py.
"""

from __future__ import annotations

import json

import httpx
import pytest
from model_server import ScriptedModelServer, cut, error, error_event, text
from provider_doubles import OLLAMA, done, drive, line, ndjson

from codeact_kernel.errors import ModelNotFound, StreamError
from codeact_kernel.providers.base import Message, TextDelta, Truncated, Usage

provider = OLLAMA.make
loopback = OLLAMA.loopback


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
        "options": {"num_predict": 4096, "stop": ["</execute>"]},
    }


@pytest.mark.parametrize(
    ("reason", "stopped"),
    [("length", ["length"]), ("content_filter", ["content_filter"]), ("unload", []), ("x", [])],
)
def test_a_done_reason_of_a_limit_or_a_filter_is_a_truncation(
    reason: str, stopped: list[str]
) -> None:
    """Any other reason, known or new, is an end where the model chose: its code runs."""
    body = ndjson(line("x = [1,"), done(reason=reason))
    outcome = drive(OLLAMA.make(max_tokens=70), lambda request: body)
    assert outcome.error is None
    assert outcome.truncated == [Truncated(70, why) for why in stopped]


def test_a_tool_call_answer_says_codeact_needs_text() -> None:
    call = {"function": {"name": "python", "arguments": {}}}
    message = {"role": "assistant", "content": "", "tool_calls": [call]}
    body = ndjson(line(message=message), done())
    outcome = drive(OLLAMA.make(), lambda request: body)
    assert isinstance(outcome.error, StreamError)
    assert "answered with a tool call and no text" in str(outcome.error)


def test_a_configured_key_is_sent_for_proxies() -> None:
    outcome = drive(provider(api_key="proxy-token"), lambda request: ndjson(line("a"), done()))
    assert outcome.requests[0].headers["authorization"] == "Bearer proxy-token"


def test_cached_prompt_leaves_out_its_count() -> None:
    outcome = drive(provider(), lambda request: ndjson(line("abcd"), done(prompt=None, output=1)))
    assert outcome.usage == [Usage(5, 1, estimated=True)]
    missing = drive(provider(), lambda request: ndjson(line("abcd"), done(None, None)))
    assert missing.usage == [Usage(5, 1, estimated=True)]


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


# --- against the loopback server ----------------------------------------------------


def test_loopback_faults(model_server: ScriptedModelServer) -> None:
    model_server.script(
        error(503, "loading model"),
        text("fine"),
        cut("partial"),
        error_event("so far", "runner crashed"),
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
