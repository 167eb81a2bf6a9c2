"""`ollama:<model>`: a local Ollama server through its native chat API.

`POST {host}/api/chat` streams one JSON object per line; the last one (`done: true`)
carries the token counts. The host comes from `OLLAMA_HOST` (or `CODEACT_BASE_URL`),
written as Ollama itself accepts it: `localhost:11434`, `http://gpu-box`, `0.0.0.0:8080`.
No key is needed; one that is configured (a proxy in front of Ollama) is sent as a
bearer token.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any

import httpx

from ..settings import key_variables
from .base import Message, Notice, ProviderConfig, StreamItem, TextDelta, Usage
from .http import Endpoint, check_key, empty_answer, get_json, parse_url, payload_error, truncated
from .ndjson import ndjson_stream
from .retry import RetryPolicy
from .usage import estimated_usage, token_count

DEFAULT_HOST = "http://localhost:11434"
DEFAULT_PORT = 11434


def normalize_host(host: str | None) -> str:
    """`OLLAMA_HOST` as a base URL: scheme and port filled in, no trailing path."""
    host = (host or DEFAULT_HOST).strip().rstrip("/")
    if "://" not in host:
        host = "http://" + host
    url = parse_url(host)
    if url.port is None and url.scheme == "http":
        url = url.copy_with(port=DEFAULT_PORT)
    path = url.path.rstrip("/").removesuffix("/api").removesuffix("/v1")
    return str(url.copy_with(path=path or "/")).rstrip("/")


class OllamaProvider:
    """A model served by Ollama."""

    def __init__(
        self,
        config: ProviderConfig,
        client: httpx.AsyncClient,
        *,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._config = config
        self._client = client
        self._retry = retry or RetryPolicy()
        self._base_url = normalize_host(config.base_url)
        self._endpoint = Endpoint(
            label="Ollama",
            url=self._base_url,
            config=config,
            key_variables=key_variables("ollama"),
            unreachable_hint=(
                "Is Ollama running? Start it with `ollama serve` (or the Ollama app), "
                "or point OLLAMA_HOST at the machine that runs it."
            ),
            missing_model_hint=f"Pull it with `ollama pull {config.model}`.",
            list_models=self.list_models,
        )

    @property
    def name(self) -> str:
        return f"ollama:{self._config.model}"

    @property
    def endpoint(self) -> str:
        return self._base_url

    def __repr__(self) -> str:
        return f"OllamaProvider({self.name!r}, endpoint={self._base_url!r})"

    async def list_models(self) -> list[str]:
        """The models pulled into this Ollama (`GET /api/tags`)."""
        payload = await get_json(
            self._client, f"{self._base_url}/api/tags", self._endpoint, self._headers()
        )
        models = payload.get("models") if isinstance(payload, dict) else None
        return [
            str(m.get("name") or m.get("model"))
            for m in models or []
            if isinstance(m, dict) and (m.get("name") or m.get("model"))
        ]

    async def stream(
        self, messages: Sequence[Message], *, stop: Sequence[str] = ()
    ) -> AsyncIterator[StreamItem]:
        """Stream the answer to `messages`; see `Model.stream`."""
        body: dict[str, Any] = {
            "model": self._config.model,
            "messages": [_message(m) for m in messages],
            "stream": True,
        }
        if stop:
            body["options"] = {"stop": list(stop)}
        request = self._client.build_request(
            "POST",
            f"{self._base_url}/api/chat",
            json=body,
            headers=self._headers(),
            timeout=self._endpoint.timeout(),
        )
        answer: list[str] = []
        counts: tuple[int | None, int | None] = (None, None)
        finished = False
        lines = ndjson_stream(self._client, request, self._endpoint, self._retry)
        async with aclosing(lines):
            async for line in lines:
                if isinstance(line, Notice):
                    yield line
                    continue
                if line.get("error"):
                    raise payload_error(line, self._endpoint)
                message = line.get("message")
                content = message.get("content") if isinstance(message, dict) else None
                if isinstance(content, str) and content:
                    answer.append(content)
                    yield TextDelta(content)
                if line.get("done"):
                    finished = True
                    counts = (
                        token_count(line.get("prompt_eval_count")),
                        token_count(line.get("eval_count")),
                    )
        if not finished:
            raise truncated(self._endpoint)
        if not answer:
            raise empty_answer(self._endpoint)
        yield _usage(counts, estimated_usage(messages, "".join(answer)))

    def _headers(self) -> dict[str, str]:
        check_key(self._config)
        if self._config.api_key:
            return {"authorization": f"Bearer {self._config.api_key}"}
        return {}


def _usage(counts: tuple[int | None, int | None], estimate: Usage) -> Usage:
    """Ollama's counts; it leaves out `prompt_eval_count` when the prompt was cached."""
    prompt, output = counts
    if prompt is None and output is None:
        return estimate
    return Usage(
        estimate.input_tokens if prompt is None else prompt,
        estimate.output_tokens if output is None else output,
        estimated=prompt is None or output is None,
    )


def _message(message: Message) -> dict[str, Any]:
    sent: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.images:
        sent["images"] = list(message.images)
    return sent
