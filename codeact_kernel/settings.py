"""Settings: traitlets for config files, environment variables, session overrides.

Precedence, highest first (DESIGN.md §4): session (magic options, `%codeact`),
environment, Jupyter/IPython config files (`c.CodeAct.<trait>`), defaults.
`resolve()` merges them and records, for each field, where it came from.

The key and base URL also come from variables that only the chosen provider knows
(`OPENAI_API_KEY`, `OLLAMA_HOST` …), so `codeact_kernel.providers.resolve_settings`,
which knows the providers, completes what `resolve()` returns: this module sits below
the providers and does not ask them.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from traitlets import Bool, CaselessStrEnum, Dict, Float, Int, TraitError, Unicode
from traitlets.config import Config, Configurable
from traitlets.config.loader import DeferredConfig, LazyConfigValue

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
    vision = CaselessStrEnum(
        ["auto", "on", "off"],
        "auto",
        help="Send images that actions display to the model: auto = for models known to "
        "accept images.",
    ).tag(config=True)
    automagic = Bool(False, help="Let bare words call magics (off: they go to the model).").tag(
        config=True
    )
    max_tokens = Int(
        4096,
        help="Longest answer, in tokens, asked of the model; 0: ask for no limit (Anthropic, "
        "which requires one, gets 4096).",
    ).tag(config=True)
    temperature = Float(
        None,
        allow_none=True,
        help="Sampling temperature sent to the model (0 to 2); unset: the endpoint's default.",
    ).tag(config=True)
    request_retries = Int(2, help="Retries of a failed model request before it streams.").tag(
        config=True
    )
    # A server that never answers is reported within a minute; one that is merely slow to
    # start (a long prompt on a CPU) gets first_token_timeout: see providers/http.py.
    connect_timeout = Float(5.0, help="Seconds to connect to the endpoint; 0: no limit.").tag(
        config=True
    )
    idle_timeout = Float(
        30.0,
        help="Seconds the server may stay silent: mid-answer the call fails; before the answer "
        "starts the server is checked, and one that is up gets first_token_timeout; 0: no limit.",
    ).tag(config=True)
    first_token_timeout = Float(
        120.0, help="Seconds a server that is up may take to start answering; 0: no limit."
    ).tag(config=True)
    total_timeout = Float(0.0, help="Seconds a model call may take in all; 0: no limit.").tag(
        config=True
    )
    # MCP servers (DESIGN.md §7; codeact_kernel/mcp_client/config.py reads both).
    mcp_config = Unicode(
        "", help='A JSON file of MCP servers in the common {"mcpServers": {...}} shape.'
    ).tag(config=True)
    mcp_servers = Dict(
        help='MCP servers as the "mcpServers" mapping: name -> {command, args, env} or '
        "{url, headers}."
    ).tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        # Config values the traits refused (`c.CodeAct.idle_timeout = 'abc'`), by name.
        self.refused: dict[str, object] = {}
        super().__init__(**kwargs)

    def _load_config(
        self,
        cfg: Config,
        section_names: list[str] | None = None,
        traits: dict[str, Any] | None = None,
    ) -> None:
        """Load the config as traitlets does, but set aside the values a trait refuses.

        traitlets raises a `TraitError` for them, which would stop the kernel from
        starting; `resolve` reports each, naming it, where settings are used, and a
        session override replaces it.
        """
        traits = self.traits(config=True) if traits is None else traits
        for name, value in self._find_my_config(cfg).items():
            trait = traits.get(name)
            if trait is None or isinstance(value, LazyConfigValue):
                continue
            try:
                if isinstance(value, DeferredConfig):  # from a command line: a string
                    value = value.get_value(trait)
                trait._validate(self, value)
            except (TraitError, ValueError, TypeError):
                self.refused[name] = str(value) if isinstance(value, DeferredConfig) else value
            else:
                self.refused.pop(name, None)
        if self.refused:
            cfg = _without(cfg, set(self.section_names()), set(self.refused))
        super()._load_config(cfg, section_names, traits)


def _without(config: Config, sections: set[str], names: set[str]) -> Config:
    """A copy of `config` without `names` in any of `sections`, however deeply nested."""
    copy = Config()
    for key, value in config.items():
        if isinstance(value, Config):
            value = _without(value, sections, names)
            if key in sections:
                for name in names:
                    value.pop(name, None)
        copy[key] = value
    return copy


@dataclass(frozen=True)
class Problem:
    """An environment variable or config file value that is not valid."""

    source: Source
    message: str


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
    vision: str = "auto"
    automagic: bool = False
    max_tokens: int = 4096
    temperature: float | None = None
    request_retries: int = 2
    connect_timeout: float = 5.0
    idle_timeout: float = 30.0
    first_token_timeout: float = 120.0
    total_timeout: float = 0.0
    mcp_config: str = ""
    # Not a setting one changes with `%codeact`: header values may hold secrets.
    mcp_servers: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    sources: Mapping[str, Source] = field(default_factory=dict, repr=False, compare=False)
    api_key_source: str = ""
    # Set only by `with_problems`: what `%codeact` shows instead of failing.
    problems: Mapping[str, Problem] = field(default_factory=dict, repr=False, compare=False)

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with session overrides applied (validated, sources marked `session`)."""
        values = _validate({k: v for k, v in overrides.items() if v is not None})
        sources: dict[str, Source] = {**self.sources, **dict.fromkeys(values, "session")}
        return dataclasses.replace(self, **values, sources=sources)

    def with_problems(self, problems: Mapping[str, Problem]) -> Settings:
        """A copy that records `problems` (from `find_problems`), each with its source."""
        sources = {**self.sources, **{name: p.source for name, p in problems.items()}}
        return dataclasses.replace(self, problems=dict(problems), sources=sources)

    def public(self) -> dict[str, object]:
        """Every setting but the key, for `%codeact config` and provenance."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in _NOT_SETTINGS and f.name != "mcp_servers"
        }


# Fields that are not settings; the key is one, never shown.
_NOT_SETTINGS = ("api_key", "sources", "api_key_source", "problems")


# Environment variables per setting, most specific first. The key's and the base URL's
# depend on the provider: each provider declares its own.
_ENV_VARS: dict[str, tuple[str, ...]] = {
    "model": ("CODEACT_MODEL",),
    "max_steps": ("CODEACT_MAX_STEPS",),
    "max_retries": ("CODEACT_MAX_RETRIES",),
    "action_format": ("CODEACT_ACTION_FORMAT",),
    "observation_chars": ("CODEACT_OBSERVATION_CHARS",),
    "context_tokens": ("CODEACT_CONTEXT_TOKENS",),
    "step_timeout": ("CODEACT_STEP_TIMEOUT",),
    "approval": ("CODEACT_APPROVAL",),
    "vision": ("CODEACT_VISION",),
    "max_tokens": ("CODEACT_MAX_TOKENS",),
    "temperature": ("CODEACT_TEMPERATURE",),
    "request_retries": ("CODEACT_REQUEST_RETRIES",),
    "connect_timeout": ("CODEACT_CONNECT_TIMEOUT",),
    "idle_timeout": ("CODEACT_IDLE_TIMEOUT",),
    "first_token_timeout": ("CODEACT_FIRST_TOKEN_TIMEOUT",),
    "total_timeout": ("CODEACT_TOTAL_TIMEOUT",),
    "mcp_config": ("CODEACT_MCP_CONFIG",),
}

_CHOICES: dict[str, tuple[str, ...]] = {
    "action_format": ("markdown", "execute"),
    "approval": ("auto", "ask"),
    "vision": ("auto", "on", "off"),
}


_KINDS = {"int": "a whole number", "float": "a number", "bool": "on or off"}


# Below what the system prompt and a short request take, every call would exceed the budget.
MIN_CONTEXT_TOKENS = 1000


def resolve(
    configurable: CodeAct | None = None,
    environ: Mapping[str, str] | None = None,
    session: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge defaults, config files, environment and session overrides, in that order.

    All but the provider's own variables for the key and base URL: see the module's
    docstring. Raises `ConfigurationError` naming every environment variable or config
    file value that is not valid and that the session does not override.
    """
    environ = os.environ if environ is None else environ
    configurable = configurable or CodeAct()
    session = {k: v for k, v in (session or {}).items() if v is not None}
    layers = _layers(configurable, environ)
    if problems := _problems(layers, session):
        raise ConfigurationError("\n".join(p.message for p in problems.values()))
    values = {name: value for name, (value, _source, _origin) in layers.items()}
    sources: dict[str, Source] = {name: source for name, (_v, source, _o) in layers.items()}
    # A session value replaces the others unread; the configured model (a string, always
    # valid) still decides below whether the key goes with a session model.
    values = _validate({k: v for k, v in values.items() if k not in session or k == "model"})
    settings = Settings(**values, sources=sources)
    if session.get("model"):
        # A model chosen for the session or a cell may be another provider's: it must
        # not be sent the configured provider's key, nor go to its URL.
        configured_provider = settings.model.partition(":")[0]
        settings = settings.with_overrides(model=session["model"])
        if settings.model.partition(":")[0] != configured_provider:
            settings = dataclasses.replace(settings, api_key="", base_url="")
    if session:
        settings = settings.with_overrides(**session)
    return settings


