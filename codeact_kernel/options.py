"""Options of a `%%codeact` line, shared by the kernel and the magic.

`--model`, `--max-steps`, `--approval ask|auto`, `--format markdown|execute` override
settings for one cell; `--no-history` runs it as a fresh conversation.
"""

from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigurationError

USAGE = (
    "usage: %%codeact [--model PROVIDER:MODEL] [--max-steps N] [--approval ask|auto] "
    "[--format markdown|execute] [--no-history]"
)


@dataclass(frozen=True)
class CellOptions:
    """Overrides for one natural-language cell."""

    overrides: dict[str, Any] = field(default_factory=dict)
    history: bool = True


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing and exiting."""

    def error(self, message: str) -> Any:
        raise ConfigurationError(f"{message}\n{USAGE}")


def _parser() -> _Parser:
    parser = _Parser(prog="%%codeact", add_help=False, allow_abbrev=False)
    parser.add_argument("--model")
    parser.add_argument("--max-steps", type=int, dest="max_steps")
    parser.add_argument("--approval", choices=("ask", "auto"))
    parser.add_argument("--format", choices=("markdown", "execute"), dest="action_format")
    parser.add_argument("--no-history", action="store_true", dest="no_history")
    return parser


def parse_cell_options(line: str) -> CellOptions:
    """Parse the text after `%%codeact`; raises `ConfigurationError` with the usage."""
    try:
        words = shlex.split(line)
    except ValueError as error:
        raise ConfigurationError(f"{error}\n{USAGE}") from None
    namespace = _parser().parse_args(words)
    overrides = {
        name: value
        for name, value in vars(namespace).items()
        if name != "no_history" and value is not None
    }
    if "max_steps" in overrides and overrides["max_steps"] < 1:
        raise ConfigurationError(f"--max-steps must be at least 1.\n{USAGE}")
    if "model" in overrides and ":" not in overrides["model"]:
        raise ConfigurationError(f"--model takes provider:model, e.g. openai:gpt-4o-mini.\n{USAGE}")
    return CellOptions(overrides=overrides, history=not namespace.no_history)
