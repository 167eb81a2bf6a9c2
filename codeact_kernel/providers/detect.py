"""Which model to use when `CODEACT_MODEL` is unset.

In order: OpenAI when `OPENAI_API_KEY` is set; Anthropic when `ANTHROPIC_API_KEY` is;
the first model of the OpenAI-compatible server at `CODEACT_BASE_URL` /
`OPENAI_BASE_URL` when one is set (a vLLM or llama.cpp user has set nothing else);
else the first model of a local Ollama. Otherwise a `ConfigurationError` shows how
to set each of them up.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from ..errors import ConfigurationError, ProviderError
from . import DEFAULT_ANTHROPIC_MODEL, DEFAULT_OPENAI_MODEL, SETUP_EXAMPLES
from .base import ProviderConfig
from .ollama import OllamaProvider
from .openai import OpenAIProvider


async def detect_default_model(environ: Mapping[str, str], client: httpx.AsyncClient) -> str:
    """The `provider:model` to use, found from the environment and local servers."""
    if environ.get("OPENAI_API_KEY"):
        return f"openai:{DEFAULT_OPENAI_MODEL}"
    if environ.get("ANTHROPIC_API_KEY"):
        return f"anthropic:{DEFAULT_ANTHROPIC_MODEL}"
    base_url = _first(environ, OpenAIProvider.url_variables)
    if base_url:
        api_key = _first(environ, OpenAIProvider.key_variables)
        server = OpenAIProvider(_probe(base_url, api_key), client)
        try:
            models = await server.list_models()
        except ProviderError as exc:
            raise ConfigurationError(
                f"No model is configured, and the server at {server.endpoint} did not list its "
                f"models ({exc}).\n{SETUP_EXAMPLES}"
            ) from None
        if models:
            return f"openai:{models[0]}"
        raise ConfigurationError(
            f"No model is configured, and the server at {server.endpoint} lists none.\n"
            f"{SETUP_EXAMPLES}"
        )
    host = OllamaProvider.normalize_base_url(_first(environ, OllamaProvider.url_variables))
    try:
        models = await OllamaProvider(_probe(host), client).list_models()
    except ProviderError:
        raise ConfigurationError(
            "No model is configured: OPENAI_API_KEY and ANTHROPIC_API_KEY are unset, and no "
            f"Ollama answers at {host}.\n{SETUP_EXAMPLES}"
        ) from None
    if models:
        return f"ollama:{models[0]}"
    raise ConfigurationError(
        f"No model is configured, and the Ollama at {host} has none pulled. Pull one with "
        f"`ollama pull qwen2.5-coder:7b`, or:\n{SETUP_EXAMPLES}"
    )


def _first(environ: Mapping[str, str], variables: tuple[str, ...]) -> str | None:
    """The value of the first of `variables` that is set (to something)."""
    return next((environ[v] for v in variables if environ.get(v)), None)


def _probe(base_url: str, api_key: str | None = None) -> ProviderConfig:
    # Probing must not hold up a cell: a local server answers at once or not at all.
    return ProviderConfig(
        "", base_url, api_key, connect_timeout=1.0, idle_timeout=3.0, max_retries=0
    )
