"""Token usage for servers that report none."""

from __future__ import annotations

from collections.abc import Sequence

from .base import Message, Usage, estimate_tokens

# Chat templates wrap each message in role markers; a few tokens each is the usual cost.
_PER_MESSAGE = 4


def estimated_usage(messages: Sequence[Message], answer: str) -> Usage:
    """A `Usage` guessed from the text sent and received, marked as estimated."""
    prompt = sum(estimate_tokens(m.content) + _PER_MESSAGE for m in messages)
    return Usage(prompt, estimate_tokens(answer), estimated=True)


def token_count(value: object) -> int | None:
    """A token count from a server's usage record; None when absent or not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        count = int(value)
    except ValueError:
        return None
    return count if count >= 0 else None
