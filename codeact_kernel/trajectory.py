"""A request's trajectory record: what the model was shown and did, kept with the notebook.

The session builds one record at the end of every request, however it ended, and
hands it to the frontend as the last event (`RequestRecorded`); notebooks keep it in
the footer output's `metadata["codeact"]["trajectory"]` and, in Lab and headless, in
the prompt cell's `metadata.codeact.trajectory` (provenance.py). `export.py` turns
records into training data. The schema (version 1; docs/trajectory.md has it with
an example) is JSON:

    {
      "version": 1,
      "request_id": str,          # the request (the Lab comm's id when there is one)
      "request": str,             # the prompt, as sent
      "user_cells": [str],        # the user's cells shown with the request
      "system": str,              # the system prompt of the request's first model call
      "messages": [{"role": "user" | "assistant", "content": str}],
      "steps": [{"step": int, "answer": str, "code": str | null, "observed": str,
                 "status": "ok" | "error" | "interrupted" | "skipped" | "none"}],
      "final": str | null,        # the final answer; null when the request failed
      "status": "ok" | "error" | "interrupted",
      "error": {"ename": str, "evalue": str} | null,
      "model": str,               # provider:model
      "settings": {str: value},   # the settings that shape behaviour, never keys
      "usage": {"input_tokens": int, "output_tokens": int, "estimated": bool},
      "started": str,             # ISO-8601 UTC
      "seconds": float
    }

`messages` are this request's part of the conversation exactly as the model reads it
after the system prompt (context.py builds both): the user's cells and the request,
then per step the answer and a user message "Observation:\\n…", then the final answer
(or a bracketed note of why there is none). A step's `answer` and `observed` are the
same texts, one step at a time. Everything is redacted as it was for the model, so a
record holds no secret the model could not have seen either.

A step's `status`: `ok`/`error`/`interrupted` for an action that ran, `skipped` for one
the user declined, `error` for an answer that could not run (cut off at the output
limit, broken off), `interrupted` for one the user stopped while it streamed, and
`none` for a step without an action (the final answer).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .context import step_exchange, turn_messages
from .events import Step, Turn
from .secrets import Redactor, find_secrets
from .settings import Settings

SCHEMA_VERSION = 1

STATUSES = ("ok", "error", "interrupted")
STEP_STATUSES = ("ok", "error", "interrupted", "skipped", "none")
ROLES = ("user", "assistant")
ACTION_FORMATS = ("markdown", "execute")

# The settings that change what the model is asked or what it may do. Endpoints, keys
# and timeouts of the connection say nothing about the trajectory (and a URL can hold
# a password).
BEHAVIOUR_SETTINGS = (
    "action_format",
    "max_steps",
    "max_retries",
    "temperature",
    "max_tokens",
    "approval",
    "observation_chars",
    "step_timeout",
    "vision",
    "context_tokens",
)

INTERRUPTED = "KeyboardInterrupt"


class TrajectoryFormatError(ValueError):
    """A record that does not follow the schema (a hand-edited notebook, a newer version)."""


@dataclass(frozen=True)
class ChatMessage:
    role: str
    content: str


@dataclass(frozen=True)
class StepRecord:
    step: int
    answer: str
    code: str | None
    observed: str
    status: str

    @property
    def failed(self) -> bool:
        """An attempt that did not work: what `--drop-failed-steps` removes."""
        return self.status in ("error", "interrupted")


@dataclass(frozen=True)
class ErrorRecord:
    ename: str
    evalue: str


@dataclass(frozen=True)
class UsageRecord:
    input_tokens: int = 0
    output_tokens: int = 0
    estimated: bool = False


@dataclass(frozen=True)
class Trajectory:
    """One request's record (see the module docstring for the JSON form)."""

    request_id: str
    request: str
    system: str
    messages: tuple[ChatMessage, ...]
    steps: tuple[StepRecord, ...]
    status: str
    model: str
    started: str
    seconds: float
    user_cells: tuple[str, ...] = ()
    final: str | None = None
    error: ErrorRecord | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    usage: UsageRecord = field(default_factory=UsageRecord)
    version: int = SCHEMA_VERSION

    @property
    def succeeded(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "request_id": self.request_id,
            "request": self.request,
            "user_cells": list(self.user_cells),
            "system": self.system,
            "messages": [dataclasses.asdict(message) for message in self.messages],
            "steps": [dataclasses.asdict(step) for step in self.steps],
            "final": self.final,
            "status": self.status,
            "error": dataclasses.asdict(self.error) if self.error else None,
            "model": self.model,
            "settings": dict(self.settings),
            "usage": dataclasses.asdict(self.usage),
            "started": self.started,
            "seconds": self.seconds,
        }

    @classmethod
    def from_json(cls, data: object) -> Trajectory:
        """The record `data` holds; `TrajectoryFormatError` when it is not one."""
        record = _Reader(data, "record")
        version = record.integer("version")
        if version != SCHEMA_VERSION:
            raise TrajectoryFormatError(
                f"trajectory record version {version} is not supported (this is version "
                f"{SCHEMA_VERSION}): upgrade codeact-kernel to read it."
            )
        error = record.optional("error")
        usage = _Reader(record.get("usage"), "usage")
        settings = record.mapping("settings")
        # The export rewrites actions from this format: one it does not know is unreadable.
        if settings.get("action_format", "markdown") not in ACTION_FORMATS:
            raise TrajectoryFormatError(
                f"settings.action_format: {settings['action_format']!r} is not one of "
                f"{ACTION_FORMATS}"
            )
        return cls(
            version=version,
            request_id=record.text("request_id"),
            request=record.text("request"),
            user_cells=tuple(record.texts("user_cells")),
            system=record.text("system"),
            messages=tuple(_message(item) for item in record.items("messages")),
            steps=tuple(_step(item) for item in record.items("steps")),
            final=record.optional_text("final"),
            status=record.choice("status", STATUSES),
            error=None if error is None else _error(error),
            model=record.text("model"),
            settings=settings,
            usage=UsageRecord(
                usage.integer("input_tokens"),
                usage.integer("output_tokens"),
                usage.boolean("estimated"),
            ),
            started=record.text("started"),
            seconds=record.number("seconds"),
        )


