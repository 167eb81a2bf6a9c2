"""Choosing a model when CODEACT_MODEL is unset, and building each provider by name."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import httpx
import pytest
from model_server import ScriptedModelServer
from provider_doubles import no_request

from codeact_kernel.errors import ConfigurationError
from codeact_kernel.providers import (
    Model,
    ProviderFactory,
    create_model,
    register,
    resolve_settings,
)
from codeact_kernel.providers.anthropic import AnthropicProvider
from codeact_kernel.providers.detect import detect_default_model
from codeact_kernel.providers.ollama import OllamaProvider
from codeact_kernel.providers.openai import OpenAIProvider


def detect(environ: Mapping[str, str], transport: httpx.AsyncBaseTransport | None = None) -> str:
    async def run() -> str:
        async with httpx.AsyncClient(transport=transport) as client:
            return await detect_default_model(environ, client)

    return asyncio.run(run())


def closed_port() -> str:
    with ScriptedModelServer() as server:
        return server.root


def test_keys_pick_the_provider_without_any_request() -> None:
    offline = httpx.MockTransport(no_request)
    assert detect({"OPENAI_API_KEY": "k"}, offline) == "openai:gpt-4o-mini"
    assert detect({"ANTHROPIC_API_KEY": "k"}, offline) == "anthropic:claude-sonnet-4-5"
    both = {"OPENAI_API_KEY": "k", "ANTHROPIC_API_KEY": "k"}
    assert detect(both, offline) == "openai:gpt-4o-mini"


def test_a_base_url_alone_means_its_first_model(model_server: ScriptedModelServer) -> None:
    model_server.models = ["Qwen/Qwen2.5-Coder-7B-Instruct", "other"]
    assert detect({"CODEACT_BASE_URL": model_server.url}) == "openai:Qwen/Qwen2.5-Coder-7B-Instruct"
    assert detect({"OPENAI_BASE_URL": model_server.url}) == "openai:Qwen/Qwen2.5-Coder-7B-Instruct"


def test_a_base_url_that_does_not_answer() -> None:
    url = closed_port() + "/v1"
    with pytest.raises(ConfigurationError, match="did not list its models") as caught:
        detect({"CODEACT_BASE_URL": url})
    assert url in str(caught.value)
    assert "CODEACT_MODEL=" in str(caught.value)


def test_a_base_url_with_no_models(model_server: ScriptedModelServer) -> None:
    model_server.models = []
    with pytest.raises(ConfigurationError, match="lists none"):
        detect({"CODEACT_BASE_URL": model_server.url})


def test_local_ollama_first_model(model_server: ScriptedModelServer) -> None:
    model_server.models = ["qwen2.5-coder:7b", "llama3.2:latest"]
    assert detect({"OLLAMA_HOST": model_server.root}) == "ollama:qwen2.5-coder:7b"


def test_ollama_without_models(model_server: ScriptedModelServer) -> None:
    model_server.models = []
    with pytest.raises(ConfigurationError, match="ollama pull"):
        detect({"OLLAMA_HOST": model_server.root})


def test_nothing_configured_shows_setup_examples() -> None:
    host = closed_port()
    with pytest.raises(ConfigurationError) as caught:
        detect({"OLLAMA_HOST": host})
    message = str(caught.value)
    assert f"no Ollama answers at {host}" in message
    for example in ("CODEACT_MODEL=openai:", "CODEACT_MODEL=anthropic:", "CODEACT_MODEL=ollama:"):
        assert example in message
    assert "CODEACT_BASE_URL=http://localhost:8000/v1" in message


@pytest.mark.parametrize(
    ("name", "factory", "expected"),
    [
        ("openai:gpt-x", OpenAIProvider, "https://api.openai.com/v1"),
        ("anthropic:claude-x", AnthropicProvider, "https://api.anthropic.com"),
        ("ollama:qwen2.5-coder:7b", OllamaProvider, "http://localhost:11434"),
    ],
)
def test_every_provider_builds_through_the_registry(
    name: str, factory: ProviderFactory, expected: str
) -> None:
    register(name.partition(":")[0], factory)
    settings = resolve_settings(environ={"CODEACT_MODEL": name, "CODEACT_API_KEY": "k" * 20})

    async def build() -> Model:
        async with httpx.AsyncClient() as client:
            return create_model(settings, client)

    model = asyncio.run(build())
    assert model.name == name
    assert model.endpoint == expected
