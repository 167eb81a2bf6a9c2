"""What `%codeact` prints about a session: status, settings with provenance, transcript.

Plain text, so it reads the same in a notebook and in a terminal. The API key is never
shown, only where it came from; a password in a URL is masked.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence

from .actions import split_answer
from .events import Step, Turn
from .providers.base import Usage
from .settings import Settings

_URL_PASSWORD = re.compile(r"(://[^/@:\s]*):[^/@\s]*@")
_NO_LIMIT = ("step_timeout", "total_timeout")


def mask_url(url: str) -> str:
    """`url` with any password in its user-info replaced by `***`."""
    return _URL_PASSWORD.sub(r"\1:***@", url)


def key_text(settings: Settings) -> str:
    if not settings.api_key:
        return "not set"
    return f"set (from {settings.api_key_source})" if settings.api_key_source else "set"


def tokens_text(usage: Usage) -> str:
    estimated = " (estimated)" if usage.estimated else ""
    return f"{usage.total:,}{estimated}: {usage.input_tokens:,} in, {usage.output_tokens:,} out"


def status_text(
    settings: Settings,
    *,
    endpoint: str | None,
    requests: int,
    remembered: int,
    usage: Usage,
) -> str:
    """`%codeact`: which model, where, and how much of it this session used."""
    if settings.model:
        model = f"{settings.model} ({settings.sources.get('model', 'default')})"
    else:
        model = "not set: set CODEACT_MODEL, or run %codeact model PROVIDER:MODEL"
    rows = [
        ("model", model),
        ("endpoint", mask_url(endpoint) if endpoint else "-"),
        ("api key", key_text(settings)),
        ("requests", f"{requests} ({remembered} remembered in the conversation)"),
        ("tokens", tokens_text(usage)),
        (
            "budgets",
            f"max_steps {settings.max_steps}, max_retries {settings.max_retries}, "
            f"approval {settings.approval}",
        ),
    ]
    lines = ["CodeAct session", *_table(rows, indent=2)]
    lines.append("`%codeact config` shows every setting, `%codeact help` the commands.")
    return "\n".join(lines)


def config_text(settings: Settings) -> str:
    """`%codeact config`: every effective setting and where it came from."""
    rows = [("setting", "value", "source")]
    for name, value in settings.public().items():
        rows.append((name, _value_text(name, value), settings.sources.get(name, "default")))
    rows.append(("api_key", key_text(settings), settings.sources.get("api_key", "default")))
    lines = _table(rows)
    lines.append(
        "Precedence: session (%codeact, cell options) > environment > config files > default."
    )
    return "\n".join(lines)


def history_text(turns: Sequence[Turn]) -> str:
    """`%codeact history`: every remembered request, its actions and their observations."""
    if not turns:
        return "No conversation yet (cells run with --no-history are not remembered)."
    parts: list[str] = []
    for number, turn in enumerate(turns, 1):
        parts.append(f"=== Request {number}: {_first_line(turn.request)}")
        if "\n" in turn.request.strip():
            parts.append(_indent(turn.request.strip(), 4))
        for step in turn.steps:
            parts.extend(_step_lines(step))
        if turn.final is not None:
            parts.append("  Done.")
        elif turn.error:
            parts.append(f"  Ended: {turn.error}")
    return "\n".join(parts)


def _step_lines(step: Step) -> list[str]:
    lines = [f"  --- step {step.number}"]
    narrative = split_answer(step.model_text)[0].strip() if step.model_text else ""
    if narrative:
        lines += ["    model:", _indent(narrative, 6)]
    if step.code is not None:
        lines += [f"    action ({_action_status(step)}):", _indent(step.code, 6)]
    if step.observation is not None and not step.skipped:
        lines += ["    observation:", _indent(step.observation.text, 6)]
    if step.error:
        lines.append(f"    error: {step.error}")
    return lines


def _action_status(step: Step) -> str:
    observation = step.observation
    if step.skipped:
        return "skipped by the user"
    if observation is None:
        return "not run"
    if observation.timed_out:
        return "stopped by step_timeout"
    if observation.interrupted:
        return "interrupted"
    return "ok" if observation.ok else f"failed: {observation.error_name}"


def _value_text(name: str, value: object) -> str:
    if name == "base_url":
        return mask_url(str(value)) if value else "(provider default)"
    if name in _NO_LIMIT and not value:
        return "0 (no limit)"
    if value == "":
        return "(not set)"
    return str(value)


def _table(rows: Sequence[tuple[str, ...]], indent: int = 0) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        " " * indent
        + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        + "  "
        + row[-1]
        for row in rows
    ]


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= 80 else line[:77] + "..."


def _indent(text: str, spaces: int) -> str:
    return textwrap.indent(text.rstrip("\n"), " " * spaces, lambda _: True)
