"""The HTTP side every provider shares: timeouts, retries and turning failures into errors.

A provider builds its request and parses its own stream format; `stream_body` sends
the request (retrying while nothing has streamed yet), then yields the body's bytes
under the idle and total timeouts. Every failure leaves here as a `ProviderError`
whose message says what happened and what to check. The API key never does: it is
scrubbed from anything a server echoes back, and never formatted into a message.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncGenerator, Awaitable, Callable
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
from ..secrets import mask
from .base import Notice, ProviderConfig
from .retry import RetryPolicy, is_retryable, retry_after

_CONTEXT_WORDS = re.compile(
    r"context[ _-]?(length|window|size)|maximum context|prompt is too long|too many tokens"
    r"|input length exceeds|exceeds the (available |maximum )?context",
    re.IGNORECASE,
)
_MESSAGE_LIMIT = 500


@dataclass(frozen=True)
class Endpoint:
    """Who a provider talks to, as error messages should describe it."""

    label: str
    url: str
    config: ProviderConfig = field(repr=False)
    key_variables: tuple[str, ...] = ()
    unreachable_hint: str = "Check that the server is running and the base URL is right."
    missing_model_hint: str = ""
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
        """httpx's per-request timeouts; 0 in the settings means no limit."""
        connect = self.config.connect_timeout or None
        idle = self.config.idle_timeout or None
        return httpx.Timeout(connect=connect, read=idle, write=idle, pool=connect)


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
) -> AsyncGenerator[Notice | bytes, None]:
    """Send `request` and yield its body's bytes, or a `Notice` before each retry."""
    loop = asyncio.get_running_loop()
    total = endpoint.config.total_timeout or None
    deadline = loop.time() + total if total else None
    attempt = 0
    while True:
        try:
            response = await _within(client.send(request, stream=True), None, deadline)
        except (httpx.TransportError, asyncio.TimeoutError) as exc:
            error = _transport_error(exc, endpoint, deadline, started=False)
            headers = None
            # Past the total deadline another try cannot help.
            retryable = isinstance(exc, httpx.TransportError)
        else:
            if response.is_success:
                break
            error = await _status_error(response, endpoint)
            headers = response.headers
            retryable = is_retryable(response.status_code)
        delay = policy.delay(attempt, headers) if attempt < endpoint.config.max_retries else None
        if not retryable or delay is None:
            raise error
        if deadline is not None and loop.time() + delay >= deadline:
            raise error
        attempt += 1
        yield Notice(f"{_why(error)}, retrying in {_seconds(delay)} s")
        await policy.sleep(delay)

    try:
        _reject_web_page(response, endpoint)
        chunks = response.aiter_bytes()
        idle = endpoint.config.idle_timeout or None
        while True:
            try:
                chunk = await _within(anext(chunks), idle, deadline)
            except StopAsyncIteration:
                return
            if chunk:
                yield chunk
    except (httpx.RequestError, asyncio.TimeoutError) as exc:
        raise _transport_error(exc, endpoint, deadline, started=True) from exc
    finally:
        await response.aclose()


async def get_json(
    client: httpx.AsyncClient, url: str, endpoint: Endpoint, headers: dict[str, str]
) -> Any:
    """One GET of a JSON document (model listings), with errors mapped like `stream_body`'s."""
    try:
        response = await client.get(url, headers=headers, timeout=endpoint.timeout())
    except httpx.TransportError as exc:
        raise _transport_error(exc, endpoint, None, started=False) from exc
    if not response.is_success:
        raise await _status_error(response, endpoint, check_models=False)
    try:
        return response.json()
    except ValueError:
        raise ServerError(
            f"{endpoint.subject} answered {url} with something that is not JSON.",
            status=response.status_code,
        ) from None


def payload_error(payload: Any, endpoint: Endpoint) -> ProviderError:
    """The error for an error object the server sent inside a stream that had started."""
    message = endpoint.redact(error_message(payload) or "no message")
    if is_context_error(message, error_code(payload)):
        return ContextTooLong(_context_message(endpoint, message))
    return StreamError(
        f"{endpoint.subject} reported an error mid-answer: {message}. "
        "The answer above is incomplete."
    )


