"""`anthropic:<model>`: Claude through the Messages API, streamed.

`POST {base_url}/v1/messages` with `stream: true`. System messages travel in their
own `system` field; the key in `x-api-key`; usage arrives in `message_start` (input)
and `message_delta` (output, cumulative). The base URL is the API root
(`https://api.anthropic.com`); a trailing `/v1` or `/v1/messages` is accepted too.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any

from .base import LENGTH, PAUSE, REFUSAL, Message, Notice, StreamItem, TextDelta, Truncated, Usage
from .http import malformed, parse_url, payload_error
from .http_model import HttpModel, model_ids
from .images import media_type
from .sse import sse_stream
from .usage import estimated_usage, token_count

API_VERSION = "2023-06-01"
# The Messages API requires a cap on the answer, even when the settings ask for none.
# Code actions are short, and every Claude model accepts 4096 output tokens.
DEFAULT_MAX_TOKENS = 4096
# Stop reasons of an answer that ended at a limit, not where the model chose.
_CUT = ("max_tokens", "model_context_window_exceeded")
# Stop reasons of an answer that stopped early; any other ("end_turn", "stop_sequence",
# "tool_use", one added later) ended where the model chose.
_EARLY = {"refusal": REFUSAL, "pause_turn": PAUSE}


def _stop_reason(reason: Any) -> str | None:
    """The `Truncated.reason` for a `stop_reason`; None for a normal end (or none given)."""
    if not reason:
        return None
    if reason in _CUT:
        return LENGTH
    return _EARLY.get(str(reason))


# Every event type of the Messages stream: another type is another API's event.
_EVENTS = frozenset(
    {
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
        "ping",
    }
)


class AnthropicProvider(HttpModel):
    """A Claude model behind the Anthropic Messages API (or a proxy that speaks it)."""

    provider = "anthropic"
    key_variables = ("CODEACT_API_KEY", "ANTHROPIC_API_KEY")
    url_variables = ("CODEACT_BASE_URL", "ANTHROPIC_BASE_URL")
    default_base_url = "https://api.anthropic.com"
    server_label = "the Anthropic-compatible server"
    vendor_host = "api.anthropic.com"
    vendor_label = "Anthropic"
    key_help = " from https://console.anthropic.com/."
    base_url_hint = " (the API root, such as https://api.anthropic.com)"

    @property
    def _max_tokens(self) -> int:
        return self._config.max_tokens or DEFAULT_MAX_TOKENS

    @staticmethod
    def _api_root(url: str) -> str:
        """No `/v1`: requests add it."""
        url = url.removesuffix("/messages").removesuffix("/v1")
        url = url if "://" in url else "https://" + url
        parse_url(url)
        return url

    async def list_models(self) -> list[str]:
        """The model ids the API offers (`GET /v1/models`)."""
        return model_ids(await self._get_json("/v1/models?limit=1000"))

    async def stream(
        self, messages: Sequence[Message], *, stop: Sequence[str] = ()
    ) -> AsyncIterator[StreamItem]:
        """Stream the answer to `messages`; see `Model.stream`."""
        self._require_key()
        body: dict[str, Any] = {
            "model": self._config.model,
            "max_tokens": self._max_tokens,
            "messages": _turns(messages),
            "stream": True,
        }
        system = "\n\n".join(m.content for m in messages if m.role == "system")
        if system:
            body["system"] = system
        if self._config.temperature is not None:
            # Anthropic accepts 0 to 1; a higher setting is clamped.
            body["temperature"] = min(self._config.temperature, 1.0)
        # The API rejects stop sequences made only of whitespace.
        if stops := [s for s in stop if s.strip()]:
            body["stop_sequences"] = stops
        request = self._post("/v1/messages", body, accept="text/event-stream")
        answer: list[str] = []
        input_tokens: int | None = None
        output_tokens: int | None = None
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
                payload = self._parse(event.data, shown=bool(answer))
                kind = payload.get("type") or event.event
                if "error" in (kind, event.event):
                    raise payload_error(payload, self._endpoint, shown=bool(answer))
                if kind not in _EVENTS:
                    unread = event.data if unread is None else unread
                elif kind == "message_start":
                    usage = _dict(_dict(payload.get("message")).get("usage"))
                    input_tokens = _input_tokens(usage)
                    output_tokens = token_count(usage.get("output_tokens"))
                elif kind == "content_block_start":
                    block = _dict(payload.get("content_block")).get("type")
                    tool_call = tool_call or block in ("tool_use", "server_tool_use")
                elif kind == "content_block_delta":
                    delta = _dict(payload.get("delta"))
                    piece = delta.get("text")
                    if delta.get("type") == "text_delta" and isinstance(piece, str) and piece:
                        answer.append(piece)
                        yield TextDelta(piece)
                elif kind == "message_delta":
                    reason = _dict(payload.get("delta")).get("stop_reason")
                    early = _stop_reason(reason) or early
                    # Counts here are cumulative; input only appears in newer API versions.
                    usage = _dict(payload.get("usage"))
                    if (output := token_count(usage.get("output_tokens"))) is not None:
                        output_tokens = output
                    if (prompt := _input_tokens(usage)) is not None:
                        input_tokens = prompt
                elif kind == "message_stop":
                    finished = True
        text = self._answer(finished, answer, stop=early, tool_call=tool_call, unread=unread)
        if early is not None:
            yield Truncated(self._max_tokens, early)
        if input_tokens is None or output_tokens is None:
            yield estimated_usage(messages, text)
        else:
            yield Usage(input_tokens, output_tokens)

    def _parse(self, data: str, *, shown: bool) -> dict[str, Any]:
        if data.strip() == "[DONE]":
            # The end of an OpenAI-compatible stream: not an event of this API.
            return {"type": data.strip()}
        try:
            payload = json.loads(data)
        except ValueError:
            raise malformed(self._endpoint, f"not JSON: {data!r}", shown=shown) from None
        if not isinstance(payload, dict):
            raise malformed(self._endpoint, f"not a JSON object: {data!r}", shown=shown)
        return payload

    def _headers(self) -> dict[str, str]:
        headers = {"anthropic-version": API_VERSION}
        if self._config.api_key:
            headers["x-api-key"] = self._config.api_key
        return headers


def _input_tokens(usage: dict[str, Any]) -> int | None:
    # Cached prompt tokens are reported apart from the rest; all of them were sent.
    counts = [
        token_count(usage.get(name))
        for name in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    ]
    if counts[0] is None:
        return None
    return sum(count or 0 for count in counts)


def _dict(value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one: odd shapes must not crash the reader."""
    return value if isinstance(value, dict) else {}


def _turns(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """User and assistant turns, consecutive ones of the same role merged.

    The API wants turns to alternate; the agent may send, say, an observation and the
    next request as two user messages in a row.
    """
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        blocks = [
            {
                "type": "image",
                "source": {"type": "base64", "media_type": media_type(image), "data": image},
            }
            for image in message.images
        ]
        if message.content:
            # The API rejects empty text blocks.
            blocks.append({"type": "text", "text": message.content})
        if not blocks:
            continue
        if turns and turns[-1]["role"] == message.role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": message.role, "content": blocks})
    for turn in turns:
        if len(turn["content"]) == 1 and turn["content"][0]["type"] == "text":
            turn["content"] = turn["content"][0]["text"]
    return turns
