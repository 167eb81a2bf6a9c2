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
        raise ConfigurationError(f"No model is configured.\n{SETUP_EXAMPLES}")
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
