"""Excerpts of reply bodies for error messages: the gist, clean, on one line, bounded."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codeact_kernel.providers.excerpts import (
    MESSAGE_LIMIT,
    TEXT_LIMIT,
    clip,
    excerpt,
    is_web_page,
    page_text,
)

CLOUDFLARE = """<!DOCTYPE html>
<!--[if lt IE 7]> <html class="no-js ie6 oldie" lang="en-US"> <![endif]-->
<html lang="en-US">
<head>
<title>llm.example.com | 502: Bad gateway</title>
<meta charset="UTF-8" />
<link rel="stylesheet" id="cf_styles-css" href="/cdn-cgi/styles/main.css" />
<style>body{margin:0;padding:0}</style>
<script>(function(){window._cf_chl_opt={cvId: '3'}})();</script>
</head>
<body>
<div id="cf-wrapper">
  <h1><span class="inline-block">Bad gateway</span>
  <span class="code-label">Error code 502</span></h1>
  <p>The web server reported a bad gateway error.</p>
  <noscript>Please enable JavaScript &amp; cookies</noscript>
</div>
</body>
</html>
"""


@pytest.mark.parametrize(
    ("body", "media_type", "expected"),
    [
        (b'{"error": {"message": "bad model", "type": "x"}}', "application/json", "bad model"),
        (b'{"detail": "Not Found"}', "application/json", "Not Found"),
        (b'{"ok": true}', "application/json", '{"ok": true}'),
        (b"upstream connect error\n\n  reset", "text/plain", "upstream connect error reset"),
        (
            b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad "
            b"Gateway</h1></center><hr><center>nginx</center></body></html>",
            "text/html",
            "502 Bad Gateway nginx",
        ),
        (
            CLOUDFLARE.encode(),
            "text/html",
            "llm.example.com | 502: Bad gateway: Bad gateway Error code 502 The web server "
            "reported a bad gateway error.",
        ),
        (b"<!doctype html><p>caf&eacute; &lt;closed&gt;</p>", "", "café <closed>"),
        (b"", "application/json", ""),
        (b"\xff\xfe broken \xc3", "text/plain", "\ufffd\ufffd broken \ufffd"),
    ],
)
def test_excerpts(body: bytes, media_type: str, expected: str) -> None:
    assert excerpt(body, media_type) == expected


def test_long_bodies_are_clipped_at_a_word() -> None:
    text = excerpt(b"<html><body>" + b"word " * 1000 + b"</body></html>", "text/html")
    assert text.endswith("word…") and len(text) <= TEXT_LIMIT + 1
    message = excerpt(json.dumps({"error": "x " * 1000}).encode(), "application/json")
    assert message.endswith("x…") and len(message) <= MESSAGE_LIMIT + 1
    assert clip("a" * 300, 10) == "a" * 10 + "…"


def test_web_pages_are_recognised_by_type_or_by_look() -> None:
    assert is_web_page(b"anything", "text/html")
    assert is_web_page(b"  <!DOCTYPE html><html>", "")
    assert is_web_page(b"<html><body>", "text/plain")
    assert not is_web_page(b'{"a": 1}', "application/json")
    assert not is_web_page(b"<b>bold</b> news", "text/plain")


def test_a_title_repeated_as_heading_is_said_once() -> None:
    assert page_text("<title>Down</title><h1>Down</h1> for maintenance") == ("Down for maintenance")
    assert page_text("<title>Only a title</title>") == "Only a title"


@settings(max_examples=300, deadline=None)
@given(
    body=st.binary(max_size=2000)
    | st.text(max_size=2000).map(str.encode)
    | st.lists(
        st.sampled_from(["<script>x<y</script>", "<p>", "</p>", "text", "&amp;", "<!-- c -->"]),
        max_size=50,
    ).map(lambda parts: ("<html>" + "".join(parts)).encode()),
    media_type=st.sampled_from(["text/html", "text/plain", "application/json", ""]),
)
def test_an_excerpt_is_one_bounded_line(body: bytes, media_type: str) -> None:
    text = excerpt(body, media_type)
    assert len(text) <= MESSAGE_LIMIT + 1
    assert "\n" not in text and "\r" not in text
    if is_web_page(body, media_type):
        assert "<script" not in text and "<p>" not in text
