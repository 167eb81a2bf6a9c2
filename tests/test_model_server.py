"""The scripted model server really serves what it is scripted to, over real HTTP."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import pytest
from model_server import ScriptedModelServer, cut, error, error_event, hang, text


def sse_data(body: str) -> list[Any]:
    """The `data:` payloads of an event stream (JSON-decoded where possible)."""
    out: list[Any] = []
    for line in body.splitlines():
        if line.startswith("data: "):
            data = line.removeprefix("data: ")
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def in_background(
    server: ScriptedModelServer, **body: Any
) -> tuple[threading.Thread, list[Exception]]:
    """Send a chat request from another thread; its HTTP error lands in the list."""
    failures: list[Exception] = []

    def send() -> None:
        try:
            chat(server, **body)
        except httpx.HTTPError as exc:
            failures.append(exc)

    thread = threading.Thread(target=send)
    thread.start()
    return thread, failures


def chat(server: ScriptedModelServer, **body: Any) -> httpx.Response:
    return httpx.post(f"{server.url}/chat/completions", json={"model": "m", **body}, timeout=10)


def test_text_streams_in_chunks_with_usage(model_server: ScriptedModelServer) -> None:
    model_server.script(text("Hello, world", chunk_size=5, usage=(3, 4)))
    response = chat(model_server, stream=True, stream_options={"include_usage": True})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    data = sse_data(response.text)
    contents = [d["choices"][0]["delta"].get("content") for d in data[:-2] if d["choices"]]
    assert contents == ["", "Hello", ", wor", "ld", None]
    assert data[-2]["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    assert data[-1] == "[DONE]"


def test_usage_only_when_asked_for(model_server: ScriptedModelServer) -> None:
    model_server.script(text("hi"), text("hi", usage=None))
    assert not any("usage" in d for d in sse_data(chat(model_server, stream=True).text)[:-1])
    asked = chat(model_server, stream=True, stream_options={"include_usage": True})
    assert not any("usage" in d for d in sse_data(asked.text)[:-1])


def test_delay_between_chunks(model_server: ScriptedModelServer) -> None:
    model_server.script(text("abcdef", chunk_size=2, delay=0.1))
    started = time.monotonic()
    chat(model_server, stream=True)
    assert time.monotonic() - started >= 0.2


def test_non_streaming_request_gets_json(model_server: ScriptedModelServer) -> None:
    model_server.script(text("whole answer"))
    payload = chat(model_server).json()
    assert payload["choices"][0]["message"]["content"] == "whole answer"
    assert payload["usage"]["prompt_tokens"] == 10


def test_stop_sequences_cut_the_text(model_server: ScriptedModelServer) -> None:
    model_server.script(text("code</execute>\nObservation: x"))
    payload = chat(model_server, stop=["Observation:", "</execute>"]).json()
    assert payload["choices"][0]["message"]["content"] == "code"


def test_errors_with_headers(model_server: ScriptedModelServer) -> None:
    model_server.script(error(429, "slow down", headers={"retry-after": "3"}))
    response = chat(model_server, stream=True)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert response.json() == {
        "error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}
    }


def test_exhausted_script_answers_500(model_server: ScriptedModelServer) -> None:
    response = chat(model_server, stream=True)
    assert response.status_code == 500
    assert response.json()["error"]["message"] == "model_server: script exhausted"


def test_cut_drops_the_connection(model_server: ScriptedModelServer) -> None:
    model_server.script(cut("partial answer"))
    received: list[bytes] = []
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream("POST", f"{model_server.url}/chat/completions", json={"stream": True}) as r,
    ):
        received.extend(r.iter_bytes())
    assert b"partial " in b"".join(received)
    assert b"[DONE]" not in b"".join(received)


def test_error_event_then_end(model_server: ScriptedModelServer) -> None:
    model_server.script(error_event("so far", "boom"))
    data = sse_data(chat(model_server, stream=True).text)
    assert data[-1] == {"error": {"message": "boom", "type": "server_error"}}


def test_hang_sends_nothing_then_closes(model_server: ScriptedModelServer) -> None:
    model_server.script(hang(0.3))
    started = time.monotonic()
    with pytest.raises(httpx.RemoteProtocolError):
        chat(model_server, stream=True)
    assert time.monotonic() - started >= 0.3


def test_request_log_and_wait(model_server: ScriptedModelServer) -> None:
    model_server.script(hang(0.5))
    thread, failures = in_background(model_server, messages=[1])
    seen = model_server.wait_for_requests(1, timeout=5)
    assert seen[0]["path"] == "/v1/chat/completions"
    assert seen[0]["body"] == {"model": "m", "messages": [1]}
    assert seen[0]["headers"]["content-type"] == "application/json"
    thread.join(5)
    assert isinstance(failures[0], httpx.RemoteProtocolError)
    model_server.reset()
    assert model_server.requests == []


def test_stop_is_quick_despite_hanging_and_keepalive_handlers() -> None:
    server = ScriptedModelServer().start()
    server.script(hang(60))
    client = httpx.Client()
    client.get(f"{server.url}/models")  # leaves a keep-alive connection open
    thread, failures = in_background(server, stream=True)
    server.wait_for_requests(1)
    started = time.monotonic()
    server.stop()
    thread.join(5)
    client.close()
    assert time.monotonic() - started < 2
    assert not thread.is_alive()
    assert failures


def test_model_listings(model_server: ScriptedModelServer) -> None:
    model_server.models = ["a", "b:7b"]
    openai = httpx.get(f"{model_server.url}/models").json()
    assert [m["id"] for m in openai["data"]] == ["a", "b:7b"]
    anthropic = httpx.get(
        f"{model_server.root}/v1/models", headers={"anthropic-version": "2023-06-01"}
    ).json()
    assert [m["id"] for m in anthropic["data"]] == ["a", "b:7b"]
    assert anthropic["has_more"] is False
    ollama = httpx.get(f"{model_server.root}/api/tags").json()
    assert [m["name"] for m in ollama["models"]] == ["a", "b:7b"]


def test_anthropic_dialect(model_server: ScriptedModelServer) -> None:
    model_server.script(text("Hi there</execute>rest", chunk_size=4, usage=(12, 6)), error(529))
    response = httpx.post(
        f"{model_server.root}/v1/messages",
        json={"model": "claude", "stream": True, "stop_sequences": ["</execute>"]},
    )
    events = [line for line in response.text.splitlines() if line.startswith("event: ")]
    assert events[:2] == ["event: message_start", "event: content_block_start"]
    assert events[-3:] == [
        "event: content_block_stop",
        "event: message_delta",
        "event: message_stop",
    ]
    data = sse_data(response.text)
    deltas = [d["delta"]["text"] for d in data if d["type"] == "content_block_delta"]
    assert "".join(deltas) == "Hi there"
    assert data[0]["message"]["usage"]["input_tokens"] == 12
    assert data[-2]["usage"] == {"output_tokens": 6}
    assert data[-2]["delta"]["stop_reason"] == "stop_sequence"
    overloaded = httpx.post(f"{model_server.root}/v1/messages", json={"stream": True})
    assert overloaded.status_code == 529
    assert overloaded.json()["error"]["type"] == "overloaded_error"


def test_ollama_dialect(model_server: ScriptedModelServer) -> None:
    model_server.script(text("abcdef", chunk_size=4, usage=(8, 2)), error(404, "model not found"))
    response = httpx.post(f"{model_server.root}/api/chat", json={"model": "llama3"})
    assert response.headers["content-type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [line["message"]["content"] for line in lines] == ["abcd", "ef", ""]
    assert lines[-1]["done"] is True
    assert (lines[-1]["prompt_eval_count"], lines[-1]["eval_count"]) == (8, 2)
    missing = httpx.post(f"{model_server.root}/api/chat", json={"model": "nope"})
    assert missing.json() == {"error": "model not found"}
