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
    ("variable", "value", "message"),
    [
        ("CODEACT_APPROVAL", "never", "approval must be auto or ask"),
        ("CODEACT_MAX_STEPS", "1e3", "max_steps needs a int"),
        ("CODEACT_MAX_STEPS", "0", "max_steps must be at least 1"),
        ("CODEACT_STEP_TIMEOUT", "-1", "cannot be negative"),
    ],
)
def test_bad_values_say_what_is_wrong(variable: str, value: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        resolve(configured(), {variable: value})
