"""Provider registry: `provider:model` names to `Model` objects, and settings per provider.

Built-in providers are registered through the `codeact_kernel.providers` entry-point
group, exactly as a third-party package would register its own; `register()` adds
one at run time (tests, notebooks). Each provider declares the variables its key and
base URL come from and how it reads a base URL (`ProviderFactory`), so settings are
resolved here, where the providers are known, and the endpoint is found without
building a model.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from ..settings import CodeAct, Settings, Source, resolve
from .base import Message, Model, ProviderConfig, ProviderFactory, TextDelta, Usage

if TYPE_CHECKING:  # httpx loads only when a model is first used: kernel start stays fast
    import httpx

__all__ = [
    "Message",
    "Model",
    "ProviderConfig",
    "ProviderFactory",
    "TextDelta",
    "Usage",
    "create_model",
    "endpoint_for",
    "parse_model_name",
    "providers",
    "register",
    "resolve_settings",
    "with_detected_model",
]

_registry: dict[str, ProviderFactory] = {}

DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
DEFAULT_ANTHROPIC_MODEL = "claude-sonnet-4-5"

SETUP_EXAMPLES = (
    "Set CODEACT_MODEL to provider:model, for example:\n"
    f"  CODEACT_MODEL=openai:{DEFAULT_OPENAI_MODEL}  with OPENAI_API_KEY set\n"
    f"  CODEACT_MODEL=anthropic:{DEFAULT_ANTHROPIC_MODEL}  with ANTHROPIC_API_KEY set\n"
    "  CODEACT_MODEL=ollama:qwen2.5-coder:7b  after `ollama pull qwen2.5-coder:7b` "
    "(and OLLAMA_HOST if Ollama is not on localhost:11434)\n"
    "  CODEACT_MODEL=openai:<model> CODEACT_BASE_URL=http://localhost:8000/v1  "
    "for vLLM, llama.cpp or LM Studio\n"
    "or run `%codeact model provider:model` in this session."
)

# What a provider nobody registered is given (its name is refused later, with advice).
_KEY_VARIABLES = ("CODEACT_API_KEY",)
_URL_VARIABLES = ("CODEACT_BASE_URL",)


def register(name: str, factory: ProviderFactory) -> None:
    """Make `name:<model>` resolve to models built by `factory` (over an installed one too)."""
    _registry[name] = factory


def providers() -> dict[str, ProviderFactory]:
    """Every known provider: the installed ones (entry points), and those `register`ed."""
    return {**_installed(), **_registry}


@functools.cache
def _installed() -> dict[str, ProviderFactory]:
    # Scanning the installed packages' entry points takes milliseconds: once a process.
    return {entry.name: entry.load() for entry in entry_points(group="codeact_kernel.providers")}


def parse_model_name(name: str) -> tuple[str, str]:
    """Split `provider:model` (the model part may hold more colons, as Ollama tags do)."""
    provider, sep, model = name.strip().partition(":")
    if not name.strip():
        raise ConfigurationError(f"No model is configured.\n{SETUP_EXAMPLES}")
    known = providers()
    if not sep or not provider or not model:
        raise ConfigurationError(
            f"Model {name!r} is not of the form provider:model "
            f"(known providers: {', '.join(sorted(known))})."
        )
    if provider not in known:
        raise ConfigurationError(
            f"Unknown provider {provider!r} in {name!r} "
            f"(known providers: {', '.join(sorted(known))})."
        )
    return provider, model


def create_model(settings: Settings, client: httpx.AsyncClient) -> Model:
    """Build the configured model; raises `ConfigurationError` with setup help if none is."""
    provider, model = parse_model_name(settings.model)
    config = ProviderConfig(
        model=model,
        base_url=settings.base_url or None,
        api_key=settings.api_key or None,
        api_key_source=settings.api_key_source or None,
        connect_timeout=settings.connect_timeout,
        idle_timeout=settings.idle_timeout,
        first_token_timeout=settings.first_token_timeout,
        total_timeout=settings.total_timeout or None,
        max_retries=settings.request_retries,
        max_tokens=settings.max_tokens or None,
        temperature=settings.temperature,
    )
    return providers()[provider](config, client)


def endpoint_for(settings: Settings) -> str | None:
    """The base URL the configured model would talk to; None without a usable model or URL.

    Only the provider's declarations are read: no model and no HTTP client is built.
    """
    try:
        provider, _ = parse_model_name(settings.model)
        return providers()[provider].normalize_base_url(settings.base_url or None)
    except ConfigurationError:
        return None


def resolve_settings(
    configurable: CodeAct | None = None,
    environ: Mapping[str, str] | None = None,
    session: Mapping[str, Any] | None = None,
) -> Settings:
    """The effective settings: session, then environment, then config files, then defaults.

    The key and base URL come from the variables the chosen provider declares, below
    the session's own settings and above the config file's; a model chosen for the
    session or a cell that belongs to another provider gets neither the configured key
    nor the configured base URL (`settings.resolve`).
    """
    environ = os.environ if environ is None else environ
    return _with_provider_variables(resolve(configurable, environ, session), environ)


def with_detected_model(
    settings: Settings, model: str, environ: Mapping[str, str] | None = None
) -> Settings:
    """`settings` with an auto-detected model, and that provider's key and base URL.

    A key or base URL that the environment gave before a model was chosen is the one
    OpenAI would use: the detected provider reads its own variables instead.
    """
    environ = os.environ if environ is None else environ
    sources: dict[str, Source] = {**settings.sources, "model": "detected"}
    provisional = [name for name in ("api_key", "base_url") if sources.get(name) == "environment"]
    sources.update(dict.fromkeys(provisional, "default"))
    detected = dataclasses.replace(
        settings,
        model=model,
        api_key="" if "api_key" in provisional else settings.api_key,
        base_url="" if "base_url" in provisional else settings.base_url,
        sources=sources,
    )
    return _with_provider_variables(detected, environ)


def _with_provider_variables(settings: Settings, environ: Mapping[str, str]) -> Settings:
    """The key and base URL from the chosen provider's variables, unless the session set them."""
    # Without a model the status still shows a key: the one OpenAI, which detection tries
    # first, would use.
    declared = providers().get(settings.model.partition(":")[0] or "openai")
    key_variables = declared.key_variables if declared else _KEY_VARIABLES
    url_variables = declared.url_variables if declared else _URL_VARIABLES
    sources = dict(settings.sources)
    changes: dict[str, Any] = {}
    from_config = settings.api_key and sources.get("api_key") == "config"
    key_source = "c.CodeAct.api_key" if from_config else ""
    if sources.get("api_key") != "session" and (variable := _first_set(environ, key_variables)):
        changes["api_key"], key_source = environ[variable], variable
        sources["api_key"] = "environment"
    if sources.get("base_url") != "session" and (variable := _first_set(environ, url_variables)):
        changes["base_url"] = environ[variable]
        sources["base_url"] = "environment"
    return dataclasses.replace(settings, **changes, sources=sources, api_key_source=key_source)


def _first_set(environ: Mapping[str, str], variables: tuple[str, ...]) -> str | None:
    return next((variable for variable in variables if environ.get(variable)), None)