# --- building a record ----------------------------------------------------------------


def record_turn(
    turn: Turn,
    *,
    request_id: str,
    system: str,
    model: str,
    settings: Settings,
    secrets: Collection[str] = (),
    started: datetime,
    seconds: float,
    error: BaseException | None = None,
) -> Trajectory:
    """The record of a request that ended, read from its turn.

    `secrets` are what the model calls were redacted with (the request's last set, a
    superset of the earlier ones); `error` an exception that ended the request outside
    the agent (a bug, not a failure the turn recorded).
    """
    clean = Redactor.of([*secrets, *find_secrets(())])
    last = len(turn.steps)
    steps = []
    for step in turn.steps:
        final = turn.final is not None and step.number == last
        answer, observed = step_exchange(step, secrets, final=final)
        code = None if step.code is None else clean(step.code)
        steps.append(StepRecord(step.number, answer, code, observed, step_status(step)))
    usage = turn.usage
    return Trajectory(
        request_id=request_id,
        request=clean(turn.request),
        user_cells=tuple(clean(cell) for cell in turn.user_cells),
        system=system,
        messages=tuple(
            ChatMessage(message.role, message.content) for message in turn_messages(turn, secrets)
        ),
        steps=tuple(steps),
        final=None if turn.final is None else clean(turn.final),
        status=_status(turn, error),
        error=_error_of(turn, error, clean),
        model=model,
        settings=behaviour_settings(settings),
        usage=UsageRecord(usage.input_tokens, usage.output_tokens, usage.estimated),
        started=started.astimezone(timezone.utc).isoformat(timespec="seconds"),
        seconds=round(seconds, 3),
    )


