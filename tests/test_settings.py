"""Settings: precedence, validation, and keys that stay with their provider.

The provider's own variables for the key and base URL are added by
`providers.resolve_settings`, tested in test_providers_registry.py.
"""

from __future__ import annotations

import pytest
from traitlets.config import Config

from codeact_kernel.errors import ConfigurationError
from codeact_kernel.settings import CodeAct, resolve


def configured(**values: object) -> CodeAct:
    return CodeAct(config=Config(CodeAct=values))


def test_precedence_session_over_environment_over_config_over_default() -> None:
    settings = resolve(
        configured(max_steps=4, max_retries=1),
        {"CODEACT_MAX_STEPS": "6", "CODEACT_MODEL": "openai:env"},
        {"max_steps": 8},
    )
    assert settings.max_steps == 8 and settings.sources["max_steps"] == "session"
    assert settings.max_retries == 1 and settings.sources["max_retries"] == "config"
    assert settings.model == "openai:env" and settings.sources["model"] == "environment"
    assert settings.observation_chars == 4000 and settings.sources["observation_chars"] == "default"


def test_a_model_of_another_provider_does_not_get_the_configured_key_or_url() -> None:
    config = configured(
        model="openai:gpt-4o-mini", api_key="sk-config-openai", base_url="https://example.test/v1"
    )
    same = resolve(config, {}, {"model": "openai:gpt-4o"})
    assert same.api_key == "sk-config-openai" and same.base_url == "https://example.test/v1"
    other = resolve(config, {}, {"model": "ollama:llama3"})
    assert other.model == "ollama:llama3" and other.sources["model"] == "session"
    assert other.api_key == "" and other.base_url == ""
    assert resolve(config, {}, {"model": "anthropic:claude"}).base_url == ""


def test_the_key_never_shows() -> None:
    settings = resolve(configured(model="openai:gpt-4o-mini", api_key="sk-config-0123456789"))
    assert settings.api_key == "sk-config-0123456789"
    assert "sk-config-0123456789" not in repr(settings) and "api_key" not in settings.public()


def test_provider_variables_are_left_to_the_providers() -> None:
    environ = {"CODEACT_MODEL": "openai:m", "OPENAI_API_KEY": "sk-o", "CODEACT_BASE_URL": "h"}
    settings = resolve(configured(), environ)
    assert (settings.api_key, settings.base_url, settings.api_key_source) == ("", "", "")


@pytest.mark.parametrize(
    ("name", "variable", "value", "expected"),
    [
        ("max_tokens", "CODEACT_MAX_TOKENS", "1024", 1024),
        ("max_tokens", "CODEACT_MAX_TOKENS", "0", 0),
        ("connect_timeout", "CODEACT_CONNECT_TIMEOUT", "2.5", 2.5),
        ("idle_timeout", "CODEACT_IDLE_TIMEOUT", "45", 45.0),
        ("first_token_timeout", "CODEACT_FIRST_TOKEN_TIMEOUT", "1200", 1200.0),
        ("total_timeout", "CODEACT_TOTAL_TIMEOUT", "900", 900.0),
        ("request_retries", "CODEACT_REQUEST_RETRIES", "0", 0),
    ],
)
def test_limits_and_timeouts_come_from_the_environment(
    name: str, variable: str, value: str, expected: float
) -> None:
    settings = resolve(configured(**{name: 7}), {variable: value})
    assert getattr(settings, name) == expected and settings.sources[name] == "environment"
    assert getattr(resolve(configured(**{name: 7}), {}), name) == 7
    assert getattr(resolve(configured(), {variable: value}, {name: 3}), name) == 3


def test_limit_and_timeout_defaults() -> None:
    settings = resolve(configured(), {})
    assert (settings.max_tokens, settings.request_retries) == (4096, 2)
    timeouts = (
        settings.connect_timeout,
        settings.idle_timeout,
        settings.first_token_timeout,
        settings.total_timeout,
    )
    assert timeouts == (5.0, 30.0, 120.0, 0.0)
    assert all(settings.sources[name] == "default" for name in ("max_tokens", "idle_timeout"))


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("CODEACT_APPROVAL", "never", "approval must be auto or ask"),
        ("CODEACT_MAX_STEPS", "1e3", "max_steps needs a whole number, not '1e3'"),
        ("CODEACT_MAX_STEPS", "0", "max_steps must be at least 1"),
        ("CODEACT_STEP_TIMEOUT", "-1", "cannot be negative"),
        ("CODEACT_MAX_TOKENS", "-1", "max_tokens cannot be negative"),
        ("CODEACT_MAX_TOKENS", "4k", "max_tokens needs a whole number"),
        ("CODEACT_IDLE_TIMEOUT", "soon", "idle_timeout needs a number, not 'soon'"),
        ("CODEACT_TOTAL_TIMEOUT", "inf", "total_timeout needs a finite number"),
        ("CODEACT_CONNECT_TIMEOUT", "nan", "connect_timeout needs a finite number"),
    ],
)
def test_bad_values_say_what_is_wrong(variable: str, value: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        resolve(configured(), {variable: value})


def test_temperature_is_the_endpoints_default_unless_set() -> None:
    assert resolve(CodeAct(), environ={}).temperature is None
    assert resolve(CodeAct(), environ={"CODEACT_TEMPERATURE": "0"}).temperature == 0.0
    config = Config()
    config.CodeAct.temperature = 0.2
    assert resolve(CodeAct(config=config), environ={}).temperature == 0.2
    session = resolve(CodeAct(), environ={}, session={"temperature": "1.5"})
    assert session.temperature == 1.5
    assert session.with_overrides(temperature="default").temperature is None
    for wrong in ("2.5", "-1", "warm"):
        with pytest.raises(ConfigurationError, match="temperature"):
            resolve(CodeAct(), environ={"CODEACT_TEMPERATURE": wrong})
