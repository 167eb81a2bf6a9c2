"""What every provider does alike (the `HttpModel` base), once for each of them.

Each test runs for OpenAI, Anthropic and Ollama against `httpx.MockTransport`, the
loopback server or a silent one; what only one dialect does is tested in its own module.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from model_server import ScriptedModelServer, error, hang, raw, text
from provider_doubles import (
    ANTHROPIC,
    DIALECTS,
    OLLAMA,
    OPENAI,
    Dialect,
    SilentServer,
    Sleeps,
    drive,
    ndjson,
    no_request,
    split,
    sse,
    timed,
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
from codeact_kernel.providers.base import ProviderConfig, TextDelta, Truncated, Usage
from codeact_kernel.providers.http_model import HttpModel
from codeact_kernel.providers.ollama import OllamaProvider
from codeact_kernel.providers.openai import OpenAIProvider
from codeact_kernel.providers.retry import RetryPolicy
from codeact_kernel.settings import Settings

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
        lambda request: dialect.respond(
            dialect.opening + dialect.piece("slow"), dialect.piece("er"), dialect.closing, pause=0.3
        ),
    )
    assert outcome.text == "slow"
    assert isinstance(outcome.error, ProviderTimeout)
    assert str(outcome.error).endswith(
        "stalled: no data for 0.05 s (idle_timeout). The answer above is incomplete."
    )
    assert outcome.notices == []


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


# --- the output limit ------------------------------------------------------------------


@every_provider
def test_the_output_limit_is_sent(dialect: Dialect) -> None:
    default = drive(dialect.make(), lambda request: dialect.respond(*dialect.answer("ok")))
    assert dialect.limit(json.loads(default.requests[0].content)) == 4096
    chosen = drive(
        dialect.make(max_tokens=300), lambda request: dialect.respond(*dialect.answer("ok"))
    )
    assert dialect.limit(json.loads(chosen.requests[0].content)) == 300


@pytest.mark.parametrize(("dialect", "sent"), [(OPENAI, None), (ANTHROPIC, 4096), (OLLAMA, None)])
def test_no_limit_sends_none_but_where_the_api_requires_one(
    dialect: Dialect, sent: int | None
) -> None:
    outcome = drive(
        dialect.make(max_tokens=None), lambda request: dialect.respond(*dialect.answer("ok"))
    )
    assert outcome.error is None
    assert dialect.limit(json.loads(outcome.requests[0].content)) == sent


@every_provider
def test_an_answer_cut_at_the_limit_is_truncated_after_its_text(dialect: Dialect) -> None:
    outcome = drive(
        dialect.make(max_tokens=300),
        lambda request: dialect.respond(*dialect.cut_answer("```python\n", "x = [1,")),
    )
    assert outcome.error is None
    assert outcome.text == "```python\nx = [1,"
    assert outcome.kinds == ["TextDelta", "Truncated", "Usage"]
    assert outcome.truncated == [Truncated(300)]


@every_provider
def test_a_complete_answer_is_not_truncated(dialect: Dialect) -> None:
    outcome = drive(dialect.make(), lambda request: dialect.respond(*dialect.answer("done.")))
    assert outcome.kinds == ["TextDelta", "Usage"]


@every_provider
def test_the_limit_reached_before_any_text_says_to_raise_it(dialect: Dialect) -> None:
    outcome = drive(dialect.make(), lambda request: dialect.respond(*dialect.cut_answer()))
    assert isinstance(outcome.error, StreamError)
    message = str(outcome.error)
    assert "output limit (4096 tokens, max_tokens)" in message
    assert "CODEACT_MAX_TOKENS" in message
    assert outcome.truncated == []


@every_provider
def test_loopback_truncated(dialect: Dialect, model_server: ScriptedModelServer) -> None:
    model_server.script(text("print('a very long", finish="length"))
    outcome = drive(dialect.loopback(model_server, max_tokens=50))
    assert outcome.error is None
    assert outcome.text == "print('a very long"
    assert outcome.kinds == ["TextDelta", "Truncated", "Usage"]
    assert outcome.truncated == [Truncated(50)]
    assert dialect.limit(model_server.requests[0]["body"]) == 50


# --- replies that are not the stream asked for -----------------------------------------

NGINX_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.25.3</center>\r\n"
    "</body>\r\n</html>\r\n"
)
BIG_PAGE = (
    "<!DOCTYPE html><html><head><title>Welcome | Acme intranet</title>"
    "<style>body { color: red }</style><script>var tracking = 'x'.repeat(9);</script></head>"
    "<body><nav>Home &amp; away</nav>" + "<p>Lorem ipsum dolor sit amet.</p>" * 400 + "</body>"
)


def page(status: int, body: str, content_type: str = "text/html; charset=utf-8") -> httpx.Response:
    return httpx.Response(status, headers={"content-type": content_type}, text=body)


def stream_name(dialect: Dialect) -> str:
    if dialect is OLLAMA:
        return "a stream of JSON lines (application/x-ndjson)"
    return "an event stream (text/event-stream)"


@every_provider
@pytest.mark.parametrize(
    ("reply", "said"),
    [
        (
            lambda: httpx.Response(200, json={"error": {"message": "upstream said no"}}),
            'with application/json instead of {stream}: "upstream said no". Check the base URL',
        ),
        (
            lambda: httpx.Response(200, json={"id": "x", "choices": [{"message": {}}]}),
            'with application/json instead of {stream}: "{{"id": "x"',
        ),
        (
            lambda: page(200, BIG_PAGE),
            "with a web page (text/html) instead of {stream}: "
            '"Welcome | Acme intranet: Home & away Lorem ipsum dolor sit amet.',
        ),
        (
            lambda: page(200, "Ollama is running", "text/plain"),
            'with text/plain instead of {stream}: "Ollama is running".',
        ),
        (
            lambda: httpx.Response(200, headers={"content-type": "application/json"}),
            "with an empty body (application/json) instead of {stream}. Check",
        ),
        (
            lambda: httpx.Response(200, content=b"<html><body>Sign in</body></html>"),
            'with a web page (no content type) instead of {stream}: "Sign in"',
        ),
    ],
    ids=["json-error", "json-answer", "html", "text", "empty", "untyped-html"],
)
def test_a_200_that_is_not_a_stream_says_what_came(
    dialect: Dialect, reply: Callable[[], httpx.Response], said: str
) -> None:
    outcome = drive(dialect.make(), lambda request: reply())
    assert isinstance(outcome.error, ServerError)
    assert outcome.error.status == 200
    message = str(outcome.error)
    assert message.startswith(f"{dialect.provider.server_label[:1].upper()}")
    assert f"{dialect.base_url} answered HTTP 200 " in message
    assert said.format(stream=stream_name(dialect)) in message
    assert "<" not in message and "tracking" not in message and "color" not in message
    assert "incomplete" not in message and "closed early" not in message
    assert len(message) < 700
    assert outcome.text == "" and outcome.notices == []
    assert len(outcome.requests) == 1


@every_provider
def test_advice_for_what_came_instead_of_a_stream(dialect: Dialect) -> None:
    web = drive(dialect.make(), lambda request: page(200, NGINX_502)).error
    assert f"Check the base URL{dialect.provider.base_url_hint}: it leads to a website" in str(web)
    json_reply = drive(dialect.make(), lambda request: httpx.Response(200, json={"a": 1})).error
    assert str(json_reply).endswith(
        f"Check the base URL{dialect.provider.base_url_hint}, any proxy in between, and that "
        "the server supports streaming."
    )


@every_provider
def test_a_200_with_a_context_error_instead_of_a_stream_is_context_too_long(
    dialect: Dialect,
) -> None:
    body = {"error": {"message": "prompt is too long: 9000 tokens > 8192 maximum"}}
    outcome = drive(dialect.make(), lambda request: httpx.Response(200, json=body))
    assert isinstance(outcome.error, ContextTooLong)


@every_provider
@pytest.mark.parametrize("content_type", ["text/plain", "application/octet-stream", ""])
def test_a_stream_under_another_content_type_is_still_read(
    dialect: Dialect, content_type: str
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    body = b"".join(dialect.answer("fine"))
    outcome = drive(
        dialect.make(), lambda request: httpx.Response(200, headers=headers, content=body)
    )
    assert outcome.error is None
    assert outcome.text == "fine"


@pytest.mark.parametrize("dialect", [OPENAI, ANTHROPIC], ids=str)
def test_json_under_the_event_stream_type_is_reported(dialect: Dialect) -> None:
    body = json.dumps({"error": {"message": "streaming is disabled here"}})
    outcome = drive(dialect.make(), lambda request: page(200, body, "text/event-stream"))
    assert isinstance(outcome.error, ServerError)
    assert 'with text/event-stream instead of an event stream (text/event-stream): "streaming' in (
        str(outcome.error)
    )


def test_an_ollama_error_line_under_json_is_reported_as_what_it_is() -> None:
    outcome = drive(
        OLLAMA.make(),
        lambda request: httpx.Response(200, json={"error": "model requires more system memory"}),
    )
    assert isinstance(outcome.error, ServerError)
    assert (
        "answered HTTP 200 with application/json instead of a stream of JSON lines "
        '(application/x-ndjson): "model requires more system memory".' in str(outcome.error)
    )


@every_provider
@pytest.mark.parametrize(
    ("status", "advice"),
    [
        (502, "A proxy or gateway answered for the model server"),
        (504, "A proxy or gateway answered for the model server"),
        (404, "The page came from a web server or proxy, not from the model API"),
        (400, "The page came from a web server or proxy, not from the model API"),
    ],
)
def test_an_error_page_is_quoted_clean(dialect: Dialect, status: int, advice: str) -> None:
    body = NGINX_502.replace("502 Bad Gateway", f"{status} Oops")
    outcome = drive(dialect.make(sleeps=Sleeps()), lambda request: page(status, body))
    assert isinstance(outcome.error, ServerError)
    assert outcome.error.status == status
    message = str(outcome.error)
    assert (
        f"failed with HTTP {status} and a web page (text/html) instead of an API reply: "
        f'"{status} Oops nginx/1.25.3". {advice}'
    ) in message
    assert dialect.provider.base_url_hint in message
    assert "<" not in message


@every_provider
@pytest.mark.parametrize("status", [401, 403, 429, 500])
def test_error_pages_never_put_markup_into_the_message(dialect: Dialect, status: int) -> None:
    outcome = drive(
        dialect.make(sleeps=Sleeps(), api_key=KEY), lambda request: page(status, BIG_PAGE)
    )
    assert outcome.error is not None
    message = str(outcome.error)
    assert "Welcome | Acme intranet" in message
    assert "<" not in message and "tracking" not in message
    assert len(message) < 700


@every_provider
def test_plain_text_error_bodies_are_collapsed(dialect: Dialect) -> None:
    outcome = drive(
        dialect.make(sleeps=Sleeps()),
        lambda request: page(500, "upstream\n\n   connect error\r\n" + "x " * 500, "text/plain"),
    )
    message = str(outcome.error)
    assert "HTTP 500: upstream connect error x x" in message
    assert "\n" not in message and len(message) < 400


@every_provider
def test_errors_before_any_text_do_not_speak_of_an_answer_above(dialect: Dialect) -> None:
    before = drive(
        dialect.make(),
        lambda request: dialect.respond(dialect.opening, dialect.error_event("worker crashed")),
    )
    assert isinstance(before.error, StreamError)
    assert "reported an error before answering: worker crashed." in str(before.error)
    ended = drive(dialect.make(), lambda request: dialect.respond(dialect.opening))
    # A dialect whose stream opens with nothing sent an empty body, and is told so.
    said = "ended before any answer arrived" if dialect.opening else "with an empty body"
    assert said in str(ended.error)
    broken = httpx.RemoteProtocolError("peer closed connection")
    dropped = drive(
        dialect.make(), lambda request: dialect.respond(dialect.opening or b"\n", fail=broken)
    )
    assert isinstance(dropped.error, StreamError)
    for failure in (before.error, ended.error, dropped.error):
        assert "above" not in str(failure)


@every_provider
def test_loopback_replies_that_are_not_streams(
    dialect: Dialect, model_server: ScriptedModelServer
) -> None:
    model_server.script(
        raw(json.dumps({"error": {"message": "no streaming for you"}})),
        raw(NGINX_502, status=502, content_type="text/html"),
        raw(NGINX_502, status=502, content_type="text/html"),
    )
    not_streamed = drive(dialect.loopback(model_server))
    assert isinstance(not_streamed.error, ServerError)
    assert "HTTP 200 with application/json instead of" in str(not_streamed.error)
    assert '"no streaming for you"' in str(not_streamed.error)
    gateway = drive(dialect.loopback(model_server, max_retries=1))
    assert isinstance(gateway.error, ServerError)
    assert 'HTTP 502 and a web page (text/html) instead of an API reply: "502 Bad Gateway' in (
        str(gateway.error)
    )
    assert gateway.notices == ["server error 502, retrying in 0.5 s"]


# The whole answer as each API sends it when it does not stream.
UNSTREAMED = {
    "openai": {
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there"}}],
    },
    "anthropic": {"type": "message", "content": [{"type": "text", "text": "Hello there"}]},
    "ollama": {"message": {"role": "assistant", "content": "Hello there"}, "done": True},
}


@every_provider
@pytest.mark.parametrize("shape", list(UNSTREAMED))
def test_a_whole_unstreamed_answer_says_the_server_did_not_stream(
    dialect: Dialect, shape: str
) -> None:
    outcome = drive(dialect.make(), lambda request: httpx.Response(200, json=UNSTREAMED[shape]))
    if dialect.name == shape == "ollama":
        # Ollama's whole answer is one line of its stream: it is read.
        assert outcome.error is None and outcome.text == "Hello there"
        return
    assert isinstance(outcome.error, ServerError)
    assert (
        "answered HTTP 200 with a whole answer in one JSON document (application/json) "
        f'instead of {stream_name(dialect)}: "Hello there". The server ignored "stream": true'
    ) in str(outcome.error)
    assert "{" not in str(outcome.error)


@every_provider
@pytest.mark.parametrize("content_type", ["text/event-stream", "application/x-ndjson"])
def test_an_empty_200_says_so(dialect: Dialect, content_type: str) -> None:
    outcome = drive(dialect.make(), lambda request: page(200, "\n", content_type))
    assert isinstance(outcome.error, ServerError)
    assert f"answered HTTP 200 with an empty body ({content_type}) instead of" in str(outcome.error)
    assert "closed early" not in str(outcome.error)


@pytest.mark.parametrize("dialect", [OPENAI, ANTHROPIC], ids=str)
def test_a_proxys_text_under_the_event_stream_type_is_quoted(dialect: Dialect) -> None:
    envoy = "upstream connect error or disconnect/reset before headers. reset reason: overflow"
    outcome = drive(dialect.make(), lambda request: page(200, envoy, "text/event-stream"))
    assert isinstance(outcome.error, ServerError)
    assert (
        "answered HTTP 200 with text/event-stream instead of an event stream "
        f'(text/event-stream): "{envoy}". Check the base URL'
    ) in str(outcome.error)


@pytest.mark.parametrize("dialect", [OPENAI, ANTHROPIC], ids=str)
def test_a_page_framed_as_events_is_a_web_page(dialect: Dialect) -> None:
    framed = "".join(f"data: {row}\n" for row in NGINX_502.splitlines()) + "\n"
    outcome = drive(dialect.make(), lambda request: page(200, framed, "text/event-stream"))
    assert isinstance(outcome.error, ServerError)
    message = str(outcome.error)
    assert (
        "answered HTTP 200 with a web page (sent as text/event-stream) instead of an event "
        'stream (text/event-stream): "502 Bad Gateway nginx/1.25.3". Check the base URL'
    ) in message
    assert "<" not in message and "data:" not in message


@every_provider
@pytest.mark.parametrize("framed", [False, True], ids=["bare", "as-data"])
def test_a_page_in_the_middle_of_a_stream_is_quoted_clean(dialect: Dialect, framed: bool) -> None:
    gateway = NGINX_502.replace("502 Bad Gateway", "504 Gateway Time-out")
    if framed and dialect is not OLLAMA:
        gateway = "".join(f"data: {row}\n" for row in gateway.splitlines()) + "\n"
    body = [dialect.opening, dialect.piece("Half an ans"), gateway.encode()]
    outcome = drive(dialect.make(), lambda request: dialect.respond(*body))
    assert isinstance(outcome.error, StreamError)
    assert outcome.text == "Half an ans"
    assert str(outcome.error) == (
        f"The stream from {dialect.provider.server_label if dialect is not OLLAMA else 'Ollama'}"
        f" at {dialect.base_url} broke off into a web page: "
        '"504 Gateway Time-out nginx/1.25.3". The answer above is incomplete. A proxy or '
        "gateway in between probably gave up on the server (a timeout?): check it and the "
        "server, then try again."
    )


OTHER_STREAMS = {
    "openai": lambda: sse(*OPENAI.answer("Hi")),
    "anthropic": lambda: sse(*ANTHROPIC.answer("Hi")),
    "ollama": lambda: ndjson(*OLLAMA.answer("Hi")),
}


@every_provider
@pytest.mark.parametrize("other", list(OTHER_STREAMS))
def test_another_apis_stream_says_to_check_the_provider(dialect: Dialect, other: str) -> None:
    outcome = drive(dialect.make(), lambda request: OTHER_STREAMS[other]())
    if other == dialect.name:
        assert outcome.error is None and outcome.text == "Hi"
        return
    assert outcome.error is not None
    message = str(outcome.error)
    assert "closed early" not in message and "incomplete" not in message
    if dialect is OLLAMA or other == "ollama":
        # Lines for events, or events for lines: the reply is not the stream at all.
        came = "an event stream" if dialect is OLLAMA else "a stream of JSON lines"
        assert f"answered HTTP 200 with {came} (" in message
    else:
        assert "sent a stream without an answer in the format this provider reads" in message
    assert "check the provider in the model name (openai:, anthropic: or ollama:)" in message


# --- timeouts: stuck servers and slow starts -------------------------------------------


def worst_case(config: ProviderConfig, policy: RetryPolicy) -> float:
    """The longest a server that never answers can take to be reported (http.py's
    docstring): failed connections, their backoff, then silence and the check."""
    backoff = sum(
        min(policy.max_delay, policy.base_delay * 2**attempt)
        for attempt in range(config.max_retries)
    )
    connect = config.connect_timeout
    return config.max_retries * connect + backoff + config.idle_timeout + connect


def test_with_the_defaults_a_stuck_server_is_reported_within_a_minute() -> None:
    defaults = ProviderConfig("m")
    settings = Settings()
    assert (
        defaults.connect_timeout,
        defaults.idle_timeout,
        defaults.first_token_timeout,
        defaults.total_timeout or 0.0,
        defaults.max_retries,
        defaults.max_tokens,
    ) == (
        settings.connect_timeout,
        settings.idle_timeout,
        settings.first_token_timeout,
        settings.total_timeout,
        settings.request_retries,
        settings.max_tokens,
    )
    assert worst_case(defaults, RetryPolicy()) == 2 * 5 + 0.5 + 1 + 30 + 5 == 46.5
    # A server that is up but silent is told about at idle_timeout and given a couple of
    # minutes in all: enough to load a local model, not the six minutes users gave up on.
    assert 60 <= defaults.first_token_timeout <= 120


@every_provider
def test_a_stuck_server_is_reported_after_idle_timeout_and_a_failed_check(
    dialect: Dialect,
) -> None:
    config = {"connect_timeout": 0.3, "idle_timeout": 0.4, "first_token_timeout": 30.0}
    with SilentServer() as server:
        outcome, seconds = timed(dialect.make(base_url=dialect.loopback_url(server), **config))
        chats = [line for line in server.request_lines() if line.startswith("POST")]
    assert isinstance(outcome.error, ProviderTimeout)
    assert str(outcome.error) == (
        f"{dialect.provider.server_label[:1].upper()}{dialect.provider.server_label[1:]} at "
        f"{dialect.provider.normalize_base_url(dialect.loopback_url(server))} took the request but "
        "sent nothing for 0.4 s (idle_timeout), and did not answer a request for its model list "
        "within 0.3 s either: it seems stuck. Restart it, or check any proxy or tunnel in between."
    )
    assert 0.4 + 0.3 <= seconds < worst_case(ProviderConfig("m", **config), RetryPolicy()) + 0.5
    assert len(chats) == 1, "a request the server took is not sent again"
    assert outcome.notices == []


@every_provider
def test_a_slow_start_from_a_server_that_is_up_is_served(
    dialect: Dialect, model_server: ScriptedModelServer
) -> None:
    model_server.script(text("x = 1", wait=0.8))
    outcome = drive(dialect.loopback(model_server, idle_timeout=0.2, first_token_timeout=5.0))
    assert outcome.error is None
    assert outcome.text == "x = 1"
    assert outcome.notices == [
        "no answer after 0.2 s, but the server is up (loading the model or reading the "
        "prompt?); waiting up to 5 s in all"
    ]
    assert len(model_server.requests) == 1


@pytest.mark.timing
@every_provider
def test_a_start_slower_than_first_token_timeout_fails_once(
    dialect: Dialect, model_server: ScriptedModelServer
) -> None:
    model_server.script(hang(5), text("too late"))
    outcome, seconds = timed(
        dialect.loopback(model_server, idle_timeout=0.2, first_token_timeout=0.6)
    )
    assert isinstance(outcome.error, ProviderTimeout)
    assert "is up but had not started to answer after 0.6 s (first_token_timeout)" in str(
        outcome.error
    )
    assert "CODEACT_FIRST_TOKEN_TIMEOUT" in str(outcome.error)
    assert 0.6 <= seconds < 2.0
    assert len(model_server.requests) == 1, "a request the server took is not sent again"


@every_provider
def test_first_token_timeout_within_idle_timeout_skips_the_check(dialect: Dialect) -> None:
    listings: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            listings.append(str(request.url))
        return dialect.respond(*dialect.answer("late"), wait=1.0)

    outcome = drive(dialect.make(idle_timeout=5.0, first_token_timeout=0.2), handler)
    assert isinstance(outcome.error, ProviderTimeout)
    assert "had not started to answer after 0.2 s (first_token_timeout)" in str(outcome.error)
    assert "is up" not in str(outcome.error)
    assert listings == []


@every_provider
def test_a_slow_start_over_mock_transport_checks_the_listing(dialect: Dialect) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json=dialect.listing([dialect.model]))
        return dialect.respond(*dialect.answer("x"), wait=0.3)

    outcome = drive(dialect.make(idle_timeout=0.1), handler)
    assert outcome.text == "x"
    assert [r.method for r in outcome.requests] == ["POST", "GET"]
    assert len(outcome.notices) == 1


@every_provider
def test_connect_timeouts_are_retried_with_backoff(dialect: Dialect) -> None:
    def slow_connect(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out")

    sleeps = Sleeps()
    outcome = drive(dialect.make(sleeps=sleeps, connect_timeout=5.0), slow_connect)
    assert isinstance(outcome.error, ProviderTimeout)
    assert "took longer than 5 s (connect_timeout)" in str(outcome.error)
    assert len(outcome.requests) == 3
    assert sleeps.waits == [0.5, 1.0]
    assert outcome.notices == ["timed out, retrying in 0.5 s", "timed out, retrying in 1 s"]


@pytest.mark.timing
@every_provider
def test_total_timeout_bounds_a_slow_start(dialect: Dialect) -> None:
    outcome, seconds = timed(
        dialect.make(idle_timeout=0, total_timeout=0.3),
        lambda request: dialect.respond(*dialect.answer("x"), wait=2.0),
    )
    assert isinstance(outcome.error, ProviderTimeout)
    assert "took longer than total_timeout (0.3 s)." in str(outcome.error)
    assert seconds < 1.5
