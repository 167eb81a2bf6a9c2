"""The shared HTTP layer: error shapes, redaction, URL and key checks."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from model_server import ScriptedModelServer, text
from provider_doubles import drive

from codeact_kernel.errors import (
    AuthenticationFailed,
    ConfigurationError,
    ProviderTimeout,
    ServerError,
)
from codeact_kernel.providers.base import ProviderConfig
from codeact_kernel.providers.excerpts import error_message
from codeact_kernel.providers.http import Endpoint, check_key, is_context_error, parse_url
from codeact_kernel.providers.openai import OpenAIProvider


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"error": {"message": "bad model", "type": "invalid_request_error"}}, "bad model"),
        (
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            "Overloaded",
        ),
        ({"error": "model 'x' not found"}, "model 'x' not found"),
        ({"detail": "Not Found"}, "Not Found"),
        ({"message": "upstream"}, "upstream"),
        ("plain text body", "plain text body"),
        ({"error": {"type": "server_error"}}, "server_error"),
        ([1, 2], ""),
    ],
)
def test_error_message_shapes(payload: object, message: str) -> None:
    assert error_message(payload) == message


@pytest.mark.parametrize(
    "message",
    [
        "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens",
        "prompt is too long: 210000 tokens > 200000 maximum",
        "the request exceeds the available context size, try increasing it",
        "the input length exceeds the context length",
        "Input is too long: too many tokens",
    ],
)
def test_context_errors_are_recognised(message: str) -> None:
    assert is_context_error(message)


def test_ordinary_errors_are_not_context_errors() -> None:
    assert not is_context_error("temperature must be at most 2")
    assert is_context_error("whatever", "context_length_exceeded")


@settings(max_examples=200, deadline=None)
@given(
    key=st.text(st.characters(codec="ascii", categories=("L", "N", "P")), min_size=12, max_size=60),
    before=st.text(max_size=30),
    after=st.text(max_size=30),
)
def test_redaction_removes_the_key_wherever_it_appears(key: str, before: str, after: str) -> None:
    endpoint = Endpoint("the server", "http://h/v1", ProviderConfig("m", api_key=key))
    assert key not in endpoint.redact(before + key + after + key)


def test_keylike_strings_are_redacted_even_when_not_ours() -> None:
    endpoint = Endpoint("the server", "http://h/v1", ProviderConfig("m", api_key="mine-123456789"))
    assert endpoint.redact("got sk-proj-abcdefgh12345 instead") == "got sk-*** instead"


@pytest.mark.parametrize(
    "url", ["http://exa mple/v1", "ftp://host/v1", "http:///v1", "http://h:99999", "http://[::1/v1"]
)
def test_unusable_urls_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigurationError, match="not a valid base URL"):
        parse_url(url)


@pytest.mark.parametrize("key", ["sk-abc def-123456", "sk-abc\ndef", "sk-clé-123456"])
def test_keys_that_cannot_be_sent_are_refused_without_being_shown(key: str) -> None:
    config = ProviderConfig("m", api_key=key, api_key_source="OPENAI_API_KEY")
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY") as caught:
        check_key(config)
    assert key not in str(caught.value)
    with pytest.raises(ConfigurationError):
        drive(
            lambda client: OpenAIProvider(
                ProviderConfig("m", base_url="http://h/v1", api_key=key), client
            ),
            lambda request: httpx.Response(500),
        )


def test_a_bad_base_url_fails_when_the_model_is_built() -> None:
    with pytest.raises(ConfigurationError, match="not a valid base URL"):
        drive(
            lambda client: OpenAIProvider(ProviderConfig("m", base_url="ftp://x/v1"), client),
            lambda request: httpx.Response(500),
        )


def test_error_bodies_are_cut_short() -> None:
    outcome = drive(
        lambda client: OpenAIProvider(ProviderConfig("m", base_url="http://h/v1"), client),
        lambda request: httpx.Response(400, text="x" * 5000),
    )
    assert isinstance(outcome.error, ServerError)
    assert len(str(outcome.error)) < 700


def test_idle_timeout_mid_stream_over_real_http(model_server: ScriptedModelServer) -> None:
    model_server.script(text("slow answer", chunk_size=2, delay=1.0))
    outcome = drive(
        lambda client: OpenAIProvider(
            ProviderConfig("m", base_url=model_server.url, idle_timeout=0.2), client
        )
    )
    assert outcome.text == "sl"
    assert isinstance(outcome.error, ProviderTimeout)
    assert "stalled" in str(outcome.error) or "sent nothing" in str(outcome.error)


@pytest.mark.parametrize(
    ("status", "source", "expected"),
    [
        (401, "OPENAI_API_KEY", "rejected the API key from OPENAI_API_KEY (401: no)"),
        (401, None, "rejected the configured API key (401: no)"),
        (403, "CODEACT_API_KEY", "refused access with the API key from CODEACT_API_KEY (403: no)"),
    ],
)
def test_authentication_wording(status: int, source: str | None, expected: str) -> None:
    config = ProviderConfig("m", base_url="http://h/v1", api_key="k" * 20, api_key_source=source)
    outcome = drive(
        lambda client: OpenAIProvider(config, client),
        lambda request: httpx.Response(status, json={"error": {"message": "no"}}),
    )
    assert isinstance(outcome.error, AuthenticationFailed)
    assert expected in str(outcome.error)
