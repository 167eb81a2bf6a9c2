"""`openai:<model>`: OpenAI and every server that speaks its chat-completions API.

vLLM, llama.cpp's server, LM Studio, Ollama's /v1, OpenRouter, Groq and Together all
accept the same streamed `POST {base_url}/chat/completions`. The base URL is the
one their documentation gives, ending in `/v1` (`http://localhost:8000/v1`). For
convenience a bare host (`http://localhost:8000`) gets `/v1` added, and a pasted
`…/chat/completions` is trimmed back to the base.

The output limit travels as `max_tokens` everywhere but at OpenAI itself. OpenAI has
deprecated it for `max_completion_tokens`, which its reasoning models require; vLLM,
llama.cpp, LM Studio, OpenRouter and Groq take `max_tokens`, and Ollama's /v1 reads
only that one (it silently ignores the other: no limit at all). A server that refuses
`max_tokens` and names `max_completion_tokens` instead (Azure's reasoning models, a
proxy in front of OpenAI) is asked again with that, and this model keeps using it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ServerError
from .base import LENGTH, REFUSAL, Message, Notice, StreamItem, TextDelta, Truncated, Usage
from .http import malformed, parse_url, payload_error
from .http_model import HttpModel, model_ids
from .images import media_type
from .sse import sse_stream
from .usage import estimated_usage, token_count

if TYPE_CHECKING:
    import httpx

    from .base import ProviderConfig
    from .retry import RetryPolicy


# Finish reasons of an answer stopped early: a filter (OpenAI, Azure), a refusal, and
# the words of servers that translate other vendors' APIs (Gemini's "recitation",
# "safety"). Its code never runs. Any other reason, the API's own ("stop",
# "tool_calls") or a server's word for a normal end ("eos", "eos_token", "end_turn"), is
# an end where the model chose.
_EARLY = ("content_filter", "refusal", "recitation", "safety")
# Finish reasons of an answer that ended at the output limit ("max_tokens": proxies;
# "model_length": Mistral, the context window full).
_CUT = ("length", "max_tokens", "model_length")


def _stop_reason(reason: str) -> str | None:
    """The `Truncated.reason` for a `finish_reason`; None for a normal end."""
    reason = reason.lower()
    if reason in _CUT:
        return LENGTH
    return reason if reason in _EARLY else None


@dataclass(frozen=True)
class _Finish:
    """A choice's `finish_reason`, or the `[DONE]` that ends the stream (no reason)."""

    reason: str | None = None


@dataclass(frozen=True)
class _ToolCall:
    """A piece of a tool call: the model answered with one, which CodeAct never offers."""


