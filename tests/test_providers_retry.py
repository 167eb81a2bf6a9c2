"""The retry policy: which failures are retried and how long to wait."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest

from codeact_kernel.providers.retry import RetryPolicy, is_retryable, retry_after


@pytest.mark.parametrize(
    ("status", "retry"),
    [
        (400, False),
        (401, False),
        (404, False),
        (408, True),
        (409, True),
        (429, True),
        (500, True),
        (503, True),
        (529, True),
    ],
)
def test_retryable_statuses(status: int, retry: bool) -> None:
    assert is_retryable(status) is retry


def test_exponential_backoff_capped_with_jitter() -> None:
    steady = RetryPolicy(base_delay=0.5, max_delay=4, random=lambda: 0.0)
    assert [steady.delay(n) for n in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    jittered = RetryPolicy(base_delay=1, jitter=0.25, random=lambda: 1.0)
    assert jittered.delay(0) == 0.75


def test_server_asked_wait_wins_up_to_the_cap() -> None:
    policy = RetryPolicy(max_retry_after=30)
    assert policy.delay(0, httpx.Headers({"retry-after": "7"})) == 7
    assert policy.delay(0, httpx.Headers({"retry-after-ms": "250", "retry-after": "9"})) == 0.25
    assert policy.delay(0, httpx.Headers({"retry-after": "31"})) is None


@pytest.mark.timing
def test_retry_after_formats() -> None:
    assert retry_after(httpx.Headers({"retry-after": "1.5"})) == 1.5
    assert retry_after(httpx.Headers({"retry-after": "soon"})) is None
    assert retry_after(httpx.Headers({"retry-after-ms": "x", "retry-after": "2"})) == 2
    assert retry_after(httpx.Headers({"retry-after": "-3"})) is None
    assert retry_after(httpx.Headers()) is None
    later = datetime.now(timezone.utc) + timedelta(seconds=20)
    seconds = retry_after(httpx.Headers({"retry-after": format_datetime(later, usegmt=True)}))
    assert seconds is not None
    assert 15 < seconds <= 20