def malformed(endpoint: Endpoint, what: str) -> StreamError:
    """The error for a stream we cannot parse."""
    return StreamError(
        f"{endpoint.subject} sent a malformed stream ({endpoint.redact(what)[:200]}). "
        "The answer above is incomplete."
    )


def truncated(endpoint: Endpoint) -> StreamError:
    """The error for a stream that ended before the server said it was done."""
    return StreamError(
        f"The stream from {endpoint.where} ended before the answer was complete "
        "(the connection was closed early). The answer above is incomplete."
    )


def empty_answer(endpoint: Endpoint) -> StreamError:
    """The error for a completion without any text: never mistake it for an answer."""
    return StreamError(f"{endpoint.subject} sent an empty answer for {endpoint.config.model!r}.")


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


def is_context_error(message: str, code: str = "") -> bool:
    """Whether an error says the prompt does not fit the model's context window."""
    return code == "context_length_exceeded" or bool(_CONTEXT_WORDS.search(message))


async def _within(awaitable: Awaitable[Any], idle: float | None, deadline: float | None) -> Any:
    """Await with the tighter of the idle limit and what is left of the total."""
    limits = [idle] if idle is not None else []
    if deadline is not None:
        limits.append(max(0.0, deadline - asyncio.get_running_loop().time()))
    if not limits:
        return await awaitable
    return await asyncio.wait_for(awaitable, min(limits))


def _transport_error(
    exc: Exception, endpoint: Endpoint, deadline: float | None, *, started: bool
) -> ProviderError:
    config = endpoint.config
    incomplete = " The answer above is incomplete." if started else ""
    if isinstance(exc, asyncio.TimeoutError):
        if deadline is not None and asyncio.get_running_loop().time() >= deadline - 0.01:
            return ProviderTimeout(
                f"The call to {endpoint.where} took longer than total_timeout "
                f"({_seconds(config.total_timeout or 0)} s).{incomplete}"
            )
        return ProviderTimeout(
            f"The stream from {endpoint.where} stalled: no data for "
            f"{_seconds(config.idle_timeout)} s (idle_timeout).{incomplete}"
        )
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return ProviderTimeout(
            f"Connecting to {endpoint.where} took longer than "
            f"{_seconds(config.connect_timeout)} s (connect_timeout). {endpoint.unreachable_hint}"
        )
    if isinstance(exc, httpx.TimeoutException):
        return ProviderTimeout(
            f"{endpoint.subject} sent nothing for {_seconds(config.idle_timeout)} s "
            f"(idle_timeout).{incomplete}"
        )
    reason = endpoint.redact(str(exc) or type(exc).__name__)
    if started:
        return StreamError(
            f"The connection to {endpoint.where} broke mid-answer ({reason}).{incomplete}"
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
    response: httpx.Response, endpoint: Endpoint, *, check_models: bool = True
) -> ProviderError:
    status = response.status_code
    try:
        body = await response.aread()
    except httpx.HTTPError:
        body = b""
    finally:
        await response.aclose()
    try:
        payload: Any = json.loads(body)
    except ValueError:
        payload = body.decode("utf-8", "replace").strip()
    message = endpoint.redact(error_message(payload) or response.reason_phrase or "no message")
    if len(message) > _MESSAGE_LIMIT:
        message = message[:_MESSAGE_LIMIT] + "…"
    said = f"({status}: {message})"
    config = endpoint.config
    if status in (401, 403):
        return _auth_error(endpoint, status, said)
    if status == 413 or (400 <= status < 500 and is_context_error(message, error_code(payload))):
        return ContextTooLong(_context_message(endpoint, message), status=status)
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


def _reject_web_page(response: httpx.Response, endpoint: Endpoint) -> None:
    """A 200 HTML page means the base URL points at a website, not at the API."""
    if response.headers.get("content-type", "").startswith("text/html"):
        raise ServerError(
            f"{endpoint.subject} answered with a web page instead of an API response. "
            "Check the base URL (OpenAI-compatible servers usually end in /v1).",
            status=response.status_code,
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
    return f"{value:.1f}".removesuffix(".0")
