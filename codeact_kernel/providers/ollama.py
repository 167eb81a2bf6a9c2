"""`ollama:<model>`: a local Ollama server through its native chat API.

`POST {host}/api/chat` streams one JSON object per line; the last one (`done: true`)
carries the token counts. The host comes from `OLLAMA_HOST` (or `CODEACT_BASE_URL`),
written as Ollama itself accepts it: `localhost:11434`, `http://gpu-box`, `0.0.0.0:8080`.
No key is needed; one that is configured (a proxy in front of Ollama) is sent as a
bearer token.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any

from .base import LENGTH, Message, Notice, StreamItem, TextDelta, Truncated, Usage
from .http import StreamFormat, parse_url, payload_error
from .http_model import HttpModel
from .ndjson import ndjson_stream
from .usage import estimated_usage, token_count

DEFAULT_PORT = 11434


def _looks_like_chat(line: str, declared: bool) -> bool:
    """Whether a reply whose first line is `line` is Ollama's stream of chat lines.

    Declared one, it is unless that line is markup. Otherwise the line must be a chat
    line (`message`, `done`): a lone error or another API's JSON is reported as the
    reply it is.
    """
    if declared:
        return not line.startswith("<")
    try:
        value = json.loads(line)
    except ValueError:
        return False
    return isinstance(value, dict) and "done" in value and "error" not in value


CHAT_LINES = StreamFormat(
    "a stream of JSON lines (application/x-ndjson)",
    ("application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines"),
    _looks_like_chat,
)


class OllamaProvider(HttpModel):
    """A model served by Ollama."""

    provider = "ollama"
    key_variables = ("CODEACT_API_KEY",)
    url_variables = ("CODEACT_BASE_URL", "OLLAMA_HOST")
    default_base_url = "http://localhost:11434"
    server_label = "Ollama"
    base_url_hint = " (Ollama's address, such as http://localhost:11434)"

    @staticmethod
    def _api_root(url: str) -> str:
        """`OLLAMA_HOST` as a base URL: scheme and port filled in, no trailing path."""
        if "://" not in url:
            url = "http://" + url
        parsed = parse_url(url)
        if parsed.port is None and parsed.scheme == "http":
            parsed = parsed.copy_with(port=DEFAULT_PORT)
        path = parsed.path.rstrip("/").removesuffix("/api").removesuffix("/v1")
        return str(parsed.copy_with(path=path or "/")).rstrip("/")

    def _unreachable_hint(self) -> str:
        return (
            "Is Ollama running? Start it with `ollama serve` (or the Ollama app), "
            "or point OLLAMA_HOST at the machine that runs it."
        )

    def _missing_model_hint(self) -> str:
        return f"Pull it with `ollama pull {self._config.model}`."

    async def list_models(self) -> list[str]:
        """The models pulled into this Ollama (`GET /api/tags`)."""
        payload = await self._get_json("/api/tags")
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
        self._require_key()
        body: dict[str, Any] = {
            "model": self._config.model,
            "messages": [_message(m) for m in messages],
            "stream": True,
        }
        options: dict[str, Any] = {}
        if self._max_tokens:
            options["num_predict"] = self._max_tokens
        if self._config.temperature is not None:
            options["temperature"] = self._config.temperature
        if stop:
            options["stop"] = list(stop)
        if options:
            body["options"] = options
        request = self._post("/api/chat", body)
        answer: list[str] = []
        counts: tuple[int | None, int | None] = (None, None)
        finished = tool_call = False
        early: str | None = None  # why the answer stopped early, if it did
        unread: str | None = None
        lines = ndjson_stream(
            self._client,
            request,
            self._endpoint,
            self._retry,
            expect=CHAT_LINES,
            shown=lambda: bool(answer),
        )
        async with aclosing(lines):
            async for line in lines:
                if isinstance(line, Notice):
                    yield line
                    continue
                if line.get("error"):
                    raise payload_error(line, self._endpoint, shown=bool(answer))
                if "message" not in line and "done" not in line:
                    unread = json.dumps(line) if unread is None else unread
                    continue
                message = line.get("message")
                content = message.get("content") if isinstance(message, dict) else None
                if isinstance(content, str) and content:
                    answer.append(content)
                    yield TextDelta(content)
                if isinstance(message, dict) and message.get("tool_calls"):
                    tool_call = True
                if line.get("done"):
                    finished = True
                    early = _stop_reason(line.get("done_reason"))
                    counts = (
                        token_count(line.get("prompt_eval_count")),
                        token_count(line.get("eval_count")),
                    )
        text = self._answer(finished, answer, stop=early, tool_call=tool_call, unread=unread)
        if early is not None:
            yield Truncated(self._max_tokens, early)
        yield _usage(counts, estimated_usage(messages, text))


def _stop_reason(reason: Any) -> str | None:
    """The `Truncated.reason` for a `done_reason`; None for a normal end (or none given)."""
    if reason == "length":
        return LENGTH
    # A proxy's word for a filter; "stop", "load", "unload" and any other word are an
    # end where the model chose.
    return str(reason) if reason in ("content_filter", "refusal") else None


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