def step_status(step: Step) -> str:
    """The `status` of a step (see the module docstring)."""
    observation = step.observation
    if step.skipped:
        return "skipped"
    if observation is not None:
        if observation.interrupted:
            return "interrupted"
        return "ok" if observation.ok else "error"
    if step.interrupted:
        return "interrupted"
    if step.truncated or step.error is not None:
        return "error"
    return "none"


def behaviour_settings(settings: Settings) -> dict[str, Any]:
    public = settings.public()
    return {name: public[name] for name in BEHAVIOUR_SETTINGS if name in public}


def _status(turn: Turn, error: BaseException | None) -> str:
    if turn.final is not None:
        return "ok"
    if turn.failure is not None or error is not None:
        return "error"
    return "interrupted"


def _error_of(turn: Turn, error: BaseException | None, clean: Redactor) -> ErrorRecord | None:
    if turn.final is not None:
        return None
    failure = turn.failure or error
    if failure is not None:
        return ErrorRecord(type(failure).__name__, clean(str(failure)))
    return ErrorRecord(INTERRUPTED, clean(turn.error or "interrupted by the user"))


# --- reading a record -------------------------------------------------------------------


def _message(data: object) -> ChatMessage:
    reader = _Reader(data, "message")
    return ChatMessage(reader.choice("role", ROLES), reader.text("content"))


def _step(data: object) -> StepRecord:
    reader = _Reader(data, "step")
    return StepRecord(
        step=reader.integer("step"),
        answer=reader.text("answer"),
        code=reader.optional_text("code"),
        observed=reader.text("observed"),
        status=reader.choice("status", STEP_STATUSES),
    )


def _error(data: object) -> ErrorRecord:
    reader = _Reader(data, "error")
    return ErrorRecord(reader.text("ename"), reader.text("evalue"))


class _Reader:
    """Typed access to one JSON object of a record, with errors that name the field."""

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, Mapping):
            raise TrajectoryFormatError(f"{where}: expected an object, got {type(data).__name__}")
        self.data = data
        self.where = where

    def get(self, name: str) -> object:
        if name not in self.data:
            raise TrajectoryFormatError(f"{self.where}: missing field {name!r}")
        return self.data[name]

    def _typed(self, name: str, kinds: type | tuple[type, ...], what: str) -> Any:
        value = self.get(name)
        # bool is an int in Python, not in JSON.
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in _tuple(kinds)):
            raise TrajectoryFormatError(f"{self.where}.{name}: expected {what}")
        return value

    def text(self, name: str) -> str:
        return str(self._typed(name, str, "a string"))

    def optional_text(self, name: str) -> str | None:
        return None if self.get(name) is None else self.text(name)

    def integer(self, name: str) -> int:
        return int(self._typed(name, int, "an integer"))

    def number(self, name: str) -> float:
        return float(self._typed(name, (int, float), "a number"))

    def boolean(self, name: str) -> bool:
        return bool(self._typed(name, bool, "true or false"))

    def choice(self, name: str, allowed: Sequence[str]) -> str:
        value = self.text(name)
        if value not in allowed:
            raise TrajectoryFormatError(f"{self.where}.{name}: {value!r} is not one of {allowed}")
        return value

    def mapping(self, name: str) -> dict[str, Any]:
        return dict(self._typed(name, Mapping, "an object"))

    def optional(self, name: str) -> object:
        return self.data.get(name)

    def items(self, name: str) -> list[object]:
        return list(self._typed(name, list, "a list"))

    def texts(self, name: str) -> list[str]:
        values = self.items(name)
        if not all(isinstance(value, str) for value in values):
            raise TrajectoryFormatError(f"{self.where}.{name}: expected a list of strings")
        return [str(value) for value in values]


def _tuple(kinds: type | tuple[type, ...]) -> tuple[type, ...]:
    return kinds if isinstance(kinds, tuple) else (kinds,)
