"""Settings: traitlets for config files, environment variables, session overrides.

Precedence, highest first (DESIGN.md §4): session (magic options, `%codeact`),
environment, Jupyter/IPython config files (`c.CodeAct.<trait>`), defaults.
`resolve()` returns the effective `Settings` and, for each field, where it came from.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from traitlets import Bool, CaselessStrEnum, Float, Int, Unicode
from traitlets.config import Configurable

from .errors import ConfigurationError

Source = Literal["default", "config", "environment", "session", "detected"]


class CodeAct(Configurable):
    """CodeAct agent settings, read from `c.CodeAct.*` in Jupyter and IPython config files."""

    model = Unicode("", help="Model as provider:model, e.g. openai:gpt-4o-mini.").tag(config=True)
    base_url = Unicode("", help="Base URL of the model endpoint.").tag(config=True)
    api_key = Unicode("", help="API key (prefer the environment).").tag(config=True)
    max_steps = Int(10, help="Code actions per request before giving up.").tag(config=True)
    max_retries = Int(3, help="Consecutive failed actions before giving up.").tag(config=True)
    action_format = CaselessStrEnum(
        ["markdown", "execute"], "markdown", help="How the model marks code actions."
    ).tag(config=True)
    observation_chars = Int(4000, help="Longest observation sent back to the model.").tag(
        config=True
    )
    context_tokens = Int(24000, help="Token budget of the prompt sent to the model.").tag(
        config=True
    )
    step_timeout = Float(0.0, help="Seconds one action may run; 0 means no limit.").tag(config=True)
    approval = CaselessStrEnum(
        ["auto", "ask"], "auto", help="auto runs actions at once; ask confirms each first."
    ).tag(config=True)
    automagic = Bool(False, help="Let bare words call magics (off: they go to the model).").tag(
        config=True
    )
    request_retries = Int(2, help="Retries of a failed model request before it streams.").tag(
        config=True
    )
    connect_timeout = Float(10.0, help="Seconds to connect to the endpoint.").tag(config=True)
    idle_timeout = Float(120.0, help="Seconds the stream may stay silent.").tag(config=True)
    total_timeout = Float(0.0, help="Seconds a model call may take in all; 0: no limit.").tag(
        config=True
    )


@dataclass(frozen=True)
class Settings:
    """The effective settings of one request. `api_key` never shows in `repr`."""

    model: str = ""
    base_url: str = ""
    api_key: str = field(default="", repr=False)
    max_steps: int = 10
    max_retries: int = 3
    action_format: str = "markdown"
    observation_chars: int = 4000
    context_tokens: int = 24000
    step_timeout: float = 0.0
    approval: str = "auto"
    automagic: bool = False
    request_retries: int = 2
    connect_timeout: float = 10.0
    idle_timeout: float = 120.0
    total_timeout: float = 0.0
    sources: Mapping[str, Source] = field(default_factory=dict, repr=False, compare=False)
    api_key_source: str = ""

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with session overrides applied (validated, sources marked `session`)."""
        values = _validate({k: v for k, v in overrides.items() if v is not None})
        sources: dict[str, Source] = {**self.sources, **dict.fromkeys(values, "session")}
        return dataclasses.replace(self, **values, sources=sources)

    def public(self) -> dict[str, object]:
        """Every setting but the key, for `%codeact config` and provenance."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("api_key", "sources", "api_key_source")
        }


# Environment variables per setting, most specific first. Provider-customary variables
# are fallbacks; which ones apply depends on the provider, so keys and URLs are
# resolved in `_provider_env`.
_ENV_VARS: dict[str, tuple[str, ...]] = {
    "model": ("CODEACT_MODEL",),
    "max_steps": ("CODEACT_MAX_STEPS",),
    "max_retries": ("CODEACT_MAX_RETRIES",),
    "action_format": ("CODEACT_ACTION_FORMAT",),
    "observation_chars": ("CODEACT_OBSERVATION_CHARS",),
    "context_tokens": ("CODEACT_CONTEXT_TOKENS",),
    "step_timeout": ("CODEACT_STEP_TIMEOUT",),
    "approval": ("CODEACT_APPROVAL",),
    "request_retries": ("CODEACT_REQUEST_RETRIES",),
}

_KEY_VARS: dict[str, tuple[str, ...]] = {
    "openai": ("CODEACT_API_KEY", "OPENAI_API_KEY"),
    "anthropic": ("CODEACT_API_KEY", "ANTHROPIC_API_KEY"),
    "ollama": ("CODEACT_API_KEY",),
}
_URL_VARS: dict[str, tuple[str, ...]] = {
    "openai": ("CODEACT_BASE_URL", "OPENAI_BASE_URL"),
    "anthropic": ("CODEACT_BASE_URL", "ANTHROPIC_BASE_URL"),
    "ollama": ("CODEACT_BASE_URL", "OLLAMA_HOST"),
}

_CHOICES: dict[str, tuple[str, ...]] = {
    "action_format": ("markdown", "execute"),
    "approval": ("auto", "ask"),
}


def key_variables(provider: str) -> tuple[str, ...]:
    """The environment variables that may hold the key of `provider`."""
    return _KEY_VARS.get(provider, ("CODEACT_API_KEY",))


def resolve(
    configurable: CodeAct | None = None,
    environ: Mapping[str, str] | None = None,
    session: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge defaults, config files, environment and session overrides, in that order."""
    environ = os.environ if environ is None else environ
    configurable = configurable or CodeAct()
    configured = set(configurable.config.get("CodeAct", {}))
    values: dict[str, Any] = {}
    sources: dict[str, Source] = {}
    for name in CodeAct.class_trait_names(config=True):
        values[name] = getattr(configurable, name)
        sources[name] = "config" if name in configured else "default"
    for name, variables in _ENV_VARS.items():
        for variable in variables:
            if environ.get(variable):
                values[name] = environ[variable]
                sources[name] = "environment"
                break
    values = _validate(values)
    settings = Settings(**values, sources=sources)
    if session and session.get("model"):
        # The provider decides which key and URL variables apply: a model chosen for
        # the session or a cell must not be sent another provider's key, nor go to
        # another provider's URL from the config file.
        configured_provider = settings.model.partition(":")[0]
        settings = settings.with_overrides(model=session["model"])
        if settings.model.partition(":")[0] != configured_provider:
            settings = dataclasses.replace(settings, api_key="", base_url="")
    settings = _provider_env(settings, environ)
    if session:
        settings = settings.with_overrides(**session)
    return settings


