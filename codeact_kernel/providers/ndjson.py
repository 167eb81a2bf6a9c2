"""A newline-delimited JSON reader (Ollama's streaming format) fed chunk by chunk."""

from __future__ import annotations

import json
from typing import Any

from .lines import LineDecoder


class MalformedLine(ValueError):
    """A line of the stream is not a JSON object."""


class NDJSONDecoder:
    """Feed body bytes, get one parsed object per complete non-blank line."""

    def __init__(self) -> None:
        self._lines = LineDecoder()

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        """The objects completed by `data`; raises `MalformedLine` on a bad line."""
        return [_parse(line) for line in self._lines.feed(data) if line.strip()]

    def close(self) -> list[dict[str, Any]]:
        """The last object when the body does not end with a newline."""
        return [_parse(line) for line in self._lines.close() if line.strip()]


def _parse(line: str) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise MalformedLine(f"not JSON: {line[:200]!r}") from exc
    if not isinstance(value, dict):
        raise MalformedLine(f"not a JSON object: {line[:200]!r}")
    return value
