"""The CodeAct loop with a scripted model and a real IPython shell."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from scripted import Cut, Reply, ScriptedModel

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
    ActionsDropped,
    ActionSkipped,
    AnswerTruncated,
    CodeAction,
    Event,
    Failed,
    Finished,
    Interrupted,
    ModelText,
    Progress,
    RequestStarted,
    StepStarted,
    Turn,
    UsageReport,
)
from codeact_kernel.executor import ShellExecutor
from codeact_kernel.frontend import Approval
from codeact_kernel.providers.base import Message, StreamItem, Truncated
from codeact_kernel.settings import Settings


@pytest.fixture
def shell(ipython: InteractiveShell) -> InteractiveShell:
    ipython.user_ns.pop("x", None)
    return ipython


def answer(
    shell: InteractiveShell,
    replies: list[Reply],
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
    # The footer's count: one action, the final answer is not a step.
    assert isinstance(events[-1], Finished) and events[-1].steps == 1
    assert turn.steps[0].code == "answer = 6 * 7\nprint(answer)"


def test_consecutive_failures_exhaust_the_retry_budget(shell: InteractiveShell) -> None:
    events, turn, model = answer(shell, ["```python\n1/0\n```"] * 3, max_retries=2)
    assert isinstance(events[-1], Failed)
    assert isinstance(events[-1].error, RetryBudgetExhausted)
    assert "ZeroDivisionError" in str(events[-1].error)
    assert len(model.calls) == 3 and turn.error


def test_a_success_resets_the_retry_count(shell: InteractiveShell) -> None:
    replies: list[Reply] = [
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


def shown(events: list[Event], step: int | None = None) -> str:
    """The model text the user was shown (of one step, or all)."""
    return "".join(e.text for e in events if isinstance(e, ModelText) and step in (None, e.step))


# --- answers cut at the output limit ---------------------------------------------------


@pytest.mark.parametrize(
    "cut",
    [
        "Saving it all.\n```python\nflag = 'cut'\nrows = [\n    1,\n    2,",
        # Cut right at its closing fence: whether more lines were to come, nobody knows.
        "Complete-looking, but the answer was cut:\n```python\nflag = 'cut'\n```",
        "<execute>\nflag = 'cut'\n",
    ],
)
def test_a_truncated_answer_never_runs_and_the_model_goes_on(
    shell: InteractiveShell, cut: str
) -> None:
    shell.user_ns.pop("flag", None)
    events, turn, model = answer(
        shell, [Cut(cut, limit=512), "```python\nflag = 'short'\n```", "Done, shorter."]
    )
    notes = [e for e in events if isinstance(e, AnswerTruncated)]
    assert len(notes) == 1 and notes[0].step == 1 and notes[0].had_code
    assert "512 tokens" in notes[0].message and "not run" in notes[0].message
    assert [e.step for e in events if isinstance(e, CodeAction)] == [2]
    assert shell.user_ns["flag"] == "short"
    assert turn.steps[0].truncated and turn.steps[0].code is None
    told = model.calls[1][-1].content
    assert told.startswith("Observation:\n[Your answer was cut off at the output limit")
    assert isinstance(events[-1], Finished) and turn.final == "Done, shorter."


def test_a_limit_hit_after_the_answer_ended_does_not_matter(shell: InteractiveShell) -> None:
    shell.user_ns.pop("flag", None)
    cut = Cut("```python\nflag = 'whole'\n```\nThis sets the flag, and then I will go on and")
    events, _, _ = answer(shell, [cut, "Done."])
    assert shell.user_ns["flag"] == "whole"
    assert not any(isinstance(e, AnswerTruncated) for e in events)


def test_an_answer_cut_before_its_first_word_says_so(shell: InteractiveShell) -> None:
    events, _, _ = answer(shell, [Cut("  ")])
    assert isinstance(events[-1], Failed) and isinstance(events[-1].error, StreamError)
    assert "output limit" in str(events[-1].error)


def test_a_truncated_prose_answer_is_no_final_answer(shell: InteractiveShell) -> None:
    events, turn, model = answer(shell, [Cut("The history of Rome begins"), " with Romulus."])
    assert [type(e) for e in events].count(AnswerTruncated) == 1
    assert "Go on from where it stopped" in model.calls[1][-1].content
    assert turn.final == " with Romulus."


@dataclass
class StoppingModel(ScriptedModel):
    """A `ScriptedModel` whose `Cut` replies stop for `reason` (a filter, a refusal)."""

    reason: str = "content_filter"

    async def stream(
        self, messages: Sequence[Message], *, stop: Sequence[str] = ()
    ) -> AsyncIterator[StreamItem]:
        async for item in super().stream(messages, stop=stop):
            yield Truncated(item.limit, self.reason) if isinstance(item, Truncated) else item


def stopped(
    shell: InteractiveShell, replies: list[Reply], reason: str, **settings: Any
) -> tuple[list[Event], Turn, ScriptedModel]:
    model = StoppingModel(list(replies), reason=reason)
    agent = Agent(
        model, ShellExecutor(shell), Settings(model="scripted:test").with_overrides(**settings)
    )
    turn = Turn("do it")

    async def collect() -> list[Event]:
        return [event async for event in agent.run(turn)]

    return asyncio.run(collect()), turn, model


@pytest.mark.parametrize("reason", ["content_filter", "refusal", "recitation"])
def test_a_filter_or_refusal_even_after_the_action_closed_stops_it(
    shell: InteractiveShell, reason: str
) -> None:
    shell.user_ns.pop("flag", None)
    cut = Cut("```python\nflag = 'stopped'\n```\nAnd then I")
    events, turn, model = stopped(shell, [cut, "```python\nflag = 'other'\n```", "Done."], reason)
    notes = [e for e in events if isinstance(e, AnswerTruncated)]
    assert len(notes) == 1 and notes[0].reason == reason and notes[0].had_code
    assert "so its code was not run" in notes[0].message
    assert shell.user_ns["flag"] == "other"
    assert turn.steps[0].truncated and turn.steps[0].stop_reason == reason
    assert model.calls[1][-1].content.startswith("Observation:\n[")


@pytest.mark.parametrize("reason", ["content_filter", "refusal"])
def test_prose_a_filter_or_refusal_stopped_is_the_final_answer(
    shell: InteractiveShell, reason: str
) -> None:
    events, turn, model = stopped(shell, [Cut("I won't write that")], reason)
    assert isinstance(events[-1], Finished) and turn.final == "I won't write that"
    note = next(e for e in events if isinstance(e, AnswerTruncated))
    assert "may be incomplete" in note.message and len(model.calls) == 1
    assert not turn.steps[0].truncated, "kept as the answer it is, for the next request"


def test_paused_prose_goes_on(shell: InteractiveShell) -> None:
    events, turn, model = stopped(shell, [Cut("Half of it"), " and the rest."], "pause")
    assert turn.final == " and the rest." and len(model.calls) == 2
    note = next(e for e in events if isinstance(e, AnswerTruncated))
    assert "the server paused it" in note.message and "asked to go on" in note.message


def test_always_filtered_actions_run_out_of_retries_naming_the_filter(
    shell: InteractiveShell,
) -> None:
    replies: list[Reply] = [Cut("```python\nflag = 1\n```")] * 3
    events, _, model = stopped(shell, replies, "content_filter", max_retries=1)
    assert isinstance(events[-1], Failed) and isinstance(events[-1].error, RetryBudgetExhausted)
    assert "content filter" in str(events[-1].error) and len(model.calls) == 2


KEY = "sk-test-SECRET-0123456789abcdef"


@pytest.mark.parametrize("chunk", [1, 5, 1000])
def test_a_secret_the_model_writes_is_masked_wherever_the_answer_goes(
    shell: InteractiveShell, chunk: int
) -> None:
    said = f"Your key is {KEY}.\n```python\nk = '{KEY}'\nprint(len(k))\n```\n"
    model = ScriptedModel([said, f"Done: {KEY[:-1]}"], chunk=chunk)
    agent = Agent(
        model,
        ShellExecutor(shell),
        Settings(model="scripted:test"),
        secrets=lambda: {KEY},
    )
    turn = Turn("what is my key")

    async def collect() -> list[Event]:
        return [event async for event in agent.run(turn)]

    events = asyncio.run(collect())
    streamed = "".join(e.text for e in events if isinstance(e, ModelText))
    assert "Your key is ***." in streamed and "SECRET-0123" not in streamed
    kept = [turn.steps[0].model_text, turn.steps[0].code or "", turn.final or ""]
    assert all(text and "SECRET-0123" not in text for text in kept), kept
    assert turn.final is not None and turn.final.startswith("Done: ")


def test_a_model_that_always_overruns_runs_out_of_retries(shell: InteractiveShell) -> None:
    shell.user_ns.pop("flag", None)
    replies: list[Reply] = [Cut("```python\nflag = 1\n```")] * 3
    events, turn, model = answer(shell, replies, max_retries=2, max_steps=10)
    assert "flag" not in shell.user_ns
    assert isinstance(events[-1], Failed) and isinstance(events[-1].error, RetryBudgetExhausted)
    assert "output limit" in str(events[-1].error)
    assert len(model.calls) == 3 and len(turn.steps) == 3


def test_an_action_that_succeeds_after_overruns_resets_the_count(shell: InteractiveShell) -> None:
    replies: list[Reply] = [Cut("a"), "```python\npass\n```", Cut("b"), "done"]
    events, _, _ = answer(shell, replies, max_retries=1)
    assert isinstance(events[-1], Finished)


# --- where an answer ends, whatever the server does with stop sequences ----------------------


@pytest.mark.parametrize(
    ("reply", "action_format"),
    [
        (
            "<execute>\nflag = 'first'\n</execute>\nObservation:\nok\n<execute>\nflag = 'second'\n"
            "</execute>",
            "execute",
        ),
        (
            "```python\nflag = 'first'\n```\nObservation:\nok\n```python\nflag = 'second'\n```",
            "markdown",
        ),
        (
            "```python\nflag = 'first'\n```\nThat printed ok, so:\n```python\nflag = 'second'\n```",
            "markdown",
        ),
        ("<execute>flag = 'first'</execute> and <execute>flag = 'second'</execute>", "markdown"),
    ],
)
def test_only_the_first_action_runs_and_nothing_past_it_is_shown(
    shell: InteractiveShell, reply: str, action_format: str
) -> None:
    shell.user_ns.pop("flag", None)
    events, turn, model = answer(
        shell, [reply + "\n" + "more " * 2000, "Done."], action_format=action_format
    )
    assert shell.user_ns["flag"] == "first"
    assert "second" not in shown(events, 1) and "Observation" not in shown(events, 1)
    assert shown(events, 1) == turn.steps[0].model_text
    assert "second" not in model.calls[1][-2].content, "the model sees its answer as kept"
    assert model.finished == [False, True], "the rest of the stream was not read"
    assert not any(isinstance(e, ActionsDropped) for e in events)


def test_the_stream_is_read_on_for_its_usage_when_it_ends_soon(shell: InteractiveShell) -> None:
    _, turn, model = answer(shell, ["```python\nx = 1\n```\nThere.", "Done."])
    assert model.finished == [True, True]
    assert turn.steps[0].model_text == "```python\nx = 1\n```"
    assert not turn.steps[0].usage.estimated


def test_bare_actions_after_the_first_are_dropped_and_the_user_told(
    shell: InteractiveShell,
) -> None:
    shell.user_ns.pop("flag", None)
    reply = "```\nflag = 'first'\n```\nthen\n```\nflag = 'second'\n```"
    events, turn, _ = answer(shell, [reply, "Done."])
    assert shell.user_ns["flag"] == "first"
    dropped = [e for e in events if isinstance(e, ActionsDropped)]
    assert len(dropped) == 1 and dropped[0].answer == "```\nflag = 'first'\n```"
    assert "dropped and not run" in dropped[0].message
    assert turn.steps[0].model_text == dropped[0].answer


# --- interrupts -------------------------------------------------------------------------------


def interrupted_run(
    shell: InteractiveShell, replies: list[Reply], after_deltas: int
) -> tuple[list[Event], Turn]:
    """Run a request and cancel it once `after_deltas` pieces of text were shown."""
    model = ScriptedModel(list(replies), chunk=4, delay=0.005)
    agent = Agent(
        model=model, executor=ShellExecutor(shell), settings=Settings(model="scripted:test")
    )
    turn = Turn("write a poem")
    events: list[Event] = []

    async def collect() -> None:
        async for event in agent.run(turn):
            events.append(event)
            if sum(isinstance(e, ModelText) for e in events) == after_deltas:
                task.cancel()

    loop = asyncio.new_event_loop()
    try:
        task = loop.create_task(collect())
        with pytest.raises(asyncio.CancelledError):
            loop.run_until_complete(task)
    finally:
        loop.close()
    return events, turn


def test_an_interrupted_answer_keeps_what_the_user_saw(shell: InteractiveShell) -> None:
    events, turn = interrupted_run(shell, ["Roses are red, violets are blue. " * 20], 5)
    assert isinstance(events[-1], Interrupted) and events[-1].step == 1
    step = turn.steps[0]
    assert step.interrupted and step.code is None
    assert step.model_text == shown(events) and len(step.model_text) == 20
