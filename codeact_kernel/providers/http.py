"""The HTTP side every provider shares: timeouts, retries and turning failures into errors.

A provider builds its request and parses its own stream format; `stream_body` sends
the request (retrying while nothing has streamed yet), checks that the reply is the
stream the provider reads, then yields the body's bytes. Every failure leaves here as
a `ProviderError` whose message says what happened and what to check. The API key
never does: it is scrubbed from anything a server echoes back, and never formatted
into a message.

Timeouts. A server that never answers should be reported within a minute, and one
that is merely slow to start should still be served: Ollama sends nothing, not even
headers, until it has loaded the model and read the whole prompt, which on a CPU can
take minutes. Silence alone cannot tell the two apart, so:

- `connect_timeout` bounds each attempt to connect; failed connections are retried
  (`max_retries` times, with backoff).
- A request the server has received is not sent again for being slow: a stuck server
  would only keep silent again, and a busy one would start its work over.
- After `idle_timeout` without the answer starting, the server is asked for its model
  list, and given `connect_timeout` to answer. One that answers is busy: it gets until
  `first_token_timeout` after the request was sent, and the user is told. One that
  does not is reported as stuck.
- Once the answer streams, `idle_timeout` of silence ends the call.
- `total_timeout` bounds the whole call, retries included.

With the defaults (connect 5 s, idle 30 s, 2 retries, backoff 0.5 s then 1 s) a server
that never answers is reported after at most 2 × 5 + 1.5 + 30 + 5 = 46.5 s: two
connections that time out, the backoff, then a third that connects, stays silent and
fails the check. One that is up but never starts to answer is reported after 120 s
(first_token_timeout), with a notice at 30 s: long enough for a local model to load,
short enough that a user would wait for it; a slower set-up raises it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..errors import (
    AuthenticationFailed,
    ConfigurationError,
    ConnectionFailed,
    ContextTooLong,
    ModelNotFound,
    ProviderError,
    ProviderTimeout,
    RateLimited,
    ServerError,
    StreamError,
)
from ..events import stop_cause
from ..secrets import mask
from .base import Notice, ProviderConfig
from .excerpts import (
    MESSAGE_LIMIT,
    TEXT_LIMIT,
    clip,
    error_code,
    error_message,
    excerpt,
    is_web_page,
    json_body,
    unstreamed_answer,
)
from .retry import RetryPolicy, is_retryable, retry_after

_CONTEXT_WORDS = re.compile(
    r"context[ _-]?(length|window|size)|maximum context|prompt is too long|too many tokens"
    r"|input length exceeds|exceeds the (available |maximum )?context",
    re.IGNORECASE,
)
# Enough of a body that is not the stream asked for to quote the gist of it.
_BODY_LIMIT = 32_768
# How much of a reply may be read to recognise the stream in its first line.
_SNIFF_LIMIT = 4096


@dataclass(frozen=True)
class Endpoint:
    """Who a provider talks to, as error messages should describe it."""

    label: str
    url: str
    config: ProviderConfig = field(repr=False)
    key_variables: tuple[str, ...] = ()
    unreachable_hint: str = "Check that the server is running and the base URL is right."
    missing_model_hint: str = ""
    #: What the base URL should look like, as " (…)" after "Check the base URL".
    base_url_hint: str = ""
    list_models: Callable[[], Awaitable[list[str]]] | None = field(default=None, repr=False)

    @property
    def where(self) -> str:
        """ "the OpenAI-compatible server at http://…", for the middle of a sentence."""
        return f"{self.label} at {self.url}"

    @property
    def subject(self) -> str:
        """`where`, capitalised to open a sentence."""
        return self.where[:1].upper() + self.where[1:]

    def redact(self, text: str) -> str:
        """`text` without the key, or anything shaped like one (a server may echo a key
        we did not send)."""
        return mask(text, [self.config.api_key] if self.config.api_key else [])

    def timeout(self) -> httpx.Timeout:
        """httpx's timeouts for a plain request (a listing); 0 in the settings means no limit."""
        connect = self.config.connect_timeout or None
        idle = self.config.idle_timeout or None
        return httpx.Timeout(connect=connect, read=idle, write=idle, pool=connect)

    def stream_timeout(self) -> httpx.Timeout:
        """httpx's timeouts for a streamed answer, whose reads `stream_body` times itself:
        the wait for the answer to start is not silence mid-answer."""
        connect = self.config.connect_timeout or None
        idle = self.config.idle_timeout or None
        return httpx.Timeout(connect=connect, read=None, write=idle, pool=connect)


