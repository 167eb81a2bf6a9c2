"""The registry: settings completed from each provider's declared variables, the
endpoint read from the provider's declarations, plug-ins registered like built-ins."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from provider_doubles import DIALECTS, OLLAMA, Dialect, drive
from traitlets.config import Config

from codeact_kernel.errors import ConfigurationError
from codeact_kernel.providers import (
    ProviderConfig,
    endpoint_for,
    register,
    resolve_settings,
    with_detected_model,
)
from codeact_kernel.settings import CodeAct, Settings

CONFIG_KEY = "sk-config-0123456789"


def configured(**values: object) -> CodeAct:
    return CodeAct(config=Config(CodeAct=values))


# --- keys and base URLs -----------------------------------------------------------------


def test_the_key_comes_from_the_providers_variables_and_never_shows() -> None:
    settings = resolve_settings(
        configured(),
        {
            "CODEACT_MODEL": "anthropic:claude",
            "OPENAI_API_KEY": "sk-o",
            "ANTHROPIC_API_KEY": "sk-a",
        },
    )
    assert settings.api_key == "sk-a" and settings.api_key_source == "ANTHROPIC_API_KEY"
    assert settings.sources["api_key"] == "environment"
    assert "sk-a" not in repr(settings) and "api_key" not in settings.public()


@pytest.mark.parametrize(
    ("model", "environ", "key", "key_source", "base_url"),
    [
        ("openai:m", {"OPENAI_API_KEY": "o", "OPENAI_BASE_URL": "u"}, "o", "OPENAI_API_KEY", "u"),
        ("openai:m", {"ANTHROPIC_API_KEY": "a", "ANTHROPIC_BASE_URL": "u"}, "", "", ""),
        ("openai:m", {"OLLAMA_HOST": "gpu-box"}, "", "", ""),
        (
            "anthropic:c",
            {"ANTHROPIC_API_KEY": "a", "ANTHROPIC_BASE_URL": "u"},
            "a",
            "ANTHROPIC_API_KEY",
            "u",
        ),
        ("anthropic:c", {"OPENAI_API_KEY": "o", "OPENAI_BASE_URL": "u"}, "", "", ""),
        ("ollama:q", {"OLLAMA_HOST": "gpu-box:8080"}, "", "", "gpu-box:8080"),
        ("ollama:q", {"OPENAI_API_KEY": "o", "ANTHROPIC_API_KEY": "a"}, "", "", ""),
        # The CODEACT_ variables serve every provider, and come first.
        (
            "ollama:q",
            {"CODEACT_API_KEY": "c", "CODEACT_BASE_URL": "cu", "OLLAMA_HOST": "h"},
            "c",
            "CODEACT_API_KEY",
            "cu",
        ),
        (
            "anthropic:c",
            {"CODEACT_API_KEY": "c", "ANTHROPIC_API_KEY": "a", "ANTHROPIC_BASE_URL": "u"},
            "c",
            "CODEACT_API_KEY",
            "u",
        ),
        # No model yet: what OpenAI would use, until one is detected.
        ("", {"OPENAI_API_KEY": "o", "ANTHROPIC_API_KEY": "a"}, "o", "OPENAI_API_KEY", ""),
        # A provider nobody registered gets only what serves every provider.
        ("acme:x", {"CODEACT_API_KEY": "c", "OPENAI_API_KEY": "o"}, "c", "CODEACT_API_KEY", ""),
    ],
)
def test_each_provider_reads_the_variables_it_declares(
    model: str, environ: dict[str, str], key: str, key_source: str, base_url: str
) -> None:
    settings = resolve_settings(configured(), {"CODEACT_MODEL": model, **environ})
    assert (settings.api_key, settings.api_key_source, settings.base_url) == (
        key,
        key_source,
        base_url,
    )


def test_a_session_model_of_another_provider_gets_neither_configured_key_nor_url() -> None:
    config = configured(
        model="openai:gpt-4o-mini", api_key=CONFIG_KEY, base_url="https://example.test/v1"
    )
    same = resolve_settings(config, {}, {"model": "openai:gpt-4o"})
    assert same.api_key == CONFIG_KEY and same.base_url == "https://example.test/v1"
    assert same.api_key_source == "c.CodeAct.api_key"
    other = resolve_settings(
        config, {"OLLAMA_HOST": "http://gpu-box:11434"}, {"model": "ollama:llama3"}
    )
    assert other.api_key == "" and other.api_key_source == ""
    assert other.base_url == "http://gpu-box:11434"
    claude = resolve_settings(config, {"ANTHROPIC_API_KEY": "sk-a"}, {"model": "anthropic:c"})
    assert claude.api_key == "sk-a" and claude.api_key_source == "ANTHROPIC_API_KEY"
    assert claude.base_url == ""
    assert endpoint_for(claude) == "https://api.anthropic.com"


def test_the_session_ranks_above_the_providers_variables() -> None:
    settings = resolve_settings(
        configured(),
        {"CODEACT_MODEL": "ollama:q", "OLLAMA_HOST": "gpu-box"},
        {"base_url": "http://other:11434", "max_steps": 3},
    )
    assert settings.base_url == "http://other:11434" and settings.sources["base_url"] == "session"
    assert settings.max_steps == 3


def test_the_providers_variables_rank_above_the_config_file() -> None:
    config = configured(model="openai:m", api_key=CONFIG_KEY, base_url="http://config/v1")
    settings = resolve_settings(config, {"OPENAI_API_KEY": "sk-env", "OPENAI_BASE_URL": "env"})
    assert settings.api_key == "sk-env" and settings.sources["api_key"] == "environment"
    assert settings.base_url == "env" and settings.sources["base_url"] == "environment"
    kept = resolve_settings(config, {})
    assert kept.api_key == CONFIG_KEY and kept.api_key_source == "c.CodeAct.api_key"
    assert kept.sources["api_key"] == "config"


def test_a_detected_model_brings_its_providers_key_and_url() -> None:
    environ = {"ANTHROPIC_API_KEY": "sk-a", "OPENAI_API_KEY": "sk-o", "OLLAMA_HOST": "gpu-box"}
    undecided = resolve_settings(configured(), environ)
    assert undecided.model == "" and undecided.api_key == "sk-o"
    claude = with_detected_model(undecided, "anthropic:claude-sonnet-4-5", environ)
    assert claude.model == "anthropic:claude-sonnet-4-5" and claude.sources["model"] == "detected"
    assert claude.api_key == "sk-a" and claude.api_key_source == "ANTHROPIC_API_KEY"
    ollama = with_detected_model(undecided, "ollama:qwen2.5-coder:7b", environ)
    assert ollama.api_key == "" and ollama.api_key_source == ""
    assert ollama.base_url == "gpu-box" and ollama.sources["base_url"] == "environment"
    assert endpoint_for(ollama) == "http://gpu-box:11434"


def test_a_detected_model_does_not_keep_what_openai_would_have_used() -> None:
    # A local vLLM's URL for OpenAI, and a Claude key: detection picks Claude, which
    # must go to Anthropic, not to the vLLM server.
    environ = {"OPENAI_BASE_URL": "http://localhost:8000/v1", "ANTHROPIC_API_KEY": "sk-a"}
    undecided = resolve_settings(configured(), environ)
    assert undecided.base_url == "http://localhost:8000/v1"
    claude = with_detected_model(undecided, "anthropic:claude-sonnet-4-5", environ)
    assert claude.base_url == "" and claude.sources["base_url"] == "default"
    assert endpoint_for(claude) == "https://api.anthropic.com"
    assert claude.api_key == "sk-a"


def test_a_detected_model_keeps_what_the_session_and_config_set() -> None:
    config = configured(api_key=CONFIG_KEY)
    undecided = resolve_settings(
        config, {"OLLAMA_HOST": "gpu-box"}, {"base_url": "http://chosen:11434"}
    )
    ollama = with_detected_model(undecided, "ollama:q", {"OLLAMA_HOST": "gpu-box"})
    assert ollama.base_url == "http://chosen:11434" and ollama.sources["base_url"] == "session"
    assert ollama.api_key == CONFIG_KEY and ollama.api_key_source == "c.CodeAct.api_key"


# --- the endpoint, without a model or a client ---------------------------------------------


@pytest.fixture
def no_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any attempt to make an HTTP client: the endpoint must not need one."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("an HTTP client was made")

    monkeypatch.setattr(httpx.AsyncClient, "__init__", refuse)
    monkeypatch.setattr(httpx.MockTransport, "__init__", refuse)


@pytest.mark.parametrize(
    ("environ", "endpoint"),
    [
        ({"CODEACT_MODEL": "openai:gpt-4o-mini"}, "https://api.openai.com/v1"),
        (
            {"CODEACT_MODEL": "openai:m", "OPENAI_BASE_URL": "http://localhost:8000/v1/"},
            "http://localhost:8000/v1",
        ),
        (
            {"CODEACT_MODEL": "openai:m", "CODEACT_BASE_URL": "localhost:8080"},
            "http://localhost:8080/v1",
        ),
        (
            {"CODEACT_MODEL": "openai:m", "CODEACT_BASE_URL": "http://h:1/v1/chat/completions"},
            "http://h:1/v1",
        ),
        ({"CODEACT_MODEL": "anthropic:c"}, "https://api.anthropic.com"),
        (
            {"CODEACT_MODEL": "anthropic:c", "ANTHROPIC_BASE_URL": "proxy.example/anthropic/v1"},
            "https://proxy.example/anthropic",
        ),
        ({"CODEACT_MODEL": "ollama:q"}, "http://localhost:11434"),
        ({"CODEACT_MODEL": "ollama:q", "OLLAMA_HOST": "0.0.0.0"}, "http://0.0.0.0:11434"),
        ({"CODEACT_MODEL": "ollama:q", "OLLAMA_HOST": "gpu-box:8080"}, "http://gpu-box:8080"),
        (
            {"CODEACT_MODEL": "ollama:q", "OLLAMA_HOST": "https://ollama.example.com/"},
            "https://ollama.example.com",
        ),
        (
            {"CODEACT_MODEL": "ollama:q", "CODEACT_BASE_URL": "http://127.0.0.1:11434/v1"},
            "http://127.0.0.1:11434",
        ),
    ],
)
def test_the_endpoint_comes_from_the_providers_declarations(
    environ: dict[str, str], endpoint: str, no_client: None
) -> None:
    assert endpoint_for(resolve_settings(configured(), environ)) == endpoint


@pytest.mark.parametrize(
    "settings",
    [
        Settings(),
        Settings(model="gpt-4o"),
        Settings(model="acme:x"),
        Settings(model="openai:m", base_url="ftp://host/v1"),
        Settings(model="ollama:q", base_url="http://exa mple"),
    ],
    ids=["no model", "no provider", "unknown provider", "bad scheme", "bad host"],
)
def test_no_endpoint_without_a_usable_model_and_url(settings: Settings, no_client: None) -> None:
    assert endpoint_for(settings) is None


# --- a plug-in, registered the way the built-ins are ----------------------------------------


class AcmeProvider:
    """A plug-in's provider: what the registry reads is all it declares."""

    key_variables = ("CODEACT_API_KEY", "ACME_TOKEN")
    url_variables = ("CODEACT_BASE_URL", "ACME_URL")

    @staticmethod
    def normalize_base_url(url: str | None) -> str:
        if url and not url.startswith("https://"):
            raise ConfigurationError(f"{url!r} is not a valid base URL for Acme.")
        return (url or "https://api.acme.test").rstrip("/")

    def __init__(self, config: ProviderConfig, client: httpx.AsyncClient) -> None:
        raise AssertionError("settings and the endpoint need no model")


