"""One episode of json or text mode: a task, a model, one tool call a turn.

The loop, per turn: the model answers (generate); its answer is read for a call
(`actions.parse_action`); a call runs and its result, or what was wrong with it, goes
back as the next user message "Observation:\n…". An answer without a call that has an
`Answer:` line ends the episode, checked by `checker.check`. Code mode's episodes run in
a real kernel (`bench/code_mode.py`) and end in the same `Episode`.

An episode fails for one cause (`Cause`): its answer was wrong; it ran out of turns
(`turn_limit`), or ran out of them while its last answer held no usable call
(`invalid_action`: the model was stuck on the format, not on the task); or the endpoint
failed (`provider_error`: the providers retry first, per their request policy; the
model is never blamed for it).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..actions import stop_sequences
from ..errors import ProviderError
from ..events import Usage
from ..providers.base import Message, Model, TextDelta
from .actions import InvalidAction, Mode, ToolCall, parse_action, run_call
from .checker import check, extract_answer
from .instructions import system_prompt, task_text
from .tasks import Task, tool_functions

__all__ = ["Cause", "Episode", "run_tool_episode"]

Cause = Literal["wrong_answer", "turn_limit", "invalid_action", "provider_error"]

DEFAULT_MAX_TURNS = 10

_NO_ACTION = {
    "json": (
        "Invalid action: your answer has neither a tool call nor a final answer. Call one "
        'tool as JSON, {"name": "tool_name", "arguments": {…}}, or end with a line '
        "`Answer: …`."
    ),
    "text": (
        "Invalid action: your answer has neither a tool call nor a final answer. Call one "
        'tool on a line `Action: tool_name(parameter="value")`, or end with a line '
        "`Answer: …`."
    ),
}


@dataclass
class Episode:
    """What happened when one task ran in one mode: one line of `results.jsonl`."""

    task: str
    mode: str
    success: bool
    turns: int
    input_tokens: int
    output_tokens: int
    seconds: float
    error: Cause | None
    answer: str | None
    detail: str | None
    #: The conversation as a `codeact` export record: {"id", "conversations": [...]}.
    trajectory: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Episode:
        """An episode from `to_json`'s form; keys it does not know are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})


@dataclass
class _Run:
    """The state of one episode while it runs."""

    task: Task
    mode: Mode
    messages: list[Message]
    started: float = field(default_factory=time.monotonic)
    usage: Usage = field(default_factory=Usage)
    turns: int = 0

    def end(
        self,
        *,
        success: bool = False,
        error: Cause | None = None,
        answer: str | None = None,
        detail: str | None = None,
    ) -> Episode:
        conversation = [{"role": m.role, "content": m.content} for m in self.messages]
        return Episode(
            task=self.task.id,
            mode=self.mode,
            success=success,
            turns=self.turns,
            input_tokens=self.usage.input_tokens,
            output_tokens=self.usage.output_tokens,
            seconds=round(time.monotonic() - self.started, 3),
            error=error,
            answer=answer,
            detail=detail,
            trajectory={"id": f"{self.task.id}#{self.mode}", "conversations": conversation},
        )


async def run_tool_episode(
    task: Task,
    mode: Mode,
    model: Model,
    *,
    max_turns: int = DEFAULT_MAX_TURNS,
) -> Episode:
    """Run `task` in json or text mode against `model`, for at most `max_turns` answers.

    The model carries the sampling settings (the runner asks for temperature 0 in every
    mode), so they are the same as the code mode's kernel gets.
    """
    if task.suite != "tools":
        raise ValueError(f"{task.id} is a {task.suite} task: json and text modes run tools tasks")
    tools = tool_functions(task.toolsets)
    run = _Run(
        task,
        mode,
        [
            Message("system", system_prompt(mode, task.toolsets)),
            Message("user", task_text(task)),
        ],
    )
    last_valid = True
    while run.turns < max_turns:
        try:
            text = await _generate(model, run)
        except ProviderError as error:
            return run.end(error="provider_error", detail=f"{type(error).__name__}: {error}")
        run.turns += 1
        run.messages.append(Message("assistant", text))
        action = parse_action(text, mode)
        if isinstance(action, ToolCall):
            observation, last_valid = run_call(action, tools, mode)
        elif (answer := extract_answer(text)) is not None:
            if check(task, answer):
                return run.end(success=True, answer=answer)
            detail = f"expected {task.expected!r}, answered {answer!r}"
            return run.end(error="wrong_answer", answer=answer, detail=detail)
        else:
            observation = action.message if isinstance(action, InvalidAction) else _NO_ACTION[mode]
            last_valid = False
        run.messages.append(Message("user", f"Observation:\n{observation}"))
    if last_valid:
        return run.end(error="turn_limit", detail=f"no answer in {max_turns} turns")
    detail = f"no answer in {max_turns} turns; the last one held no usable tool call"
    return run.end(error="invalid_action", detail=detail)


async def _generate(model: Model, run: _Run) -> str:
    """The model's whole answer to the conversation so far; its usage added to the run's."""
    pieces: list[str] = []
    stops: Sequence[str] = stop_sequences("markdown")
    async for item in model.stream(run.messages, stop=stops):
        if isinstance(item, TextDelta):
            pieces.append(item.text)
        elif isinstance(item, Usage):
            run.usage = run.usage + item
    return "".join(pieces)