@dataclass(frozen=True)
class StreamFormat:
    """The stream a provider reads, as `stream_body` recognises it in the reply."""

    #: "an event stream (text/event-stream)", for "answered … instead of <description>".
    description: str
    media_types: tuple[str, ...]
    #: Whether a reply whose first line (stripped) is this looks like the stream; the
    #: flag says whether its content type was one of `media_types`.
    recognise: Callable[[str, bool], bool]


def parse_url(url: str) -> httpx.URL:
    """`url` parsed, or a `ConfigurationError` that says it is not a usable base URL."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ConfigurationError(f"{url!r} is not a valid base URL ({exc}).") from None
    # httpx accepts (and percent-escapes) a space in the host, and any port number.
    bad_host = not parsed.host or "%" in parsed.host
    bad_port = parsed.port is not None and not 0 < parsed.port < 65536
    if parsed.scheme not in ("http", "https") or bad_host or bad_port:
        raise ConfigurationError(
            f"{url!r} is not a valid base URL: it should look like http://host:port/path."
        )
    return parsed


def check_key(config: ProviderConfig) -> None:
    """Refuse a key that cannot go into an HTTP header.

    httpx and h11 would fail on it with errors that quote the header value, the key.
    """
    key = config.api_key
    if key and not (key.isascii() and key.isprintable() and " " not in key):
        source = config.api_key_source or "the configured API key"
        raise ConfigurationError(
            f"The API key from {source} contains spaces, line breaks or non-ASCII characters; "
            "check that it was copied whole and alone."
        )


async def stream_body(
    client: httpx.AsyncClient,
    request: httpx.Request,
    endpoint: Endpoint,
    policy: RetryPolicy,
    *,
    expect: StreamFormat,
    shown: Callable[[], bool],
) -> AsyncGenerator[Notice | bytes, None]:
    """Send `request` and yield its body's bytes, or a `Notice` (a retry, a slow start).

    `expect` is the stream the caller reads: any other reply is an error that says what
    came instead. `shown` tells whether any of the answer has reached the user yet, so
    that an error says "the answer above is incomplete" only when there is one.
    """
    clock = _Clock.start(endpoint.config.total_timeout)
    attempt = 0
    while True:
        start = _Start(endpoint, clock)
        opening = asyncio.ensure_future(_open(client, request))
        try:
            while not await start.wait(opening):
                yield start.notice()
        except BaseException:
            await _abandon(opening)
            raise
        try:
            opened = opening.result()
        except httpx.TransportError as exc:
            error = _transport_error(exc, endpoint, clock, streaming=False, shown=False)
            headers = None
        else:
            if opened.response.is_success:
                break
            error = await _status_error(opened.response, endpoint, clock)
            headers = opened.response.headers
            if not is_retryable(opened.response.status_code):
                raise error
        delay = policy.delay(attempt, headers) if attempt < endpoint.config.max_retries else None
        if delay is None or not clock.allows(delay):
            raise error
        attempt += 1
        yield Notice(f"{_why(error)}, retrying in {_seconds(delay)} s")
        await policy.sleep(delay)

    response = opened.response
    try:
        head = await _recognised(opened, endpoint, expect, clock)
        if head:
            yield head
        idle = endpoint.config.idle_timeout or None
        while True:
            try:
                chunk = await clock.within(anext(opened.chunks), idle)
            except StopAsyncIteration:
                return
            if chunk:
                yield chunk
    except (httpx.RequestError, asyncio.TimeoutError) as exc:
        raise _transport_error(exc, endpoint, clock, streaming=True, shown=shown()) from exc
    finally:
        await response.aclose()


async def get_json(
    client: httpx.AsyncClient, url: str, endpoint: Endpoint, headers: dict[str, str]
) -> Any:
    """One GET of a JSON document (model listings), with errors mapped like `stream_body`'s."""
    try:
        response = await client.get(url, headers=headers, timeout=endpoint.timeout())
    except httpx.TransportError as exc:
        raise _transport_error(exc, endpoint, _Clock(None), streaming=False, shown=False) from exc
    if not response.is_success:
        raise await _status_error(response, endpoint, _Clock(None), check_models=False)
    payload = json_body(response.content)
    if payload is None:
        said = endpoint.redact(excerpt(response.content, _media_type(response)))
        quoted = f': "{said}"' if said else ""
        raise ServerError(
            f"{endpoint.subject} answered {url} with {_media_type(response) or 'a body'} that "
            f"is not JSON{quoted}. Check the base URL{endpoint.base_url_hint}.",
            status=response.status_code,
        )
    return payload


