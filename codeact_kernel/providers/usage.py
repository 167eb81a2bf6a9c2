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
