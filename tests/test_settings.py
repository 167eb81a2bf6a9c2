"""Settings: precedence, validation, and keys that stay with their provider.

The provider's own variables for the key and base URL are added by
`providers.resolve_settings`, tested in test_providers_registry.py.
"""

from __future__ import annotations

import pytest
from traitlets.config import Config

from codeact_kernel.context import system_prompt
from codeact_kernel.errors import ConfigurationError
from codeact_kernel.providers.base import estimate_tokens
from codeact_kernel.settings import (
    MIN_CONTEXT_TOKENS,
    CodeAct,
    Problem,
    Settings,
    fallbacks,
    find_problems,
    resolve,
)


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


# --- a bad value from outside the session: named, and never a lock -------------------

BAD_ENVIRONMENT = [
    ("CODEACT_IDLE_TIMEOUT", "abc", "idle_timeout", "idle_timeout needs a number, not 'abc'"),
    ("CODEACT_MAX_STEPS", "0", "max_steps", "max_steps must be at least 1"),
    ("CODEACT_TEMPERATURE", "nan", "temperature", "temperature must be from 0 to 2"),
    ("CODEACT_APPROVAL", "maybe", "approval", "approval must be auto or ask, not 'maybe'"),
    ("CODEACT_CONTEXT_TOKENS", "1", "context_tokens", "at least 1000"),
    ("CODEACT_REQUEST_RETRIES", "-2", "request_retries", "cannot be negative"),
    ("CODEACT_VISION", "sometimes", "vision", "vision must be auto or on or off"),
]


@pytest.mark.parametrize(("variable", "value", "name", "reason"), BAD_ENVIRONMENT)
def test_a_bad_environment_variable_is_named_with_what_to_do(
    variable: str, value: str, name: str, reason: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        resolve(configured(), {variable: value})
    message = str(raised.value)
    assert message.startswith(f"The environment variable {variable} is not valid (")
    assert reason in message
    assert "fix or unset it and restart" in message
    assert f"override it for this session with `%codeact {name} VALUE`" in message
    assert "\n" not in message, "one sentence for one problem"


@pytest.mark.parametrize(("variable", "value", "name", "reason"), BAD_ENVIRONMENT)
def test_a_session_value_replaces_a_bad_one_without_reading_it(
    variable: str, value: str, name: str, reason: str
) -> None:
    good = fallbacks({name: Problem("environment", "")})
    settings = resolve(configured(), {variable: value}, good)
    assert getattr(settings, name) == getattr(Settings(), name)
    assert settings.sources[name] == "session"
    assert find_problems(configured(), {variable: value}, good) == {}


def test_every_problem_is_reported_at_once_and_each_can_be_shown() -> None:
    environ = {"CODEACT_IDLE_TIMEOUT": "abc", "CODEACT_MAX_STEPS": "0"}
    with pytest.raises(ConfigurationError) as raised:
        resolve(configured(max_retries=-1), environ)
    lines = str(raised.value).splitlines()
    assert sorted(line.split(" is not valid")[0] for line in lines) == [
        "The environment variable CODEACT_IDLE_TIMEOUT",
        "The environment variable CODEACT_MAX_STEPS",
        "c.CodeAct.max_retries in a Jupyter/IPython config file",
    ]
    problems = find_problems(configured(max_retries=-1), environ)
    assert {name: p.source for name, p in problems.items()} == {
        "max_retries": "config",
        "max_steps": "environment",
        "idle_timeout": "environment",
    }
    # What `%codeact` shows: the defaults in their place, each problem with its source.
    shown = resolve(configured(max_retries=-1), environ, fallbacks(problems))
    shown = shown.with_problems(problems)
    assert (shown.idle_timeout, shown.max_steps, shown.max_retries) == (30.0, 10, 3)
    assert shown.sources["idle_timeout"] == "environment"
    assert shown.sources["max_retries"] == "config"
    assert fallbacks({"temperature": problems["max_steps"]}) == {"temperature": "default"}


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("idle_timeout", "abc", "idle_timeout needs a number, not 'abc'"),
        ("approval", "maybe", "approval must be auto or ask"),
        ("max_steps", 0, "max_steps must be at least 1"),
        ("max_retries", 2.5, "max_retries needs a whole number, not 2.5"),
        ("temperature", 5, "temperature must be from 0 to 2"),
        ("automagic", "perhaps", "automagic needs on or off"),
        ("context_tokens", 10, "context_tokens must be at least 1000"),
    ],
)
def test_a_bad_config_file_value_never_stops_the_configurable(
    name: str, value: object, reason: str
) -> None:
    """traitlets raises for a value its trait refuses, which would stop the kernel at
    start: the value is set aside, and reported like an environment variable."""
    configurable = configured(**{name: value}, model="openai:kept")
    assert configurable.model == "openai:kept", "the other values load"
    with pytest.raises(ConfigurationError) as raised:
        resolve(configurable, {})
    message = str(raised.value)
    assert message.startswith(f"c.CodeAct.{name} in a Jupyter/IPython config file is not valid")
    assert reason in message and "fix or remove it and restart" in message
    assert f"`%codeact {name} VALUE`" in message
    good = fallbacks({name: Problem("config", "")})
    assert getattr(resolve(configurable, {}, good), name) == getattr(Settings(), name)


def test_a_config_value_traitlets_refuses_but_that_reads_well_is_used() -> None:
    configurable = configured(idle_timeout="12", approval="ASK")
    assert configurable.refused == {"idle_timeout": "12"}
    settings = resolve(configurable, {})
    assert (settings.idle_timeout, settings.approval) == (12.0, "ask")
    assert settings.sources["idle_timeout"] == "config"


def test_a_bad_value_in_a_parents_section_or_a_later_update_is_set_aside() -> None:
    from traitlets.config import Configurable

    class Kernel(Configurable):
        pass

    config = Config()
    config.Kernel.CodeAct.idle_timeout = "soon"
    config.CodeAct.max_steps = 4
    configurable = CodeAct(parent=Kernel(config=config))
    assert configurable.refused == {"idle_timeout": "soon"} and configurable.max_steps == 4
    configurable.update_config(Config(CodeAct={"idle_timeout": 3.0}))
    assert configurable.refused == {} and configurable.idle_timeout == 3.0


def test_context_tokens_below_what_a_request_needs_are_refused() -> None:
    for fmt in ("markdown", "execute"):
        prompt = system_prompt(fmt, "# (nothing defined yet)", "")
        assert estimate_tokens(prompt) + 100 < MIN_CONTEXT_TOKENS, "room for a short request"
    with pytest.raises(ConfigurationError, match=f"at least {MIN_CONTEXT_TOKENS}.*not 999"):
        resolve(CodeAct(), {}, {"context_tokens": str(MIN_CONTEXT_TOKENS - 1)})
    assert resolve(CodeAct(), {}, {"context_tokens": MIN_CONTEXT_TOKENS}).context_tokens == 1000