def payload_error(payload: Any, endpoint: Endpoint, *, shown: bool) -> ProviderError:
    """The error for an error object the server sent inside a stream that had started."""
    message = endpoint.redact(clip(error_message(payload) or "no message", MESSAGE_LIMIT))
    if is_context_error(message, error_code(payload)):
        return ContextTooLong(_context_message(endpoint, message))
    if shown:
        return StreamError(
            f"{endpoint.subject} reported an error mid-answer: {message.rstrip('.')}. "
            "The answer above is incomplete."
        )
    return StreamError(
        f"{endpoint.subject} reported an error before answering: {message.rstrip('.')}."
    )


def malformed(endpoint: Endpoint, what: str, *, shown: bool) -> StreamError:
    """The error for a stream we cannot parse."""
    return StreamError(
        f"{endpoint.subject} sent a malformed stream ({endpoint.redact(what)[:200]})."
        + _incomplete(shown)
    )


def truncated(endpoint: Endpoint, *, shown: bool) -> StreamError:
    """The error for a stream that ended before the server said it was done."""
    if not shown:
        return StreamError(
            f"The stream from {endpoint.where} ended before any answer arrived "
            "(the connection was closed early)."
        )
    return StreamError(
        f"The stream from {endpoint.where} ended before the answer was complete "
        "(the connection was closed early). The answer above is incomplete."
    )


def foreign_content(endpoint: Endpoint, content: bytes, *, shown: bool) -> StreamError:
    """The error for a stream that turned into something else part way: a proxy that gave
    up on the server (a timeout) sends its error page down the stream it was relaying."""
    content = _unframed(content)
    page = content.lstrip().startswith(b"<")
    said = endpoint.redact(excerpt(content, "text/html" if page else "text/plain"))
    quoted = f': "{said}"' if said else ""
    what = "a web page" if page else "text that is not part of the stream"
    return StreamError(
        f"The stream from {endpoint.where} broke off into {what}{quoted}."
        + _incomplete(shown)
        + " A proxy or gateway in between probably gave up on the server (a timeout?): "
        "check it and the server, then try again."
    )


def foreign_format(endpoint: Endpoint, first: str) -> StreamError:
    """The error for a stream with nothing this provider reads: another API's events."""
    said = endpoint.redact(clip(first, TEXT_LIMIT))
    return StreamError(
        f"{endpoint.subject} sent a stream without an answer in the format this provider "
        f'reads; it began "{said}". The server may speak another API: check the provider '
        f"in the model name (openai:, anthropic: or ollama:) and the base URL"
        f"{endpoint.base_url_hint}."
    )


def empty_answer(endpoint: Endpoint) -> StreamError:
    """The error for a completion without any text: never mistake it for an answer."""
    return StreamError(f"{endpoint.subject} sent an empty answer for {endpoint.config.model!r}.")


def stopped_before_text(endpoint: Endpoint, reason: str) -> StreamError:
    """The error for an answer the server stopped before any of its text, for a reason
    other than the output limit (`limit_before_text`): a content filter, a refusal."""
    return StreamError(
        f"{endpoint.subject} stopped the answer for {endpoint.config.model!r} before any "
        f"text ({stop_cause(reason)}). Rephrase the request, or try another model."
    )


def tool_call_answer(endpoint: Endpoint) -> StreamError:
    """The error for an answer that is a tool call with no text: CodeAct reads code from text."""
    return StreamError(
        f"{endpoint.subject} answered with a tool call and no text for "
        f"{endpoint.config.model!r}. CodeAct needs the code in the answer's text (a ```python "
        "block): use a model or server setting that answers in text."
    )


def limit_before_text(endpoint: Endpoint, limit: int | None) -> StreamError:
    """The error for an answer that hit the output limit before any of its text."""
    reached = f"the output limit ({limit} tokens, max_tokens)" if limit else "its output limit"
    return StreamError(
        f"{endpoint.subject} reached {reached} before writing any answer for "
        f"{endpoint.config.model!r}; reasoning models spend it on their hidden reasoning too. "
        "Raise max_tokens (CODEACT_MAX_TOKENS)."
    )


