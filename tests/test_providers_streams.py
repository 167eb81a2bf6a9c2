"""The line, SSE and NDJSON readers: any chunking of the bytes gives the same result."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from provider_doubles import split

from codeact_kernel.providers.lines import LineDecoder
from codeact_kernel.providers.ndjson import MalformedLine, NDJSONDecoder
from codeact_kernel.providers.sse import ServerSentEvent, SSEDecoder

endings = st.sampled_from(["\n", "\r", "\r\n"])
cuts = st.lists(st.integers(min_value=0, max_value=10_000), max_size=40)
# Line content may hold anything but CR and LF, including U+2028 and multi-byte text.
# (Surrogates cannot be encoded as UTF-8, so no server can send them.)
line_text = st.text(st.characters(codec="utf-8", blacklist_characters="\r\n"), max_size=20)


def test_lines_across_crlf_split() -> None:
    decoder = LineDecoder()
    assert decoder.feed(b"one\r") == ["one"]
    assert decoder.feed(b"\ntwo\r") == ["two"]
    assert decoder.feed(b"\r") == [""]
    assert decoder.feed(b"three") == []
    assert decoder.close() == ["three"]


def test_lines_across_a_split_utf8_character() -> None:
    decoder = LineDecoder()
    data = "é€\n".encode()
    assert [decoder.feed(data[i : i + 1]) for i in range(len(data))][-1] == ["é€"]


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(line_text, max_size=15),
    eols=st.lists(endings, min_size=15, max_size=15),
    points=cuts,
)
def test_lines_never_lost_or_duplicated(
    lines: list[str], eols: list[str], points: list[int]
) -> None:
    text = ""
    for line, eol in zip(lines, eols, strict=False):
        if text.endswith("\r") and not line and eol == "\n":
            # CR then an empty LF-ended line is a CRLF: one line ending, not two.
            eol = "\r"
        text += line + eol
    data = text.encode()
    decoder = LineDecoder()
    got = [line for part in split(data, points) for line in decoder.feed(part)]
    assert got + decoder.close() == lines


def test_sse_fields_comments_and_multiline_data() -> None:
    decoder = SSEDecoder()
    stream = (
        b"\xef\xbb\xbf: hello\n"
        b'event: content_block_delta\nid: 7\ndata: {"a":\ndata:  1}\n\n'
        b"retry: 100\n\n"
        b"data\n\n"
        b": keep-alive\n\n"
        b"data: tail"
    )
    assert decoder.feed(stream) == [
        ServerSentEvent('{"a":\n 1}', "content_block_delta", "7"),
        ServerSentEvent("", "message", "7"),
    ]
    assert decoder.close() == [ServerSentEvent("tail", "message", "7")]


# What model APIs send as data (JSON) never starts with markup: a data line that does
# is a proxy's page (test_sse_lines_after_a_foreign_line_are_foreign).
data_text = line_text.filter(lambda text: not text.lstrip().startswith("<"))
events = st.lists(
    st.tuples(st.sampled_from(["", "delta", "ping"]), st.lists(data_text, min_size=1, max_size=3)),
    max_size=10,
)


@settings(max_examples=300, deadline=None)
@given(events=events, eol=endings, comments=st.booleans(), points=cuts)
def test_sse_any_chunking(
    events: list[tuple[str, list[str]]], eol: str, comments: bool, points: list[int]
) -> None:
    text = ""
    for name, data in events:
        if comments:
            text += ": keep-alive" + eol + eol
        if name:
            text += f"event: {name}{eol}"
        text += "".join(f"data: {line}{eol}" for line in data) + eol
    decoder = SSEDecoder()
    got = [e for part in split(text.encode(), points) for e in decoder.feed(part)]
    got += decoder.close()
    assert [(e.event, e.data) for e in got] == [
        (name or "message", "\n".join(data)) for name, data in events
    ]


@pytest.mark.parametrize(
    "foreign",
    [
        "<html><body><h1>504 Gateway Timeout</h1></body></html>",
        "data: <html><body>502</body></html>",
        "  <!DOCTYPE html>",
        "upstream request timeout",
        "upstream connect error or disconnect/reset before headers. reset reason: overflow",
    ],
)
def test_sse_lines_after_a_foreign_line_are_foreign(foreign: str) -> None:
    decoder = SSEDecoder()
    stream = f"data: one\n\ndata: two\n{foreign}\ndata: three\n\n"
    assert decoder.feed(stream.encode()) == [ServerSentEvent("one")]
    assert decoder.close() == []
    assert decoder.foreign == [foreign, "data: three", ""]


def test_ndjson_lines_after_markup_are_foreign() -> None:
    decoder = NDJSONDecoder()
    assert decoder.feed(b'{"a": 1}\n<html>\n{"b": 2}\n') == [{"a": 1}]
    assert decoder.close() == []
    assert decoder.foreign == ["<html>", '{"b": 2}']


encodable = st.characters(codec="utf-8")
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(encodable, max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(encodable, max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    objects=st.lists(
        st.dictionaries(st.text(encodable, max_size=5), json_values, max_size=4), max_size=10
    ),
    eol=endings,
    blank=st.booleans(),
    points=cuts,
)
def test_ndjson_any_chunking(
    objects: list[dict[str, object]], eol: str, blank: bool, points: list[int]
) -> None:
    text = "".join(
        json.dumps(o, ensure_ascii=False) + eol + (eol if blank else "") for o in objects
    )
    decoder = NDJSONDecoder()
    got = [o for part in split(text.encode(), points) for o in decoder.feed(part)]
    assert got + decoder.close() == objects


def test_ndjson_last_line_without_newline_and_bad_lines() -> None:
    decoder = NDJSONDecoder()
    assert decoder.feed(b'{"a": 1}\n{"b"') == [{"a": 1}]
    assert decoder.feed(b": 2}") == []
    assert decoder.close() == [{"b": 2}]
    with pytest.raises(MalformedLine, match="not JSON"):
        NDJSONDecoder().feed(b"{torn\n")
    with pytest.raises(MalformedLine, match="not a JSON object"):
        NDJSONDecoder().feed(b"[1]\n")
