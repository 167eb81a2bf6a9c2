"""Provider registry: `provider:model` names to `Model` objects.

Built-in providers are registered through the `codeact_kernel.providers` entry-point
group, exactly as a third-party package would register its own; `register()` adds
one at run time (tests, notebooks).
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from ..errors import ConfigurationError
from ..settings import Settings
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
    "parse_model_name",
    "register",
]

_registry: dict[str, ProviderFactory] = {}

SETUP_HELP = (
    "Set CODEACT_MODEL to provider:model, for example\n"
    "  CODEACT_MODEL=openai:gpt-4o-mini with OPENAI_API_KEY set, or\n"
    "  CODEACT_MODEL=openai:my-model CODEACT_BASE_URL=http://localhost:8000/v1 for vLLM or "
    "llama.cpp, or\n"
    "  CODEACT_MODEL=openai:qwen2.5-coder:7b CODEACT_BASE_URL=http://localhost:11434/v1 "
    "for Ollama;\n"
    "or run `%codeact model provider:model` in this session."
)


def register(name: str, factory: ProviderFactory) -> None:
    """Make `name:<model>` resolve to models built by `factory`."""
    _registry[name] = factory


def providers() -> dict[str, ProviderFactory]:
    """Every known provider, the entry-point ones loaded on first use."""
    for entry in entry_points(group="codeact_kernel.providers"):
        if entry.name not in _registry:
            _registry[entry.name] = entry.load()
    return dict(_registry)


def parse_model_name(name: str) -> tuple[str, str]:
    """Split `provider:model` (the model part may hold more colons, as Ollama tags do)."""
    provider, sep, model = name.strip().partition(":")
    if not name.strip():
        raise ConfigurationError(f"No model is configured.\n{SETUP_HELP}")
    if not sep or not provider or not model:
        raise ConfigurationError(
            f"Model {name!r} is not of the form provider:model "
            f"(known providers: {', '.join(sorted(providers()))})."
        )
    if provider not in providers():
        raise ConfigurationError(
            f"Unknown provider {provider!r} in {name!r} "
            f"(known providers: {', '.join(sorted(providers()))})."
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
        total_timeout=settings.total_timeout or None,
        max_retries=settings.request_retries,
    )
    return providers()[provider](config, client)