def is_context_error(message: str, code: str = "") -> bool:
    """Whether an error says the prompt does not fit the model's context window."""
    return code == "context_length_exceeded" or bool(_CONTEXT_WORDS.search(message))


# --- the wait for the answer to start --------------------------------------------------


@dataclass
class _Opened:
    """A reply whose headers have come, with the first bytes of a successful one's body."""

    response: httpx.Response
    chunks: AsyncIterator[bytes]
    #: Empty when the body ended before any byte, or was not read (an error status).
    first: bytes


async def _open(client: httpx.AsyncClient, request: httpx.Request) -> _Opened:
    """Send `request`; for a success, wait for the body's first bytes (the answer's start)."""
    response = await client.send(request, stream=True)
    chunks = response.aiter_bytes()
    first = b""
    if response.is_success:
        try:
            while not first:
                first = await anext(chunks)
        except StopAsyncIteration:
            pass
        except BaseException:
            await response.aclose()
            raise
    return _Opened(response, chunks, first)


async def _abandon(task: asyncio.Future[_Opened]) -> None:
    """Give up on an `_open`: stop it (it closes what it opened), or close what it got."""
    if not task.done():
        task.cancel()
        task.add_done_callback(_outcome_ignored)
    elif not task.cancelled() and task.exception() is None:
        await task.result().response.aclose()


def _outcome_ignored(task: asyncio.Future[Any]) -> None:
    # Retrieved, so that asyncio does not log an exception nobody wants any more.
    if not task.cancelled():
        task.exception()


@dataclass
class _Clock:
    """The time of one model call: `total_timeout` runs from its first try to its last byte."""

    deadline: float | None

    @classmethod
    def start(cls, total: float | None) -> _Clock:
        return cls(_now() + total if total else None)

    def expired(self) -> bool:
        return self.deadline is not None and _now() >= self.deadline - 0.01

    def allows(self, delay: float) -> bool:
        """Whether waiting `delay` seconds leaves time to try again."""
        return self.deadline is None or _now() + delay < self.deadline

    def left(self, until: float | None = None) -> float | None:
        """Seconds to `until` or to the deadline, whichever comes first; None: no limit."""
        ends = [end for end in (until, self.deadline) if end is not None]
        return max(0.0, min(ends) - _now()) if ends else None

    async def within(self, awaitable: Awaitable[Any], limit: float | None) -> Any:
        """Await with the tighter of `limit` and what is left of the total."""
        until = _now() + limit if limit is not None else None
        left = self.left(until)
        if left is None:
            return await awaitable
        return await asyncio.wait_for(awaitable, left)


class _Start:
    """The wait for an answer to start: silence, a check that the server is up, patience."""

    def __init__(self, endpoint: Endpoint, clock: _Clock) -> None:
        self._endpoint = endpoint
        self._clock = clock
        self._sent = _now()
        self._checked = False

    async def wait(self, task: asyncio.Future[Any]) -> bool:
        """True once `task` is done; False when the server, silent so far, turned out to be
        up (worth a notice, then wait again). Raises `ProviderTimeout` when waiting is over."""
        config = self._endpoint.config
        idle = config.idle_timeout or None
        first = config.first_token_timeout or None
        if not self._checked and idle is not None and (first is None or idle < first):
            if await self._until(task, self._sent + idle):
                return True
            alive = await self._alive()
            if task.done():
                return True
            if self._clock.expired():
                raise _total_error(self._endpoint, shown=False)
            if not alive:
                raise self._stuck()
            self._checked = True
            return False
        if await self._until(task, None if first is None else self._sent + first):
            return True
        up = " is up but" if self._checked else ""
        raise ProviderTimeout(
            f"{self._endpoint.subject}{up} had not started to answer after "
            f"{_seconds(first or 0)} s (first_token_timeout). Loading a model or reading a long "
            "prompt on a CPU can take that long: raise first_token_timeout "
            "(CODEACT_FIRST_TOKEN_TIMEOUT), or lower context_tokens for shorter prompts."
        )

    def notice(self) -> Notice:
        config = self._endpoint.config
        first = config.first_token_timeout
        patience = f" up to {_seconds(first)} s in all" if first else ""
        return Notice(
            f"no answer after {_seconds(config.idle_timeout)} s, but the server is up "
            f"(loading the model or reading the prompt?); waiting{patience}"
        )

    async def _until(self, task: asyncio.Future[Any], until: float | None) -> bool:
        """Whether `task` finished by `until`; raises at the total deadline."""
        done, _ = await asyncio.wait({task}, timeout=self._clock.left(until))
        if done:
            return True
        if self._clock.expired():
            raise _total_error(self._endpoint, shown=False)
        return False

    async def _alive(self) -> bool:
        """Whether the server answers a request for its model list in good time."""
        check = self._endpoint.list_models
        if check is None:
            return True
        try:
            await self._clock.within(check(), self._check_seconds())
        except (ProviderTimeout, ConnectionFailed, asyncio.TimeoutError):
            return False
        except ProviderError:
            pass  # an error status is an answer too
        return True

    def _check_seconds(self) -> float:
        config = self._endpoint.config
        return config.connect_timeout or config.idle_timeout

    def _stuck(self) -> ProviderTimeout:
        config = self._endpoint.config
        return ProviderTimeout(
            f"{self._endpoint.subject} took the request but sent nothing for "
            f"{_seconds(config.idle_timeout)} s (idle_timeout), and did not answer a request "
            f"for its model list within {_seconds(self._check_seconds())} s either: it seems "
            "stuck. Restart it, or check any proxy or tunnel in between."
        )