@pytest.fixture
def acme() -> Iterator[None]:
    from codeact_kernel import providers

    register("acme", AcmeProvider)
    yield
    del providers._registry["acme"]


def test_a_plugins_declarations_are_used_as_the_built_ins_are(acme: None) -> None:
    environ = {"CODEACT_MODEL": "acme:rocket", "ACME_TOKEN": "t0k", "OPENAI_API_KEY": "sk-o"}
    settings = resolve_settings(configured(), environ)
    assert settings.api_key == "t0k" and settings.api_key_source == "ACME_TOKEN"
    assert endpoint_for(settings) == "https://api.acme.test"
    moved = resolve_settings(configured(), {**environ, "ACME_URL": "https://eu.acme.test/"})
    assert endpoint_for(moved) == "https://eu.acme.test"
    assert endpoint_for(resolve_settings(configured(), {**environ, "ACME_URL": "http://x"})) is None


BUILT: list[ProviderConfig] = []


class Recorder:
    """A provider that keeps the config it was built with (in `BUILT`)."""

    key_variables = ("CODEACT_API_KEY",)
    url_variables = ("CODEACT_BASE_URL",)

    @staticmethod
    def normalize_base_url(url: str | None) -> str:
        return url or "http://recorder.test"

    def __init__(self, config: ProviderConfig, client: httpx.AsyncClient) -> None:
        BUILT.append(config)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, {"max_tokens": 4096, "connect_timeout": 5.0, "first_token_timeout": 120.0}),
        (
            {
                "CODEACT_MAX_TOKENS": "0",
                "CODEACT_CONNECT_TIMEOUT": "2",
                "CODEACT_IDLE_TIMEOUT": "15",
                "CODEACT_FIRST_TOKEN_TIMEOUT": "1800",
                "CODEACT_TOTAL_TIMEOUT": "3600",
                "CODEACT_REQUEST_RETRIES": "0",
            },
            {
                "max_tokens": None,
                "connect_timeout": 2.0,
                "idle_timeout": 15.0,
                "first_token_timeout": 1800.0,
                "total_timeout": 3600.0,
                "max_retries": 0,
            },
        ),
        ({"CODEACT_TOTAL_TIMEOUT": "0"}, {"total_timeout": None, "idle_timeout": 30.0}),
    ],
)
def test_the_model_is_built_with_the_limits_and_timeouts(
    environ: dict[str, str], expected: dict[str, Any]
) -> None:
    from codeact_kernel import providers

    async def build() -> None:
        settings = resolve_settings(configured(), {"CODEACT_MODEL": "recorder:m", **environ})
        async with httpx.AsyncClient() as client:
            providers.create_model(settings, client)

    register("recorder", Recorder)
    BUILT.clear()
    try:
        asyncio.run(build())
    finally:
        del providers._registry["recorder"]
    [config] = BUILT
    assert {name: getattr(config, name) for name in expected} == expected


@pytest.mark.parametrize("dialect", DIALECTS, ids=str)
def test_temperature_is_sent_only_when_set(dialect: Dialect) -> None:
    for temperature in (None, 0.0, 0.7):
        outcome = drive(
            dialect.make(api_key="k-123", temperature=temperature),
            lambda request: dialect.respond(*dialect.answer("ok")),
        )
        assert outcome.error is None
        body = json.loads(outcome.requests[0].content)
        sent = body.get("options", {}) if dialect is OLLAMA else body
        assert sent.get("temperature") == temperature
