"""A scripted model server on 127.0.0.1: real HTTP, real streaming, no model.

Tests script the replies, point a kernel (in this process or another) at `url`, and
read back what was asked in `requests`. One queue of replies serves three dialects,
chosen by the path the client calls:

- OpenAI chat completions   `POST /v1/chat/completions`, `GET /v1/models`   (SSE)
- Anthropic messages        `POST /v1/messages`, `GET /v1/models` with an
                            `anthropic-version` header                       (SSE)
- Ollama                    `POST /api/chat`, `GET /api/tags`                (NDJSON)

Every chat request, retries included, takes the next scripted reply; when none is
left the server answers 500 "model_server: script exhausted". Model listings are
answered at once, as a live server's are, whatever a chat request waits for. A
request's `stop` sequences cut the scripted text where the first one begins, as real
servers do.

Run it by hand with `python tests/model_server.py --reply "Hello"` (the reply is
served to every request).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

Kind = Literal["text", "error", "hang", "cut", "error_event", "raw"]
Dialect = Literal["openai", "anthropic", "ollama"]
# "stop" and "length" in each API's words; any other reason is sent as it is, in the
# dialect's own field (OpenAI's "content_filter", Anthropic's "refusal").
Finish = Literal["stop", "length"] | str


@dataclass(frozen=True)
class Reply:
    """One scripted response; build it with `text`, `error`, `hang`, `cut`, `error_event`
    or `raw`."""

    kind: Kind
    content: str = ""
    chunk_size: int = 8
    delay: float = 0.0
    usage: tuple[int, int] | None = (10, 5)
    status: int = 200
    message: str = ""
    code: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    finish: Finish = "stop"
    body: bytes = b""
    content_type: str = ""
    ignore_stop: bool = False


def text(
    content: str,
    *,
    chunk_size: int = 8,
    delay: float = 0.0,
    usage: tuple[int, int] | None = (10, 5),
    finish: Finish = "stop",
    wait: float = 0.0,
    ignore_stop: bool = False,
) -> Reply:
    """Stream `content` in pieces of `chunk_size` characters, `delay` seconds apart.

    `usage` is (input, output) tokens, reported at the end; None reports none.
    `finish="length"` ends as an answer cut at the output limit does (OpenAI
    `finish_reason: "length"`, Anthropic `stop_reason: "max_tokens"`, Ollama
    `done_reason: "length"`). `wait` sends nothing, headers included, for that many
    seconds first: a local server loading the model or reading a long prompt.
    `ignore_stop` streams all of `content` whatever stop sequences the request asks
    for, as some servers do. Requests with `stream: false` get the whole completion as
    one JSON document.
    """
    return Reply(
        "text",
        content,
        chunk_size=max(1, chunk_size),
        delay=delay,
        usage=usage,
        finish=finish,
        seconds=wait,
        ignore_stop=ignore_stop,
    )


def raw(body: str | bytes, *, status: int = 200, content_type: str = "application/json") -> Reply:
    """Answer `status` with `body` as it is: a JSON document instead of a stream, a
    proxy's HTML error page, plain text."""
    data = body.encode() if isinstance(body, str) else body
    return Reply("raw", status=status, body=data, content_type=content_type)


def error(
    status: int,
    message: str = "model_server: scripted error",
    *,
    headers: dict[str, str] | None = None,
    code: str | None = None,
) -> Reply:
    """Answer `status` with the dialect's JSON error body (and extra `headers`)."""
    return Reply("error", status=status, message=message, code=code, headers=headers or {})


def hang(seconds: float) -> Reply:
    """Read the request, send nothing for `seconds`, then close the connection."""
    return Reply("hang", seconds=seconds)


def cut(content: str, *, chunk_size: int = 8) -> Reply:
    """Stream `content`, then drop the connection without finishing the stream."""
    return Reply("cut", content, chunk_size=max(1, chunk_size))


def error_event(content: str, message: str = "model_server: error mid-stream") -> Reply:
    """Stream `content`, then an in-stream error (OpenAI `error` data, Anthropic
    `event: error`, Ollama `{"error": ...}`), then end the stream."""
    return Reply("error_event", content, message=message)