def _now() -> float:
    return asyncio.get_running_loop().time()


# --- what came instead of the stream ----------------------------------------------------


async def _recognised(
    opened: _Opened, endpoint: Endpoint, expect: StreamFormat, clock: _Clock
) -> bytes:
    """The body's first bytes, once its first line shows it is the stream `expect`ed.

    Raises the error that says what came instead (a web page, a JSON document, …).
    """
    media = _media_type(opened.response)
    head = opened.first
    ended = not head
    idle = endpoint.config.idle_timeout or None
    while (line := _first_line(head, ended)) is None:
        try:
            head += await clock.within(anext(opened.chunks), idle)
        except StopAsyncIteration:
            ended = True
    # An empty body ends a stream before it starts: say so, not "closed early".
    if (
        head.strip()
        and media != "text/html"
        and expect.recognise(line, media in expect.media_types)
    ):
        return head
    if not ended:
        head += await _read_some(opened.chunks, _BODY_LIMIT - len(head), idle, clock)
    raise _not_a_stream(opened.response, head, endpoint, expect)


def _first_line(head: bytes, ended: bool) -> str | None:
    """The first non-blank line of `head`; None while more bytes are needed to know it."""
    rest = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    for end, byte in enumerate(rest):
        if byte in b"\r\n":
            return rest[:end].decode("utf-8", "replace").strip()
    if ended or len(head) >= _SNIFF_LIMIT:
        return rest[:_SNIFF_LIMIT].decode("utf-8", "replace").strip()
    return None


def _unframed(body: bytes) -> bytes:
    """The data of a body framed as server-sent events (`data: <html>…`), else the body."""
    lines = body.removeprefix(b"\xef\xbb\xbf").lstrip().splitlines()
    if not lines or not lines[0].startswith(b"data:"):
        return body
    data = [line[5:].removeprefix(b" ") for line in lines if line.startswith(b"data:")]
    return b"\n".join(data)


def _other_stream(body: bytes, expect: StreamFormat) -> str:
    """What other streaming format the body is in ("" when none): another API's."""
    lines = body.removeprefix(b"\xef\xbb\xbf").lstrip().splitlines()
    events = "text/event-stream" in expect.media_types
    if not events and lines and lines[0].startswith((b"data:", b"event:", b":")):
        return "an event stream"
    objects = [line for line in lines if line.strip()]
    if events and len(objects) > 1 and all(line.lstrip().startswith(b"{") for line in objects):
        return "a stream of JSON lines"
    return ""