def find_problems(
    configurable: CodeAct,
    environ: Mapping[str, str],
    session: Mapping[str, Any] | None = None,
) -> dict[str, Problem]:
    """The environment variables and config file values that are not valid, by setting,
    but those the session overrides (which are never read)."""
    session = {k: v for k, v in (session or {}).items() if v is not None}
    return _problems(_layers(configurable, environ), session)


def fallbacks(problems: Mapping[str, Problem]) -> dict[str, Any]:
    """Session values that stand in for `problems`: each setting's default."""
    defaults = Settings()
    # A None override means "not set": the temperature's default is named.
    return {
        name: "default" if getattr(defaults, name) is None else getattr(defaults, name)
        for name in problems
    }


_Layer = tuple[Any, Source, str]  # value, source, where it was read (for messages)


def _layers(configurable: CodeAct, environ: Mapping[str, str]) -> dict[str, _Layer]:
    """Each setting's value from the highest of defaults, config files and environment."""
    configured = set(configurable.config.get("CodeAct", {})) | set(configurable.refused)
    layers: dict[str, _Layer] = {}
    for name in CodeAct.class_trait_names(config=True):
        if name in configurable.refused:
            layers[name] = (configurable.refused[name], "config", f"c.CodeAct.{name}")
        elif name in configured:
            layers[name] = (getattr(configurable, name), "config", f"c.CodeAct.{name}")
        else:
            layers[name] = (getattr(configurable, name), "default", "")
    for name, variables in _ENV_VARS.items():
        for variable in variables:
            if environ.get(variable):
                layers[name] = (environ[variable], "environment", variable)
                break
    return layers