class ScriptedModelServer:
    """The server; a context manager, or call `start()` and `stop()`."""

    def __init__(
        self,
        models: Sequence[str] = ("test-model",),
        *,
        port: int = 0,
        default: Reply | None = None,
    ) -> None:
        self.models = list(models)
        self.requests: list[dict[str, Any]] = []
        self._port = port
        self._default = default
        self._queue: deque[Reply] = deque()
        self._lock = threading.Condition()
        self._closing = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def root(self) -> str:
        """`http://127.0.0.1:<port>`: the base for Anthropic and Ollama clients."""
        if self._httpd is None:
            raise RuntimeError("the model server is not running; call start() first")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>/v1`: the base URL for OpenAI-compatible clients."""
        return f"{self.root}/v1"

    def script(self, *replies: Reply) -> None:
        """Queue replies; each chat request takes the next one."""
        with self._lock:
            self._queue.extend(replies)

    def reset(self) -> None:
        """Forget queued replies and logged requests."""
        with self._lock:
            self._queue.clear()
            self.requests.clear()

    def wait_for_requests(self, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Block until `count` requests have arrived (for tests that act mid-request)."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self.requests) >= count, timeout):
                raise TimeoutError(f"{len(self.requests)} of {count} requests arrived")
            return list(self.requests)

    def start(self) -> ScriptedModelServer:
        self._closing.clear()
        self._httpd = _Server(("127.0.0.1", self._port), _Handler, self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="model-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, waking handlers that hang, stream slowly or idle on keep-alive."""
        if self._httpd is None:
            return
        self._closing.set()
        self._httpd.shutdown()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> ScriptedModelServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _next(self, request: dict[str, Any]) -> Reply | None:
        with self._lock:
            self.requests.append(request)
            self._lock.notify_all()
            if self._queue:
                return self._queue.popleft()
            return self._default


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(
        self, address: tuple[str, int], handler: type[_Handler], owner: ScriptedModelServer
    ) -> None:
        self.owner = owner
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Streamed pieces go out at once, as a real server's do; with Nagle's algorithm each
    # answer would wait ~40 ms for a delayed ACK and hide the kernel's own costs.
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.owner._lock:
            self.server.owner._sockets.add(self.connection)

    def finish(self) -> None:
        with self.server.owner._lock:
            self.server.owner._sockets.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log is in `requests`."""

    def do_GET(self) -> None:
        owner = self.server.owner
        path = self.path.split("?")[0].rstrip("/")
        if path == "/api/tags":
            models = [{"name": m, "model": m, "size": 0} for m in owner.models]
            self._json(200, {"models": models})
        elif path.endswith("/models") and "anthropic-version" in self.headers:
            data = [{"type": "model", "id": m, "display_name": m} for m in owner.models]
            self._json(200, {"data": data, "has_more": False})
        elif path.endswith("/models"):
            data = [{"id": m, "object": "model", "owned_by": "model_server"} for m in owner.models]
            self._json(200, {"object": "list", "data": data})
        else:
            self._json(404, {"error": {"message": f"model_server: no route {path}"}})

    def do_POST(self) -> None:
        path = self.path.split("?")[0].rstrip("/")
        dialect: Dialect | None = (
            "openai"
            if path.endswith("/chat/completions")
            else "anthropic"
            if path.endswith("/messages")
            else "ollama"
            if path == "/api/chat"
            else None
        )
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        request = {
            "path": path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body,
        }
        if dialect is None:
            self._json(404, {"error": {"message": f"model_server: no route {path}"}})
            return
        reply = self.server.owner._next(request)
        if reply is None:
            reply = error(500, "model_server: script exhausted")
        try:
            self._reply(dialect, reply, body if isinstance(body, dict) else {})
        except OSError:
            # The client went away (an interrupt, a timeout): nothing left to answer.
            self.close_connection = True

    def _reply(self, dialect: Dialect, reply: Reply, body: dict[str, Any]) -> None:
        closing = self.server.owner._closing
        if reply.kind == "hang":
            closing.wait(reply.seconds)
            self.close_connection = True
            return
        if reply.kind == "error":
            self._json(reply.status, _error_body(dialect, reply), reply.headers)
            return
        if reply.kind == "raw":
            self._send(reply.status, reply.body, reply.content_type)
            return
        if reply.kind == "text" and reply.seconds and closing.wait(reply.seconds):
            self.close_connection = True
            return
        stops = [] if reply.ignore_stop else _stop_list(dialect, body)
        content, stopped = _apply_stop(reply.content, stops)
        # Ollama streams unless told not to; the others only when asked.
        streaming = bool(body.get("stream", dialect == "ollama"))
        if not streaming and reply.kind == "text":
            self._json(200, _complete(dialect, content, stopped, reply, body))
            return
        render = _Render(dialect, str(body.get("model") or "test-model"), reply, body)
        self.send_response(200)
        self.send_header(
            "content-type", "application/x-ndjson" if dialect == "ollama" else "text/event-stream"
        )
        self.send_header("transfer-encoding", "chunked")
        self.send_header("cache-control", "no-cache")
        self.end_headers()
        self._chunk(render.opening())
        for index, piece in enumerate(_pieces(content, reply.chunk_size)):
            if index and reply.delay and closing.wait(reply.delay):
                self.close_connection = True
                return
            self._chunk(render.piece(piece))
        if reply.kind == "cut":
            self.close_connection = True
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if reply.kind == "error_event":
            self._chunk(render.failure(reply.message))
        else:
            self._chunk(render.closing(stopped))
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

    def _json(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json", headers)

    def _send(
        self,
        status: int,
        data: bytes,
        content_type: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()


class _Render:
    """The bytes of one streamed answer in one dialect."""

    def __init__(self, dialect: Dialect, model: str, reply: Reply, body: dict[str, Any]) -> None:
        self.dialect = dialect
        self.model = model
        self.reply = reply
        options = body.get("stream_options")
        self.include_usage = isinstance(options, dict) and bool(options.get("include_usage"))

    def opening(self) -> bytes:
        if self.dialect == "openai":
            return self._openai({"role": "assistant", "content": ""})
        if self.dialect == "anthropic":
            message: dict[str, Any] = {
                "id": "msg_model_server",
                "type": "message",
                "role": "assistant",
                "model": self.model,
                "content": [],
                "stop_reason": None,
            }
            if self.reply.usage is not None:
                message["usage"] = {"input_tokens": self.reply.usage[0], "output_tokens": 1}
            return _sse("message_start", {"type": "message_start", "message": message}) + _sse(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            )
        return b""

    def piece(self, piece: str) -> bytes:
        if self.dialect == "openai":
            return self._openai({"content": piece})
        if self.dialect == "anthropic":
            delta = {"type": "text_delta", "text": piece}
            return _sse(
                "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
            )
        return self._ollama(piece, done=False)

    def closing(self, stopped: str | None) -> bytes:
        usage = self.reply.usage
        length = self.reply.finish == "length"
        if self.dialect == "openai":
            data = self._openai({}, finish_reason=self.reply.finish)
            if usage is not None and self.include_usage:
                tokens = {
                    "prompt_tokens": usage[0],
                    "completion_tokens": usage[1],
                    "total_tokens": sum(usage),
                }
                data += _sse("", {"id": "chatcmpl-model-server", "choices": [], "usage": tokens})
            return data + b"data: [DONE]\n\n"
        if self.dialect == "anthropic":
            delta = {
                "stop_reason": _anthropic_stop(stopped, length, self.reply.finish),
                "stop_sequence": stopped,
            }
            message_delta: dict[str, Any] = {"type": "message_delta", "delta": delta}
            if usage is not None:
                message_delta["usage"] = {"output_tokens": usage[1]}
            return (
                _sse("content_block_stop", {"type": "content_block_stop", "index": 0})
                + _sse("message_delta", message_delta)
                + _sse("message_stop", {"type": "message_stop"})
            )
        return self._ollama("", done=True)

    def failure(self, message: str) -> bytes:
        if self.dialect == "openai":
            return _sse("", {"error": {"message": message, "type": "server_error"}})
        if self.dialect == "anthropic":
            error = {"type": "overloaded_error", "message": message}
            return _sse("error", {"type": "error", "error": error})
        return json.dumps({"error": message}).encode() + b"\n"

    def _openai(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        chunk = {
            "id": "chatcmpl-model-server",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self.model,
            "choices": [choice],
        }
        return _sse("", chunk)

    def _ollama(self, content: str, *, done: bool) -> bytes:
        line: dict[str, Any] = {
            "model": self.model,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "message": {"role": "assistant", "content": content},
            "done": done,
        }
        if done:
            line["done_reason"] = self.reply.finish
            if self.reply.usage is not None:
                line["prompt_eval_count"], line["eval_count"] = self.reply.usage
        return json.dumps(line).encode() + b"\n"


def _anthropic_stop(stopped: str | None, length: bool, finish: str = "stop") -> str:
    if length:
        return "max_tokens"
    if finish != "stop":
        return finish
    return "stop_sequence" if stopped else "end_turn"


def _sse(event: str, data: Any) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


def _pieces(content: str, size: int) -> Iterator[str]:
    for start in range(0, len(content), size):
        yield content[start : start + size]


def _stop_list(dialect: Dialect, body: dict[str, Any]) -> list[str]:
    if dialect == "anthropic":
        stop = body.get("stop_sequences")
    elif dialect == "ollama":
        options = body.get("options")
        stop = options.get("stop") if isinstance(options, dict) else None
    else:
        stop = body.get("stop")
    if isinstance(stop, str):
        return [stop]
    return [s for s in stop or [] if isinstance(s, str) and s]


def _apply_stop(content: str, stops: list[str]) -> tuple[str, str | None]:
    """The content up to the first stop sequence (which is dropped), and that sequence."""
    found = [(content.find(s), s) for s in stops if s in content]
    if not found:
        return content, None
    index, sequence = min(found)
    return content[:index], sequence


def _error_body(dialect: Dialect, reply: Reply) -> dict[str, Any]:
    if dialect == "ollama":
        return {"error": reply.message}
    if dialect == "anthropic":
        kind = _ANTHROPIC_TYPES.get(reply.status, "api_error")
        return {"type": "error", "error": {"type": reply.code or kind, "message": reply.message}}
    kind, code = _OPENAI_TYPES.get(reply.status, ("server_error", None))
    return {"error": {"message": reply.message, "type": kind, "code": reply.code or code}}


_OPENAI_TYPES: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}
_ANTHROPIC_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def _complete(
    dialect: Dialect, content: str, stopped: str | None, reply: Reply, body: dict[str, Any]
) -> dict[str, Any]:
    """A whole, unstreamed answer."""
    model = str(body.get("model") or "test-model")
    usage = reply.usage or (0, 0)
    if dialect == "anthropic":
        return {
            "id": "msg_model_server",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": content}],
            "stop_reason": _anthropic_stop(stopped, reply.finish == "length"),
            "stop_sequence": stopped,
            "usage": {"input_tokens": usage[0], "output_tokens": usage[1]},
        }
    if dialect == "ollama":
        return {
            "model": model,
            "message": {"role": "assistant", "content": content},
            "done": True,
            "done_reason": reply.finish,
            "prompt_eval_count": usage[0],
            "eval_count": usage[1],
        }
    return {
        "id": "chatcmpl-model-server",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": reply.finish,
            }
        ],
        "usage": {
            "prompt_tokens": usage[0],
            "completion_tokens": usage[1],
            "total_tokens": sum(usage),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve one scripted reply to every request.")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--reply", default="Hello from the model server.")
    parser.add_argument("--model", action="append", dest="models")
    args = parser.parse_args()
    server = ScriptedModelServer(
        args.models or ["test-model"], port=args.port, default=text(args.reply)
    )
    with server:
        print(f"OpenAI base URL {server.url}; Anthropic/Ollama {server.root}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
