"""What the agent produces: observations, step records and the events frontends render.

The agent yields these dataclasses and knows nothing of how they are shown; the
kernel, the magic, the lab extension's comm and the terminal each render them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import CodeActError


@dataclass(frozen=True)
class Usage:
    """Tokens of one model call; `estimated` when the server reported none."""

    input_tokens: int = 0
    output_tokens: int = 0
    estimated: bool = False

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.estimated or other.estimated,
        )

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class Observation:
    """The outcome of one code action, as the model will read it.

    `text` is already cut to the configured size; `outputs` are the nbformat outputs
    the user saw, kept for frontends that rebuild cells and for exports.
    """

    text: str
    ok: bool
    error_name: str | None = None
    execution_count: int | None = None
    images: tuple[str, ...] = ()
    outputs: tuple[dict[str, Any], ...] = ()
    timed_out: bool = False
    interrupted: bool = False


@dataclass
class Step:
    """One generate → parse → execute round of the loop."""

    number: int
    model_text: str = ""
    code: str | None = None
    observation: Observation | None = None
    usage: Usage = field(default_factory=Usage)
    error: str | None = None
    skipped: bool = False
    truncated: bool = False
    """The answer did not end normally (see `stop_reason`): nothing of it ran."""
    stop_reason: str = "length"
    """Why a `truncated` answer stopped: a `providers.base.Truncated.reason`."""
    interrupted: bool = False
    """The user interrupted the request during this step; `model_text` is what they saw."""


@dataclass
class Turn:
    """One user request and the steps that answered it: the unit of conversation memory."""

    request: str
    steps: list[Step] = field(default_factory=list)
    user_cells: tuple[str, ...] = ()
    final: str | None = None
    error: str | None = None
    failure: CodeActError | None = field(default=None, repr=False)

    def fail(self, error: CodeActError) -> None:
        """End the turn with `error`, which the user must see."""
        self.failure = error
        self.error = str(error)

    @property
    def succeeded(self) -> bool:
        return self.final is not None

    @property
    def usage(self) -> Usage:
        return sum((step.usage for step in self.steps), Usage())

    @property
    def actions(self) -> int:
        """The actions taken (run or skipped): what a footer counts as steps. The final
        answer is not one, nor an answer cut off before its code could run."""
        return sum(1 for step in self.steps if step.observation is not None)


# --- events -----------------------------------------------------------------------


@dataclass(frozen=True)
class RequestStarted:
    request: str
    model: str


@dataclass(frozen=True)
class StepStarted:
    step: int


@dataclass(frozen=True)
class ModelText:
    """A delta of the model's streamed answer."""

    step: int
    text: str


@dataclass(frozen=True)
class Progress:
    """A line of status while the model is silent (retries, rate limits)."""

    step: int
    message: str


def stop_cause(reason: str) -> str:
    """Why an answer stopped before it ended, in words, for a `Truncated.reason`."""
    causes = {
        "length": "it reached the output limit",
        "content_filter": "the provider's content filter stopped it",
        "refusal": "the model refused to go on",
        "pause": "the server paused it",
    }
    return causes.get(reason, f"the server stopped it, saying {reason!r}")


def goes_on(reason: str) -> bool:
    """Whether the model is asked to go on after an answer that stopped for `reason`
    without code: past the output limit or a pause it can; a filtered or refused
    answer is the answer."""
    return reason in ("length", "pause")


@dataclass(frozen=True)
class AnswerTruncated:
    """The answer did not end normally (`reason`, a `Truncated.reason`): nothing of it
    runs; the model is told, or, for prose that cannot go on, it is the answer."""

    step: int
    limit: int | None
    had_code: bool
    reason: str = "length"

    @property
    def message(self) -> str:
        if self.reason == "length":
            limit = f" ({self.limit:,} tokens)" if self.limit else ""
            if self.had_code:
                return (
                    f"The answer was cut off at the output limit{limit}, so its code was not "
                    "run; the model is asked for a complete, shorter action."
                )
            return (
                f"The answer was cut off at the output limit{limit}; the model is asked to go on."
            )
        cause = stop_cause(self.reason)
        if self.had_code:
            return (
                f"The answer stopped before it ended ({cause}), so its code was not run; "
                "the model is told and asked for another answer."
            )
        if goes_on(self.reason):
            return f"The answer stopped before it ended ({cause}); the model is asked to go on."
        return f"The answer stopped before it ended ({cause}), so it may be incomplete."


@dataclass(frozen=True)
class ActionsDropped:
    """The model wrote more actions after its first: only the first runs.

    `answer` is the answer as kept (up to the end of its first action), for frontends
    that show the kept answer in place of what streamed.
    """

    step: int
    answer: str
    dropped: str

    @property
    def message(self) -> str:
        return (
            f"Only the first action runs: the {len(self.dropped):,} characters the model "
            "wrote after it (more code) were dropped and not run."
        )


@dataclass(frozen=True)
class Interrupted:
    """The user interrupted the request; frontends show whatever they still held back."""

    step: int


@dataclass(frozen=True)
class CodeAction:
    """An action the model proposed, announced before it runs."""

    step: int
    code: str


@dataclass(frozen=True)
class ActionSkipped:
    """The user declined an action in approval mode.

    `answer` and `observed` are the step as the model sees it in the conversation (its
    answer, then what it was told), redacted: what a notebook keeps as the trajectory.
    """

    step: int
    code: str
    answer: str = ""
    observed: str = ""


@dataclass(frozen=True)
class ActionObserved:
    """An action ran; its outputs already reached the user live.

    `answer` and `observed`: the step as the model sees it (see `ActionSkipped`).
    """

    step: int
    code: str
    observation: Observation
    answer: str = ""
    observed: str = ""


@dataclass(frozen=True)
class UsageReport:
    """Tokens of the latest model call and of the request so far."""

    step: int
    call: Usage
    request: Usage


@dataclass(frozen=True)
class Finished:
    """The model answered without code: the request is done. `steps` counts the actions
    taken before (`Turn.actions`), not the answer itself."""

    answer: str
    steps: int
    usage: Usage
    seconds: float


@dataclass(frozen=True)
class Failed:
    """The request ended in an error the user must see; `steps` as for `Finished`."""

    error: CodeActError
    steps: int
    usage: Usage
    seconds: float


@dataclass(frozen=True)
class RequestRecorded:
    """The request's trajectory record (schema in trajectory.py), redacted; the last
    event of every request, however it ended, so frontends can keep it."""

    record: dict[str, Any]


Event = (
    RequestStarted
    | StepStarted
    | ModelText
    | Progress
    | AnswerTruncated
    | ActionsDropped
    | Interrupted
    | CodeAction
    | ActionSkipped
    | ActionObserved
    | UsageReport
    | Finished
    | Failed
    | RequestRecorded
)