def with_detected_model(
    settings: Settings, model: str, environ: Mapping[str, str] | None = None
) -> Settings:
    """`settings` with an auto-detected model, and that provider's key and base URL."""
    environ = os.environ if environ is None else environ
    sources: dict[str, Source] = {**settings.sources, "model": "detected"}
    detected = dataclasses.replace(settings, model=model, sources=sources)
    return _provider_env(detected, environ)


def _provider_env(settings: Settings, environ: Mapping[str, str]) -> Settings:
    """Fill the key and base URL from the environment variables of the chosen provider."""
    provider = settings.model.partition(":")[0] or "openai"
    changes: dict[str, Any] = {}
    sources = dict(settings.sources)
    key_source = "c.CodeAct.api_key" if settings.api_key else ""
    for variable in key_variables(provider):
        if environ.get(variable):
            changes["api_key"], key_source = environ[variable], variable
            sources["api_key"] = "environment"
            break
    for variable in _URL_VARS.get(provider, ("CODEACT_BASE_URL",)):
        if environ.get(variable):
            changes["base_url"] = environ[variable]
            sources["base_url"] = "environment"
            break
    return dataclasses.replace(settings, **changes, sources=sources, api_key_source=key_source)


def _validate(values: Mapping[str, Any]) -> dict[str, Any]:
    """Coerce strings from the environment or a magic line; reject what makes no sense."""
    types = {f.name: f.type for f in dataclasses.fields(Settings)}
    checked: dict[str, Any] = {}
    for name, value in values.items():
        if name not in types or name in ("sources", "api_key_source"):
            raise ConfigurationError(f"Unknown setting {name!r}.")
        kind = types[name]
        try:
            if kind == "int":
                value = int(value)
            elif kind == "float":
                value = float(value)
            elif kind == "bool":
                value = _as_bool(value)
            else:
                value = str(value).strip()
        except ValueError:
            raise ConfigurationError(f"Setting {name} needs a {kind}, not {value!r}.") from None
        if name in _CHOICES:
            value = value.lower()
            if value not in _CHOICES[name]:
                allowed = " or ".join(_CHOICES[name])
                raise ConfigurationError(f"Setting {name} must be {allowed}, not {value!r}.")
        if kind in ("int", "float") and value < 0:
            raise ConfigurationError(f"Setting {name} cannot be negative ({value}).")
        if name in ("max_steps", "observation_chars", "context_tokens") and value == 0:
            raise ConfigurationError(f"Setting {name} must be at least 1.")
        checked[name] = value
    return checked


def _as_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(text)