class OpenAIProvider(HttpModel):
    """A model behind an OpenAI-compatible chat-completions endpoint."""

    provider = "openai"
    key_variables = ("CODEACT_API_KEY", "OPENAI_API_KEY")
    url_variables = ("CODEACT_BASE_URL", "OPENAI_BASE_URL")
    default_base_url = "https://api.openai.com/v1"
    server_label = "the OpenAI-compatible server"
    vendor_host = "api.openai.com"
    vendor_label = "OpenAI"
    key_help = ", or set CODEACT_BASE_URL to a local OpenAI-compatible server that needs none."

    @staticmethod
    def _api_root(url: str) -> str:
        url = url.removesuffix("/chat/completions")
        if "://" not in url:
            url = "http://" + url
        if parse_url(url).path in ("", "/"):
            url += "/v1"
        return url

    base_url_hint = " (an OpenAI-compatible server's usually ends in /v1)"

    def __init__(
        self,
        config: ProviderConfig,
        client: httpx.AsyncClient,
        *,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__(config, client, retry=retry)
        self._limit_name = "max_completion_tokens" if self._official else "max_tokens"

    async def list_models(self) -> list[str]:
        """The model ids the endpoint offers (`GET /models`)."""
        return model_ids(await self._get_json("/models"))

    async def stream(
        self, messages: Sequence[Message], *, stop: Sequence[str] = ()
    ) -> AsyncIterator[StreamItem]:
        """Stream the answer to `messages`; see `Model.stream`."""
        self._require_key()
        while True:
            try:
                async for item in self._stream(messages, stop):
                    yield item
                return
            except ServerError as error:
                if not self._wants_completion_tokens(error):
                    raise
                self._limit_name = "max_completion_tokens"

    async def _stream(
        self, messages: Sequence[Message], stop: Sequence[str]
    ) -> AsyncIterator[StreamItem]:
        body: dict[str, Any] = {
            "model": self._config.model,
            "messages": [_message(m) for m in messages],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if self._max_tokens:
            body[self._limit_name] = self._max_tokens
        if self._config.temperature is not None:
            body["temperature"] = self._config.temperature
        if stop:
            body["stop"] = list(stop)
        request = self._post("/chat/completions", body, accept="text/event-stream")
        answer: list[str] = []
        usage: Usage | None = None
        finished = tool_call = False
        early: str | None = None  # why the answer stopped early, if it did
        unread: str | None = None
        events = sse_stream(
            self._client, request, self._endpoint, self._retry, shown=lambda: bool(answer)
        )
        async with aclosing(events):
            async for event in events:
                if isinstance(event, Notice):
                    yield event
                    continue
                items = self._read(event.event, event.data, shown=bool(answer))
                if items is None:
                    unread = event.data if unread is None else unread
                    continue
                for item in items:
                    if isinstance(item, TextDelta):
                        answer.append(item.text)
                        yield item
                    elif isinstance(item, Usage):
                        usage = item
                    elif isinstance(item, _ToolCall):
                        tool_call = True
                    else:
                        finished = True
                        if item.reason is not None and early is None:
                            early = _stop_reason(item.reason)
        text = self._answer(finished, answer, stop=early, tool_call=tool_call, unread=unread)
        if early is not None:
            yield Truncated(self._max_tokens, early)
        yield usage or estimated_usage(messages, text)

    def _wants_completion_tokens(self, error: ServerError) -> bool:
        """Whether the server refused `max_tokens` and asked for `max_completion_tokens`."""
        return (
            error.status == 400
            and self._limit_name == "max_tokens"
            and self._max_tokens is not None
            and "max_completion_tokens" in str(error)
        )

    def _read(
        self, event: str, data: str, *, shown: bool
    ) -> list[TextDelta | Usage | _Finish | _ToolCall] | None:
        """What one SSE event carries: text, usage, or how the answer finished; None for
        an event that is not a chat-completions chunk (another API's)."""
        if data.strip() == "[DONE]":
            return [_Finish()]
        try:
            payload = json.loads(data)
        except ValueError:
            raise malformed(self._endpoint, f"not JSON: {data!r}", shown=shown) from None
        if not isinstance(payload, dict):
            raise malformed(self._endpoint, f"not a JSON object: {data!r}", shown=shown)
        if event == "error" or payload.get("error"):
            raise payload_error(payload, self._endpoint, shown=shown)
        if "choices" not in payload and "usage" not in payload:
            return None
        items: list[TextDelta | Usage | _Finish | _ToolCall] = []
        for choice in payload.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta")
            delta = delta if isinstance(delta, dict) else {}
            if content := _text(delta.get("content")):
                items.append(TextDelta(content))
            if (refusal := delta.get("refusal")) and isinstance(refusal, str):
                # OpenAI's refusal arrives apart from the content: it is the answer's text.
                items += [TextDelta(refusal), _Finish(REFUSAL)]
            if delta.get("tool_calls") or delta.get("function_call"):
                items.append(_ToolCall())
            if reason := choice.get("finish_reason"):
                items.append(_Finish(str(reason)))
        usage = payload.get("usage")
        if isinstance(usage, dict):
            prompt = token_count(usage.get("prompt_tokens"))
            completion = token_count(usage.get("completion_tokens"))
            if prompt is not None and completion is not None:
                items.append(Usage(prompt, completion))
        return items


def _text(content: Any) -> str:
    """The text of a delta's `content`: a string; a list of parts, whose text parts count
    (`[{"type": "text", "text": "Hello"}]`, as some servers send); a bare number."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            _text(part.get("text") if isinstance(part, dict) else part) for part in content
        )
    if isinstance(content, (int, float)) and not isinstance(content, bool):
        return str(content)
    return ""


def _message(message: Message) -> dict[str, Any]:
    if not message.images:
        return {"role": message.role, "content": message.content}
    parts: list[dict[str, Any]] = [{"type": "text", "text": message.content}]
    parts += [
        {"type": "image_url", "image_url": {"url": f"data:{media_type(image)};base64,{image}"}}
        for image in message.images
    ]
    return {"role": message.role, "content": parts}
