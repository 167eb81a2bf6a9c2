"""The provider interface's shared values: the token estimate the context budget uses."""

from __future__ import annotations

import pytest

from codeact_kernel.providers.base import estimate_tokens


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", 0),
        ("a", 1),
        ("x" * 400, 100),
        # Chinese and Japanese take a token or more a character, not a quarter of one.
        ("画一个正弦曲线" * 10, 70),
        ("正弦" + "sine" * 10, 2 + 10),
        # Other non-ASCII letters are counted as a token each: the safe side.
        ("café" * 4, 3 + 4),
    ],
)
def test_the_estimate_counts_every_script_safely(text: str, tokens: int) -> None:
    assert estimate_tokens(text) == tokens