def _not_a_stream(
    response: httpx.Response, body: bytes, endpoint: Endpoint, expect: StreamFormat
) -> ProviderError:
    status = response.status_code
    media = _media_type(response) or "no content type"
    other = _other_stream(body, expect)
    # A page or a document wrapped in `data:` lines is still that page or document.
    body = _unframed(body)
    said = endpoint.redact(excerpt(body, media))
    payload = json_body(body)
    if payload is not None and is_context_error(said, error_code(payload)):
        return ContextTooLong(_context_message(endpoint, said), status=status)
    hint = endpoint.base_url_hint
    advice = (
        f"Check the base URL{hint}, any proxy in between, and that the server supports streaming."
    )
    if is_web_page(body, media):
        # A page under a stream's type is worth saying: the type alone misleads.
        honest = "html" in media or media == "no content type"
        what = f"a web page ({media})" if honest else f"a web page (sent as {media})"
        advice = f"Check the base URL{hint}: it leads to a website, not to the API."
    elif (answer := unstreamed_answer(payload)) is not None:
        what = f"a whole answer in one JSON document ({media})"
        said = endpoint.redact(clip(answer, TEXT_LIMIT))
        advice = (
            'The server ignored "stream": true: check that it supports streaming, and any '
            "proxy in between (some buffer replies)."
        )
    elif other:
        what = f"{other} ({media})"
        advice = (
            "The server may speak another API: check the provider in the model name (openai:, "
            f"anthropic: or ollama:) and the base URL{hint}."
        )
    else:
        what = f"an empty body ({media})" if not body.strip() else media
    quoted = f': "{said}"' if said else ""
    return ServerError(
        f"{endpoint.subject} answered HTTP {status} with {what} instead of "
        f"{expect.description}{quoted}. {advice}",
        status=status,
    )


async def _read_some(
    chunks: AsyncIterator[bytes], limit: int, idle: float | None, clock: _Clock
) -> bytes:
    """Up to `limit` more bytes of a body, as many as come within `idle`; never raises."""
    data = bytearray()

    async def collect() -> None:
        async for chunk in chunks:
            data.extend(chunk)
            if len(data) >= limit:
                return

    with contextlib.suppress(httpx.HTTPError, asyncio.TimeoutError):
        await clock.within(collect(), idle)
    return bytes(data[:limit])


def _media_type(response: httpx.Response) -> str:
    """The content type without its parameters, lower-cased ("" when there is none)."""
    return response.headers.get("content-type", "").partition(";")[0].strip().lower()


# --- errors -------------------------------------------------------------------------------


def _incomplete(shown: bool) -> str:
    return " The answer above is incomplete." if shown else ""


def _total_error(endpoint: Endpoint, *, shown: bool) -> ProviderTimeout:
    return ProviderTimeout(
        f"The call to {endpoint.where} took longer than total_timeout "
        f"({_seconds(endpoint.config.total_timeout or 0)} s)." + _incomplete(shown)
    )


def _transport_error(
    exc: Exception, endpoint: Endpoint, clock: _Clock, *, streaming: bool, shown: bool
) -> ProviderError:
    config = endpoint.config
    if isinstance(exc, asyncio.TimeoutError):
        if clock.expired():
            return _total_error(endpoint, shown=shown)
        return ProviderTimeout(
            f"The stream from {endpoint.where} stalled: no data for "
            f"{_seconds(config.idle_timeout)} s (idle_timeout)." + _incomplete(shown)
        )
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return ProviderTimeout(
            f"Connecting to {endpoint.where} took longer than "
            f"{_seconds(config.connect_timeout)} s (connect_timeout). {endpoint.unreachable_hint}"
        )
    if isinstance(exc, httpx.WriteTimeout):
        return ProviderTimeout(
            f"Sending the request to {endpoint.where} stalled for "
            f"{_seconds(config.idle_timeout)} s (idle_timeout). {endpoint.unreachable_hint}"
        )
    if isinstance(exc, httpx.TimeoutException):
        return ProviderTimeout(
            f"{endpoint.subject} sent nothing for {_seconds(config.idle_timeout)} s "
            "(idle_timeout)." + _incomplete(shown)
        )
    reason = endpoint.redact(str(exc) or type(exc).__name__)
    if streaming and shown:
        return StreamError(
            f"The connection to {endpoint.where} broke mid-answer ({reason})." + _incomplete(True)
        )
    if streaming:
        return StreamError(
            f"The connection to {endpoint.where} broke before the answer arrived ({reason})."
        )
    if isinstance(exc, httpx.ConnectError):
        return ConnectionFailed(
            f"Could not connect to {endpoint.where} ({reason}). {endpoint.unreachable_hint}"
        )
    return ConnectionFailed(
        f"{endpoint.subject} closed the connection without answering ({reason}). "
        f"{endpoint.unreachable_hint}"
    )


