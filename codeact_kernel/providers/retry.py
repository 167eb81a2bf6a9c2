"""When and how long to wait before retrying a model request that has not started streaming.

Only failures before the first byte of the answer are retried: once text has been
shown, repeating the request would show it twice. Retried: connection errors,
timeouts, 408, 409, 429 and 5xx (including Anthropic's 529 "overloaded").
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

import httpx


def is_retryable(status: int) -> bool:
    """Whether an HTTP error status is worth another attempt."""
    return status in (408, 409, 429) or status >= 500


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, deferring to the server's `retry-after`.

    A server that asks for a longer wait than `max_retry_after` is not retried at
    all: sitting silently in a notebook cell for minutes is worse than a clear error.
    `sleep` and `random` are injectable so tests neither wait nor depend on chance.
    """

    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0
    jitter: float = 0.25
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, repr=False)
    random: Callable[[], float] = field(default=random.random, repr=False)

    def delay(self, attempt: int, headers: httpx.Headers | None = None) -> float | None:
        """Seconds to wait before retry number `attempt + 1`; None to give up instead."""
        asked = retry_after(headers) if headers is not None else None
        if asked is not None:
            return asked if asked <= self.max_retry_after else None
        backoff = min(self.max_delay, self.base_delay * 2**attempt)
        return backoff * (1 - self.jitter * self.random())


def retry_after(headers: httpx.Headers) -> float | None:
    """The wait the server asked for, in seconds, from `retry-after-ms` or `retry-after`."""
    if value := headers.get("retry-after-ms"):
        try:
            seconds = float(value) / 1000
        except ValueError:
            seconds = -1
        if seconds >= 0:
            return seconds
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
    return seconds if seconds >= 0 else None
