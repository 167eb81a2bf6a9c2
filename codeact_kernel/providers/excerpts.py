"""What a reply body says, in a few clean words, for error messages.

A server's error body may be JSON in one of several vendors' shapes, plain text, or a
proxy's web page. An error message quotes the human part of it: the JSON error
message, else the text, with a page's markup, scripts and styles taken out, the
whitespace collapsed, and the length bounded. Never the raw HTML.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any

#: The longest JSON error message quoted (they are written for people, and say what to fix).
MESSAGE_LIMIT = 500
#: The longest excerpt of anything else: a page's gist, not the page.
TEXT_LIMIT = 200


def error_message(payload: Any) -> str:
    """The human part of an error body in the shapes OpenAI, Anthropic, Ollama and others use."""
    if isinstance(payload, str):
        return payload
    if not isinstance(payload, dict):
        return ""
    error = payload.get("error")
    if isinstance(error, str):
        return error
    if isinstance(error, dict):
        return str(error.get("message") or error.get("type") or json.dumps(error))
    for key in ("message", "detail"):
        if isinstance(payload.get(key), str):
            return str(payload[key])
    return ""


def error_code(payload: Any) -> str:
    """The machine part of an error body (`code` or `type`), if any."""
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        return str(error.get("code") or error.get("type") or "")
    return ""


def unstreamed_answer(payload: Any) -> str | None:
    """The text of a whole, unstreamed chat answer (OpenAI's, Anthropic's or Ollama's
    shape), which a server that ignores `"stream": true` sends; None for anything else."""
    if not isinstance(payload, dict):
        return None
    choices = payload.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message")
        text = message.get("content") if isinstance(message, dict) else None
    elif payload.get("type") == "message" and isinstance(payload.get("content"), list):
        blocks = [b for b in payload["content"] if isinstance(b, dict)]
        text = "".join(str(b.get("text") or "") for b in blocks if b.get("type") == "text")
    elif isinstance(payload.get("message"), dict) and "done" in payload:
        text = payload["message"].get("content")
    else:
        return None
    return text if isinstance(text, str) and text.strip() else None


def json_body(body: bytes) -> Any | None:
    """The body parsed as JSON; None when it is not JSON (or is JSON `null`)."""
    try:
        return json.loads(body)
    except ValueError:
        return None


def is_web_page(body: bytes, media_type: str) -> bool:
    """Whether the body is an HTML page (declared so, or plainly one)."""
    if "html" in media_type:
        return True
    start = body[:512].lstrip().lower()
    return start.startswith((b"<!doctype html", b"<html"))


def excerpt(body: bytes, media_type: str) -> str:
    """The gist of a reply body on one line: its JSON error message, else its text."""
    payload = json_body(body)
    if payload is not None:
        said = error_message(payload) or json.dumps(payload, ensure_ascii=False)
        return clip(said, MESSAGE_LIMIT)
    text = body.decode("utf-8", "replace")
    if is_web_page(body, media_type):
        text = page_text(text)
    return clip(text, TEXT_LIMIT)


def page_text(page: str) -> str:
    """What a web page says: its title, then its visible text (a proxy's page repeats its
    title as a heading; it is said once)."""
    reader = _PageReader()
    reader.feed(page)
    reader.close()
    title, text = _words("".join(reader.title)), _words("".join(reader.text))
    if not title or text.startswith(title):
        return text
    return f"{title}: {text}" if text else title


class _PageReader(HTMLParser):
    """Collects a page's title and the text a browser would show (not scripts, styles)."""

    _HIDDEN = frozenset({"script", "style", "noscript", "template", "title"})
    # Elements that start a new line in a browser: their text is not run together.
    _BLOCK = re.compile(
        r"address|article|aside|blockquote|body|br|center|d[dlt]|div|footer|h[1-6r]|header"
        r"|li|main|nav|ol|p|pre|section|table|t[dhr]|ul"
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title: list[str] = []
        self.text: list[str] = []
        self._open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._open.append(tag)
        elif self._BLOCK.fullmatch(tag):
            self.text.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._open:
            del self._open[len(self._open) - 1 - self._open[::-1].index(tag) :]
        elif self._BLOCK.fullmatch(tag):
            self.text.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._open:
            self.text.append(data)
        elif self._open == ["title"]:
            self.title.append(data)


def clip(text: str, limit: int) -> str:
    """`text` on one line, cut at a word boundary to at most `limit` characters and an ellipsis."""
    text = _words(text)
    if len(text) <= limit:
        return text
    cut = text[:limit]
    if " " in cut[limit // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.") + "…"


def _words(text: str) -> str:
    return " ".join(text.split())