async def _status_error(
    response: httpx.Response, endpoint: Endpoint, clock: _Clock, *, check_models: bool = True
) -> ProviderError:
    status = response.status_code
    try:
        body = await _read_some(
            response.aiter_bytes(), _BODY_LIMIT, endpoint.config.idle_timeout or None, clock
        )
    finally:
        await response.aclose()
    media = _media_type(response)
    payload = json_body(body)
    message = endpoint.redact(excerpt(body, media)) or response.reason_phrase or "no message"
    said = f"({status}: {message})"
    config = endpoint.config
    if status in (401, 403):
        return _auth_error(endpoint, status, said)
    if status == 413 or (400 <= status < 500 and is_context_error(message, error_code(payload))):
        return ContextTooLong(_context_message(endpoint, message), status=status)
    if status != 429 and payload is None and is_web_page(body, media):
        return ServerError(_web_page_message(endpoint, status, media, message), status=status)
    if status == 404:
        advice = [await _available(endpoint)] if check_models else []
        if endpoint.missing_model_hint:
            advice.append(endpoint.missing_model_hint)
        return ModelNotFound(
            " ".join(
                [f"{endpoint.subject} does not know the model {config.model!r} {said}.", *advice]
            ),
            status=status,
        )
    if status == 429:
        asked = retry_after(response.headers)
        wait = f" It asks to wait {_seconds(asked)} s." if asked else ""
        return RateLimited(
            f"{endpoint.subject} is rate-limiting requests {said}.{wait} Wait a little and "
            "run the cell again, or check the plan's limits.",
            status=status,
        )
    return ServerError(f"{endpoint.subject} failed with HTTP {status}: {message}", status=status)


def _web_page_message(endpoint: Endpoint, status: int, media: str, text: str) -> str:
    """An error status that came as a web page: a proxy's or a web server's, not the API's."""
    if status in (502, 503, 504):
        advice = (
            "A proxy or gateway answered for the model server: check that the server behind "
            f"it is running, and the base URL{endpoint.base_url_hint}."
        )
    else:
        advice = (
            "The page came from a web server or proxy, not from the model API: check the base "
            f"URL{endpoint.base_url_hint} and any proxy in between."
        )
    return (
        f"{endpoint.subject} failed with HTTP {status} and a web page ({media or 'HTML'}) "
        f'instead of an API reply: "{text}". {advice}'
    )


def _auth_error(endpoint: Endpoint, status: int, said: str) -> AuthenticationFailed:
    config = endpoint.config
    if not config.api_key:
        wanted = " or ".join(endpoint.key_variables) or "CODEACT_API_KEY"
        return AuthenticationFailed(
            f"{endpoint.subject} wants an API key {said}. Set {wanted}.", status=status
        )
    source = config.api_key_source
    key = f"the API key from {source}" if source else "the configured API key"
    if status == 401:
        return AuthenticationFailed(
            f"{endpoint.subject} rejected {key} {said}. "
            f"Check that {source or 'it'} holds a valid key for this endpoint.",
            status=status,
        )
    return AuthenticationFailed(
        f"{endpoint.subject} refused access with {key} {said}. "
        f"Check that this key may use the model {config.model!r}.",
        status=status,
    )


async def _available(endpoint: Endpoint) -> str:
    """A hint listing the endpoint's models, when it will tell us."""
    fallback = "Check the model name and the base URL."
    if endpoint.list_models is None:
        return fallback
    try:
        models = await endpoint.list_models()
    except ProviderError:
        return fallback
    if not models:
        return "It lists no models. " + fallback
    shown = ", ".join(models[:20]) + (f" and {len(models) - 20} more" if len(models) > 20 else "")
    return f"Available models: {shown}."


def _context_message(endpoint: Endpoint, message: str) -> str:
    return (
        f"The request does not fit the context window of {endpoint.config.model!r} "
        f"at {endpoint.url}: {message}"
    )


def _why(error: ProviderError) -> str:
    if isinstance(error, RateLimited):
        return "rate-limited"
    if isinstance(error, ProviderTimeout):
        return "timed out"
    if isinstance(error, ConnectionFailed):
        return "could not connect"
    if error.status == 529:
        return "server overloaded"
    return f"server error {error.status}" if error.status else "request failed"


def _seconds(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")
