"""What every provider does alike (the `HttpModel` base), once for each of them.

Each test runs for OpenAI, Anthropic and Ollama against `httpx.MockTransport` or the
loopback server; what only one dialect does is tested in its own module.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from model_server import ScriptedModelServer, error, text
from provider_doubles import (
    ANTHROPIC,
    DIALECTS,
    OLLAMA,
    OPENAI,
    Dialect,
    Sleeps,
    drive,
    no_request,
    split,
)

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
from codeact_kernel.providers.anthropic import AnthropicProvider
from codeact_kernel.providers.base import TextDelta, Usage
from codeact_kernel.providers.http_model import HttpModel
from codeact_kernel.providers.ollama import OllamaProvider
from codeact_kernel.providers.openai import OpenAIProvider

KEY = "sk-test-SECRET-0123456789abcdef"

every_provider = pytest.mark.parametrize("dialect", DIALECTS, ids=str)
unreachable_hints = pytest.mark.parametrize(
    ("dialect", "hint"),
    [
        (OPENAI, "Is the server running, and is CODEACT_BASE_URL (or OPENAI_BASE_URL) right?"),
        (
            ANTHROPIC,
            "Is the server running, and is CODEACT_BASE_URL (or ANTHROPIC_BASE_URL) right?",
        ),
        (OLLAMA, "Is Ollama running?"),
    ],
    ids=str,
)


# --- what a provider declares and shows ------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "given_url", "expected"),
    [
        (OpenAIProvider, None, "https://api.openai.com/v1"),
        (OpenAIProvider, "http://localhost:8000/v1/", "http://localhost:8000/v1"),
        (OpenAIProvider, "http://localhost:8000", "http://localhost:8000/v1"),
        (OpenAIProvider, "localhost:8080/v1", "http://localhost:8080/v1"),
        (OpenAIProvider, "https://openrouter.ai/api/v1", "https://openrouter.ai/api/v1"),
        (OpenAIProvider, "http://h:1/v1/chat/completions", "http://h:1/v1"),
        (AnthropicProvider, None, "https://api.anthropic.com"),
        (AnthropicProvider, "https://api.anthropic.com/v1/", "https://api.anthropic.com"),
        (AnthropicProvider, "http://proxy:8080/v1/messages", "http://proxy:8080"),
        (AnthropicProvider, "proxy.example/anthropic", "https://proxy.example/anthropic"),
        (OllamaProvider, None, "http://localhost:11434"),
        (OllamaProvider, "localhost:11434", "http://localhost:11434"),
        (OllamaProvider, "0.0.0.0", "http://0.0.0.0:11434"),
        (OllamaProvider, "gpu-box:8080", "http://gpu-box:8080"),
        (OllamaProvider, "https://ollama.example.com", "https://ollama.example.com"),
        (OllamaProvider, "http://127.0.0.1:11434/", "http://127.0.0.1:11434"),
        (OllamaProvider, "http://127.0.0.1:11434/v1", "http://127.0.0.1:11434"),
        (OllamaProvider, "http://proxy/ollama/api", "http://proxy:11434/ollama"),
    ],
)
def test_base_url_normalisation(
    provider: type[HttpModel], given_url: str | None, expected: str
) -> None:
    assert provider.normalize_base_url(given_url) == expected


@pytest.mark.parametrize("provider", [OpenAIProvider, AnthropicProvider, OllamaProvider])
def test_unusable_base_urls_are_refused_without_a_client(provider: type[HttpModel]) -> None:
    with pytest.raises(ConfigurationError, match="not a valid base URL"):
        provider.normalize_base_url("ftp://host/v1")


@pytest.mark.parametrize(
    ("dialect", "model", "name", "endpoint"),
    [
        (OPENAI, "gpt-4o-mini", "openai:gpt-4o-mini", "https://api.openai.com/v1"),
        (
            ANTHROPIC,
            "claude-sonnet-4-5",
            "anthropic:claude-sonnet-4-5",
            "https://api.anthropic.com",
        ),
        (OLLAMA, "llama3.2", "ollama:llama3.2", "http://localhost:11434"),
    ],
    ids=str,
)
def test_name_endpoint_and_repr_hide_the_key(
    dialect: Dialect, model: str, name: str, endpoint: str
) -> None:
    async def build() -> Model:
        async with httpx.AsyncClient() as client:
            return dialect.make(model=model, base_url=None, api_key=KEY)(client)

    built = asyncio.run(build())
    assert isinstance(built, Model)
    assert built.name == name
    assert built.endpoint == endpoint
    assert KEY not in repr(built)
    assert repr(built) == f"{dialect.provider.__name__}({name!r}, endpoint={endpoint!r})"


# --- the key -------------------------------------------------------------------------


@every_provider
def test_401_names_the_variable_and_never_the_key(dialect: Dialect) -> None:
    source = dialect.provider.key_variables[-1]
    outcome = drive(
        dialect.make(api_key=KEY, api_key_source=source),
        lambda request: dialect.error(401, f"Incorrect API key provided: {KEY}."),
    )
    assert isinstance(outcome.error, AuthenticationFailed)
    message = str(outcome.error)
    assert source in message
    assert "rejected" in message
    assert KEY not in message
    assert KEY not in repr(outcome.error)
    assert outcome.error.status == 401
    assert len(outcome.requests) == 1


@pytest.mark.parametrize(
    ("dialect", "variables"),
    [
        (OPENAI, "Set CODEACT_API_KEY or OPENAI_API_KEY."),
        (ANTHROPIC, "Set CODEACT_API_KEY or ANTHROPIC_API_KEY."),
        (OLLAMA, "Set CODEACT_API_KEY."),
    ],
    ids=str,
)
def test_401_without_a_key_says_which_variables_to_set(dialect: Dialect, variables: str) -> None:
    outcome = drive(dialect.make(), lambda request: dialect.error(401, "missing key"))
    assert isinstance(outcome.error, AuthenticationFailed)
    assert variables in str(outcome.error)


@pytest.mark.parametrize(
    ("dialect", "advice"),
    [
        (
            OPENAI,
            "No API key for OpenAI. Set OPENAI_API_KEY (or CODEACT_API_KEY) to your key, or set "
            "CODEACT_BASE_URL to a local OpenAI-compatible server that needs none.",
        ),
        (
            ANTHROPIC,
            "No API key for Anthropic. Set ANTHROPIC_API_KEY (or CODEACT_API_KEY) to your key "
            "from https://console.anthropic.com/.",
        ),
    ],
    ids=str,
)
def test_the_vendors_api_without_a_key_is_a_configuration_error(
    dialect: Dialect, advice: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        drive(dialect.make(base_url=None), lambda request: dialect.respond(*dialect.answer("x")))
    assert str(caught.value) == advice

    async def listing() -> list[str]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(no_request)) as client:
            return await dialect.make(base_url=None)(client).list_models()

    with pytest.raises(ConfigurationError, match="No API key"):
        asyncio.run(listing())


# --- errors before the answer ----------------------------------------------------------


@every_provider
def test_404_lists_the_available_models(dialect: Dialect) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json=dialect.listing(["llama-3", "qwen"]))
        return dialect.error(404, f"The model `{dialect.model}` does not exist")

    outcome = drive(dialect.make(), handler)
    assert isinstance(outcome.error, ModelNotFound)
    assert repr(dialect.model) in str(outcome.error)
    assert "Available models: llama-3, qwen." in str(outcome.error)


@unreachable_hints
def test_connection_refused_names_the_url_and_what_to_check(dialect: Dialect, hint: str) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    sleeps = Sleeps()
    outcome = drive(dialect.make(sleeps=sleeps), refuse)
    assert isinstance(outcome.error, ConnectionFailed)
    message = str(outcome.error)
    assert dialect.base_url in message
    assert "Connection refused" in message
    assert hint in message
    assert outcome.notices == [
        "could not connect, retrying in 0.5 s",
        "could not connect, retrying in 1 s",
    ]
    assert sleeps.waits == [0.5, 1.0]


@every_provider
def test_429_gives_up_after_max_retries(dialect: Dialect) -> None:
    sleeps = Sleeps()
    outcome = drive(
        dialect.make(sleeps=sleeps, max_retries=2),
        lambda request: dialect.error(
            429, "Number of requests exceeded", **{"retry-after-ms": "1500"}
        ),
    )
    assert isinstance(outcome.error, RateLimited)
    assert "Number of requests exceeded" in str(outcome.error)
    assert len(outcome.requests) == 3
    assert sleeps.waits == [1.5, 1.5]


@every_provider
@pytest.mark.parametrize("status", [408, 409, 500, 502, 503, 529])
def test_retryable_statuses_back_off_exponentially(dialect: Dialect, status: int) -> None:
    sleeps = Sleeps()
    outcome = drive(
        dialect.make(sleeps=sleeps, max_retries=3),
        lambda request: dialect.error(status, "llama runner process has terminated"),
    )
    assert isinstance(outcome.error, ServerError)
    assert "llama runner process has terminated" in str(outcome.error)
    assert str(status) in str(outcome.error)
    assert sleeps.waits == [0.5, 1.0, 2.0]
    why = "server overloaded" if status == 529 else f"server error {status}"
    assert outcome.notices == [f"{why}, retrying in {s} s" for s in ("0.5", "1", "2")]


@every_provider
def test_a_prompt_too_long_is_context_too_long_and_not_retried(dialect: Dialect) -> None:
    outcome = drive(
        dialect.make(),
        lambda request: dialect.error(400, "prompt is too long: 210000 tokens > 200000 maximum"),
    )
    assert isinstance(outcome.error, ContextTooLong)
    assert "210000" in str(outcome.error)
    assert len(outcome.requests) == 1


# --- errors mid-answer ---------------------------------------------------------------


@every_provider
def test_an_error_mid_stream_keeps_the_text(dialect: Dialect) -> None:
    outcome = drive(
        dialect.make(),
        lambda request: dialect.respond(
            dialect.opening, dialect.piece("partial "), dialect.error_event("worker crashed")
        ),
    )
    assert outcome.text == "partial "
    assert isinstance(outcome.error, StreamError)
    assert "worker crashed" in str(outcome.error)
    assert "incomplete" in str(outcome.error)
    assert len(outcome.requests) == 1


@every_provider
def test_a_context_error_in_the_stream_is_context_too_long(dialect: Dialect) -> None:
    failure = dialect.error_event("the input length exceeds the context length")
    outcome = drive(dialect.make(), lambda request: dialect.respond(dialect.opening, failure))
    assert isinstance(outcome.error, ContextTooLong)


@every_provider
def test_a_malformed_stream_is_a_stream_error(dialect: Dialect) -> None:
    outcome = drive(
        dialect.make(),
        lambda request: dialect.respond(
            dialect.opening, dialect.piece("ok "), dialect.malformed, dialect.closing
        ),
    )
    assert outcome.text == "ok "
    assert isinstance(outcome.error, StreamError)
    assert "malformed" in str(outcome.error)


@every_provider
def test_a_disconnect_mid_stream_keeps_the_text(dialect: Dialect) -> None:
    broken = httpx.RemoteProtocolError("peer closed connection")
    outcome = drive(
        dialect.make(),
        lambda request: dialect.respond(dialect.opening, dialect.piece("half an ans"), fail=broken),
    )
    assert outcome.text == "half an ans"
    assert isinstance(outcome.error, StreamError)
    assert "broke mid-answer" in str(outcome.error)
    assert len(outcome.requests) == 1, "a stream that started is never retried"


@every_provider
def test_a_stream_that_ends_early_is_truncated(dialect: Dialect) -> None:
    outcome = drive(
        dialect.make(), lambda request: dialect.respond(dialect.opening, dialect.piece("half"))
    )
    assert outcome.text == "half"
    assert isinstance(outcome.error, StreamError)
    assert "ended before the answer was complete" in str(outcome.error)


@every_provider
def test_an_empty_answer_is_an_error(dialect: Dialect) -> None:
    outcome = drive(dialect.make(), lambda request: dialect.respond(*dialect.answer()))
    assert isinstance(outcome.error, StreamError)
    assert "empty answer" in str(outcome.error)


@every_provider
def test_idle_timeout_between_chunks(dialect: Dialect) -> None:
    outcome = drive(
        dialect.make(idle_timeout=0.05),
        lambda request: dialect.respond(*dialect.answer("slow", "er"), pause=0.3),
    )
    assert isinstance(outcome.error, ProviderTimeout)
    assert "idle_timeout" in str(outcome.error)


@every_provider
@settings(max_examples=100, deadline=None)
@given(
    texts=st.lists(st.text(st.characters(codec="utf-8"), min_size=1, max_size=10), max_size=10),
    eol=st.sampled_from([b"\n", b"\r", b"\r\n"]),
    cuts=st.lists(st.integers(min_value=0, max_value=5000), max_size=25),
)
def test_any_chunking_yields_the_text(
    dialect: Dialect, texts: list[str], eol: bytes, cuts: list[int]
) -> None:
    body = b"".join(dialect.answer(*texts, "!")).replace(b"\n", eol)
    outcome = drive(dialect.make(), lambda request: dialect.respond(*split(body, cuts)))
    assert outcome.error is None
    assert [i.text for i in outcome.items if isinstance(i, TextDelta)] == [*texts, "!"]


# --- against the loopback server ------------------------------------------------------


@every_provider
def test_loopback_streams_and_honours_stop(
    dialect: Dialect, model_server: ScriptedModelServer
) -> None:
    model_server.script(text("x = 1\n</execute>\nmore", chunk_size=3, usage=(40, 7)))
    outcome = drive(dialect.loopback(model_server, api_key=KEY), stop=("</execute>",))
    assert outcome.error is None
    assert outcome.text == "x = 1\n"
    assert outcome.usage == [Usage(40, 7)]
    sent = model_server.requests[0]
    assert sent["path"] == dialect.chat_path
    assert dialect.stops(sent["body"]) == ["</execute>"]
    assert sent["headers"][dialect.key_header] == f"{dialect.key_prefix}{KEY}"


@every_provider
def test_list_models_through_the_protocol(
    dialect: Dialect, model_server: ScriptedModelServer
) -> None:
    model_server.models = ["alpha", "qwen2.5-coder:7b"]

    async def listing() -> list[str]:
        async with httpx.AsyncClient() as client:
            model: Model = dialect.loopback(model_server)(client)
            return await model.list_models()

    assert asyncio.run(listing()) == ["alpha", "qwen2.5-coder:7b"]


@every_provider
def test_loopback_404_lists_models(dialect: Dialect, model_server: ScriptedModelServer) -> None:
    model_server.models = ["alpha", "beta"]
    model_server.script(error(404, f"The model `{dialect.model}` does not exist"))
    outcome = drive(dialect.loopback(model_server))
    assert isinstance(outcome.error, ModelNotFound)
    assert "Available models: alpha, beta." in str(outcome.error)


@pytest.mark.parametrize(
    ("dialect", "message", "code"),
    [
        (OPENAI, "This model's maximum context length is 8192 tokens.", "context_length_exceeded"),
        (ANTHROPIC, "prompt is too long: 210000 tokens > 200000 maximum", None),
        (OLLAMA, "the input length exceeds the context length", None),
    ],
    ids=str,
)
def test_loopback_context_length(
    dialect: Dialect, message: str, code: str | None, model_server: ScriptedModelServer
) -> None:
    model_server.script(error(400, message, code=code))
    outcome = drive(dialect.loopback(model_server))
    assert isinstance(outcome.error, ContextTooLong)
    assert len(model_server.requests) == 1


@unreachable_hints
def test_loopback_connection_refused(dialect: Dialect, hint: str) -> None:
    with ScriptedModelServer() as gone:
        url = dialect.loopback_url(gone)
    outcome = drive(dialect.make(base_url=url, max_retries=0))
    assert isinstance(outcome.error, ConnectionFailed)
    assert url in str(outcome.error)
    assert hint in str(outcome.error)
