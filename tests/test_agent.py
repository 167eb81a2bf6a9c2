"""The CodeAct loop with a scripted model and a real IPython shell."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from scripted import ScriptedModel

from codeact_kernel.agent import DECLINED, Agent
from codeact_kernel.errors import (
    ApprovalUnavailable,
    ContextTooLong,
    RetryBudgetExhausted,
    ServerError,
    StepBudgetExhausted,
    StreamError,
)
from codeact_kernel.events import (
    ActionObserved,
    ActionSkipped,
    CodeAction,
    Event,
    Failed,
    Finished,
    ModelText,
    Progress,
    RequestStarted,
    StepStarted,
    Turn,
    UsageReport,
)
from codeact_kernel.executor import ShellExecutor
from codeact_kernel.frontend import Approval
from codeact_kernel.settings import Settings


@pytest.fixture
def shell(ipython: InteractiveShell) -> InteractiveShell:
    ipython.user_ns.pop("x", None)
    return ipython


def answer(
    shell: InteractiveShell,
    replies: list[str | BaseException],
    request: str = "do it",
    approve: Callable[[int, str], Awaitable[Approval]] | None = None,
    history: tuple[Turn, ...] = (),
    **settings: Any,
) -> tuple[list[Event], Turn, ScriptedModel]:
    model = ScriptedModel(list(replies))
    agent = Agent(
        model=model,
        executor=ShellExecutor(shell),
        settings=Settings(model="scripted:test").with_overrides(**settings),
        approve=approve,
    )
    turn = Turn(request)

    async def collect() -> list[Event]:
        return [event async for event in agent.run(turn, history)]

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(collect()), turn, model
    finally:
        loop.close()


def test_an_answer_without_code_finishes(shell: InteractiveShell) -> None:
    events, turn, _ = answer(shell, ["Nothing to run: the answer is 4."])
    kinds = [type(e) for e in events]
    assert kinds[:2] == [RequestStarted, StepStarted]
    assert ModelText in kinds and UsageReport in kinds
    assert isinstance(events[-1], Finished)
    assert events[-1].answer == "Nothing to run: the answer is 4." == turn.final
    assert "".join(e.text for e in events if isinstance(e, ModelText)) == turn.final


def test_actions_run_and_observations_go_back(shell: InteractiveShell) -> None:
    events, turn, model = answer(
        shell, ["```python\nanswer = 6 * 7\nprint(answer)\n```", "It is 42."]
    )
    assert shell.user_ns["answer"] == 42
    observed = [e for e in events if isinstance(e, ActionObserved)]
    assert observed[0].observation.text == "42"
    assert [type(e) for e in events].index(CodeAction) < [type(e) for e in events].index(
        ActionObserved
    )
    assert "Observation:\n42" in model.calls[1][-1].content
    assert isinstance(events[-1], Finished) and events[-1].steps == 2
    assert turn.steps[0].code == "answer = 6 * 7\nprint(answer)"


def test_consecutive_failures_exhaust_the_retry_budget(shell: InteractiveShell) -> None:
    events, turn, model = answer(shell, ["```python\n1/0\n```"] * 3, max_retries=2)
    assert isinstance(events[-1], Failed)
    assert isinstance(events[-1].error, RetryBudgetExhausted)
    assert "ZeroDivisionError" in str(events[-1].error)
    assert len(model.calls) == 3 and turn.error


def test_a_success_resets_the_retry_count(shell: InteractiveShell) -> None:
    replies: list[str | BaseException] = [
        "```python\n1/0\n```",
        "```python\nprint('ok')\n```",
        "```python\n1/0\n```",
        "done",
    ]
    events, _, _ = answer(shell, replies, max_retries=1)
    assert isinstance(events[-1], Finished)


def test_step_budget(shell: InteractiveShell) -> None:
    events, _, model = answer(shell, ["```python\npass\n```"] * 2, max_steps=2)
    assert isinstance(events[-1], Failed)
    assert isinstance(events[-1].error, StepBudgetExhausted)
    assert len(model.calls) == 2


def test_provider_errors_end_the_request(shell: InteractiveShell) -> None:
    events, turn, _ = answer(shell, [ServerError("boom", status=500)])
    assert isinstance(events[-1], Failed) and isinstance(events[-1].error, ServerError)
    assert turn.error == "boom"


def test_context_too_long_shrinks_once(shell: InteractiveShell) -> None:
    events, _, model = answer(shell, [ContextTooLong("too long"), "fine now"])
    assert len(model.calls) == 2
    assert isinstance(events[-1], Finished)
    assert any(isinstance(e, Progress) for e in events)
    events, _, _ = answer(shell, [ContextTooLong("too long"), ContextTooLong("still")])
    assert isinstance(events[-1], Failed) and isinstance(events[-1].error, ContextTooLong)


def test_empty_completion_is_an_error(shell: InteractiveShell) -> None:
    events, _, _ = answer(shell, ["   "])
    assert isinstance(events[-1], Failed) and isinstance(events[-1].error, StreamError)


def test_declined_actions_do_not_run(shell: InteractiveShell) -> None:
    shell.user_ns.pop("touched", None)
    asked: list[tuple[int, str]] = []

    async def decline(step: int, code: str) -> Approval:
        asked.append((step, code))
        return Approval.SKIP

    events, turn, model = answer(
        shell,
        ["```python\ntouched = True\n```", "ok, not running it"],
        approve=decline,
        approval="ask",
    )
    assert "touched" not in shell.user_ns
    assert asked == [(1, "touched = True")]
    assert any(isinstance(e, ActionSkipped) for e in events)
    assert DECLINED in model.calls[1][-1].content
    assert isinstance(events[-1], Finished) and turn.steps[0].skipped


def test_ask_without_a_way_to_ask_fails_clearly(shell: InteractiveShell) -> None:
    events, _, _ = answer(shell, ["```python\nprint(1)\n```"], approval="ask")
    assert isinstance(events[-1], Failed)
    assert isinstance(events[-1].error, ApprovalUnavailable)


def test_execute_format_stops_after_one_action(shell: InteractiveShell) -> None:
    events, _, model = answer(
        shell, ["<execute>\nprint('via tag')\n</execute>", "done"], action_format="execute"
    )
    assert "</execute>" in model.stops[0]
    observed = [e for e in events if isinstance(e, ActionObserved)]
    assert observed[0].observation.text == "via tag"


def test_history_reaches_the_model(shell: InteractiveShell) -> None:
    _, first, _ = answer(shell, ["```python\nprint('first')\n```", "first done"], request="one")
    _, _, model = answer(shell, ["second done"], request="two", history=(first,))
    text = "\n".join(m.content for m in model.calls[0])
    assert "one" in text and "first done" in text and "two" in text