def _problems(layers: Mapping[str, _Layer], session: Mapping[str, Any]) -> dict[str, Problem]:
    problems: dict[str, Problem] = {}
    for name, (value, source, origin) in layers.items():
        if name in session or source == "default":
            continue
        try:
            _validate({name: value})
        except ConfigurationError as error:
            problems[name] = Problem(source, _problem_message(name, source, origin, error))
    return problems


def _problem_message(name: str, source: Source, origin: str, error: ConfigurationError) -> str:
    reason = str(error).removeprefix("Setting ").rstrip(".")
    override = f"or override it for this session with `%codeact {name} VALUE`"
    if source == "environment":
        return (
            f"The environment variable {origin} is not valid ({reason}): fix or unset it "
            f"and restart, {override}."
        )
    return (
        f"{origin} in a Jupyter/IPython config file is not valid ({reason}): fix or "
        f"remove it and restart, {override}."
    )


def _validate(values: Mapping[str, Any]) -> dict[str, Any]:
    """Coerce strings from the environment or a magic line; reject what makes no sense."""
    types = {f.name: f.type for f in dataclasses.fields(Settings)}
    checked: dict[str, Any] = {}
    for name, value in values.items():
        if name not in types or name in _NOT_SETTINGS[1:]:
            raise ConfigurationError(f"Unknown setting {name!r}.")
        kind = types[name]
        if name == "mcp_servers":
            # Checked entry by entry where the servers are read (mcp_client/config.py).
            if not isinstance(value, Mapping):
                raise ConfigurationError(f"Setting mcp_servers needs a mapping, not {value!r}.")
            checked[name] = dict(value)
            continue
        if kind == "float | None":
            checked[name] = _optional_temperature(value)
            continue
        try:
            if kind == "int":
                value = _as_int(value)
            elif kind == "float":
                value = float(value)
            elif kind == "bool":
                value = _as_bool(value)
            else:
                value = str(value).strip()
        except (ValueError, TypeError):
            wanted = _KINDS.get(str(kind), str(kind))
            raise ConfigurationError(f"Setting {name} needs {wanted}, not {value!r}.") from None
        if name in _CHOICES:
            value = value.lower()
            if value not in _CHOICES[name]:
                allowed = " or ".join(_CHOICES[name])
                raise ConfigurationError(f"Setting {name} must be {allowed}, not {value!r}.")
        if kind == "float" and not math.isfinite(value):
            raise ConfigurationError(
                f"Setting {name} needs a finite number (0 for no limit), not {value!r}."
            )
        if kind in ("int", "float") and value < 0:
            raise ConfigurationError(f"Setting {name} cannot be negative ({value}).")
        if name in ("max_steps", "observation_chars") and value == 0:
            raise ConfigurationError(f"Setting {name} must be at least 1.")
        if name == "context_tokens" and value < MIN_CONTEXT_TOKENS:
            raise ConfigurationError(
                f"Setting context_tokens must be at least {MIN_CONTEXT_TOKENS} (the system "
                f"prompt alone takes most of that), not {value}."
            )
        checked[name] = value
    return checked


def _as_int(value: object) -> int:
    """A whole number: `2.5` from a config file is refused, not cut to 2."""
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(value)
    return int(value)  # type: ignore[call-overload]


def _optional_temperature(value: object) -> float | None:
    """A temperature, or None for the endpoint's own default ("", "default", "none")."""
    if value is None or str(value).strip().lower() in ("", "default", "none"):
        return None
    try:
        number = float(str(value))
    except ValueError:
        raise ConfigurationError(
            f"Setting temperature needs a number from 0 to 2 (or default), not {value!r}."
        ) from None
    if not 0 <= number <= 2:
        raise ConfigurationError(f"Setting temperature must be from 0 to 2, not {number}.")
    return number


def _as_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(text)
