"""`openai:<model>`: OpenAI and every server that speaks its chat-completions API.

vLLM, llama.cpp's server, LM Studio, Ollama's /v1, OpenRouter, Groq and Together all
accept the same streamed `POST {base_url}/chat/completions`. The base URL is the
one their documentation gives, ending in `/v1` (`http://localhost:8000/v1`). For
convenience a bare host (`http://localhost:8000`) gets `/v1` added, and a pasted
`…/chat/completions` is trimmed back to the base.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any

import httpx

from ..errors import ConfigurationError
from ..settings import key_variables
from .base import Message, Notice, ProviderConfig, StreamItem, TextDelta, Usage
from .http import (
    Endpoint,
    check_key,
    empty_answer,
    get_json,
    malformed,
    parse_url,
    payload_error,
    truncated,
)
from .images import media_type
from .retry import RetryPolicy
from .sse import sse_stream
from .usage import estimated_usage, token_count

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_OPENAI_HOST = "api.openai.com"


def normalize_base_url(url: str | None) -> str:
    """The base URL requests are made under: no trailing slash, ending in the API root."""
    url = (url or DEFAULT_BASE_URL).strip().rstrip("/")
    url = url.removesuffix("/chat/completions")
    if "://" not in url:
        url = "http://" + url
    if parse_url(url).path in ("", "/"):
        url += "/v1"
    return url


class OpenAIProvider:
    """A model behind an OpenAI-compatible chat-completions endpoint."""

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
        self._base_url = normalize_base_url(config.base_url)
        self._official = parse_url(self._base_url).host == _OPENAI_HOST
        self._endpoint = Endpoint(
            label="OpenAI" if self._official else "the OpenAI-compatible server",
            url=self._base_url,
            config=config,
            key_variables=key_variables("openai"),
            unreachable_hint=(
                "Check the network connection and any proxy settings."
                if self._official
                else "Is the server running, and is CODEACT_BASE_URL (or OPENAI_BASE_URL) right?"
            ),
            list_models=self.list_models,
        )

    @property
    def name(self) -> str:
        return f"openai:{self._config.model}"

    @property
    def endpoint(self) -> str:
        return self._base_url

    def __repr__(self) -> str:
        return f"OpenAIProvider({self.name!r}, endpoint={self._base_url!r})"

    async def list_models(self) -> list[str]:
        """The model ids the endpoint offers (`GET /models`)."""
        self._require_key()
        payload = await get_json(
            self._client, f"{self._base_url}/models", self._endpoint, self._headers()
        )
        data = payload.get("data") if isinstance(payload, dict) else None
        return [str(m["id"]) for m in data or [] if isinstance(m, dict) and "id" in m]

    async def stream(
        self, messages: Sequence[Message], *, stop: Sequence[str] = ()
    ) -> AsyncIterator[StreamItem]:
        """Stream the answer to `messages`; see `Model.stream`."""
        self._require_key()
        body: dict[str, Any] = {
            "model": self._config.model,
            "messages": [_message(m) for m in messages],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if stop:
            body["stop"] = list(stop)
        request = self._client.build_request(
            "POST",
            f"{self._base_url}/chat/completions",
            json=body,
            headers={**self._headers(), "accept": "text/event-stream"},
            timeout=self._endpoint.timeout(),
        )
        answer: list[str] = []
        usage: Usage | None = None
        finished = False
        events = sse_stream(self._client, request, self._endpoint, self._retry)
        async with aclosing(events):
            async for event in events:
                if isinstance(event, Notice):
                    yield event
                    continue
                for item in self._read(event.event, event.data):
                    if isinstance(item, TextDelta):
                        answer.append(item.text)
                        yield item
                    elif isinstance(item, Usage):
                        usage = item
                    else:
                        finished = True
        if not finished:
            raise truncated(self._endpoint)
        if not answer:
            raise empty_answer(self._endpoint)
        yield usage or estimated_usage(messages, "".join(answer))

    def _read(self, event: str, data: str) -> list[TextDelta | Usage | bool]:
        """What one SSE event carries: text, usage, or `True` when the answer is complete."""
        if data.strip() == "[DONE]":
            return [True]
        try:
            payload = json.loads(data)
        except ValueError:
            raise malformed(self._endpoint, f"not JSON: {data!r}") from None
        if not isinstance(payload, dict):
            raise malformed(self._endpoint, f"not a JSON object: {data!r}")
        if event == "error" or payload.get("error"):
            raise payload_error(payload, self._endpoint)
        items: list[TextDelta | Usage | bool] = []
        for choice in payload.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta")
            content = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(content, str) and content:
                items.append(TextDelta(content))
            if choice.get("finish_reason"):
                items.append(True)
        usage = payload.get("usage")
        if isinstance(usage, dict):
            prompt = token_count(usage.get("prompt_tokens"))
            completion = token_count(usage.get("completion_tokens"))
            if prompt is not None and completion is not None:
                items.append(Usage(prompt, completion))
        return items

    def _headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self._config.api_key:
            headers["authorization"] = f"Bearer {self._config.api_key}"
        return headers

    def _require_key(self) -> None:
        check_key(self._config)
        if not self._config.api_key and self._official:
            raise ConfigurationError(
                "No API key for OpenAI. Set OPENAI_API_KEY (or CODEACT_API_KEY) to your key, "
                "or set CODEACT_BASE_URL to a local OpenAI-compatible server that needs none."
            )


def _message(message: Message) -> dict[str, Any]:
    if not message.images:
        return {"role": message.role, "content": message.content}
    parts: list[dict[str, Any]] = [{"type": "text", "text": message.content}]
    parts += [
        {"type": "image_url", "image_url": {"url": f"data:{media_type(image)};base64,{image}"}}
        for image in message.images
    ]
    return {"role": message.role, "content": parts}
