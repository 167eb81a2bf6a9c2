"""Code mode: a task's episode is the CodeAct loop in a real `codeact` kernel.

The kernel is the one users run; nothing here reimplements the loop. The task's tools
are defined by running `toolset_code` in the kernel (a data scenario's data by running
`scenario_setup`), as cells kept out of the model's context (`store_history=False`:
the kernel tells the model only about cells the user ran, and the tools through its
Tools section, as it would for a user's `@tool`s). The task is then sent as a
natural-language cell, and the episode is read from the request's trajectory record,
which the kernel publishes with the request's footer output
(`metadata["codeact"]["trajectory"]`, codeact_kernel/trajectory.py).

A data scenario's questions run in order in one kernel, each seeing what the earlier
ones built; after each, the task's namespace expressions are evaluated in the kernel
(`namespace_values`) for `check_namespace`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ProviderError, RetryBudgetExhausted, StepBudgetExhausted
from ..export import ExportOptions, Found, export_record
from ..provenance import METADATA_KEY
from ..trajectory import Trajectory, TrajectoryFormatError
from .checker import MISSING, check, check_namespace, extract_answer, values_from_reprs
from .episode import Cause, Episode
from .instructions import task_text
from .kernels import Execution, KernelFailure, KernelHandle
from .tasks import Task, scenario_setup, toolset_code

SETUP_TIMEOUT = 120.0


def _names(error: type[BaseException]) -> frozenset[str]:
    """The class names of `error` and its subclasses (a record's `ename` is one)."""
    return frozenset({error.__name__}).union(*(_names(sub) for sub in error.__subclasses__()))


# The agent's budgets ran out: the turn limit, in the benchmark's terms.
TURN_LIMIT_ERRORS = frozenset({StepBudgetExhausted.__name__, RetryBudgetExhausted.__name__})
# The endpoint failed after the providers' own retries: not the model's failure (the
# json and text loops count every `ProviderError` so too).
PROVIDER_ERRORS = _names(ProviderError)


async def run_code_episode(task: Task, kernel: KernelHandle, *, timeout: float) -> Episode:
    """Run one task (its tools defined first, if any) in `kernel`, which is fresh."""
    if task.toolsets:
        await _setup(kernel, toolset_code(task.toolsets), f"the tools of {task.id}")
    return await ask(task, kernel, timeout=timeout)


async def run_scenario(
    tasks: Sequence[Task], kernel: KernelHandle, *, timeout: float
) -> list[Episode]:
    """Run a data scenario's questions in order in one fresh kernel."""
    if not tasks:
        return []
    scenario = tasks[0].scenario
    assert scenario is not None, f"{tasks[0].id} belongs to no scenario"
    await _setup(kernel, scenario_setup(scenario), f"the data of scenario {scenario!r}")
    toolsets = sorted({name for task in tasks for name in task.toolsets})
    if toolsets:
        await _setup(kernel, toolset_code(toolsets), f"the tools of scenario {scenario!r}")
    return [await ask(task, kernel, timeout=timeout) for task in tasks]


async def ask(task: Task, kernel: KernelHandle, *, timeout: float) -> Episode:
    """Send the task as a natural-language cell; the episode its record describes."""
    started = time.monotonic()
    # %%codeact: the request goes to the model whatever it looks like.
    done = await kernel.execute(f"%%codeact\n{task_text(task)}", timeout=timeout)
    seconds = time.monotonic() - started
    record = trajectory_record(done)
    if record is None:
        raise KernelFailure(
            f"{task.id}: the kernel published no trajectory record with the request's footer "
            f"(reply: {_reply_summary(done)}); is the same codeact-kernel installed there?"
        )
    values = await namespace_values(kernel, list(task.namespace)) if task.namespace else {}
    return episode_from_record(task, record, seconds, values)


def trajectory_record(done: Execution) -> Trajectory | None:
    """The request's trajectory record, from its footer output's metadata."""
    for message in reversed(done.messages):
        if message["msg_type"] not in ("display_data", "update_display_data"):
            continue
        codeact = message["content"].get("metadata", {}).get(METADATA_KEY)
        if isinstance(codeact, dict) and "trajectory" in codeact:
            try:
                return Trajectory.from_json(codeact["trajectory"])
            except TrajectoryFormatError as error:
                raise KernelFailure(
                    f"the kernel's trajectory record is malformed: {error}"
                ) from error
    return None


def episode_from_record(
    task: Task, record: Trajectory, seconds: float, values: Mapping[str, object]
) -> Episode:
    """Score one request's record: success, or the cause of the failure."""
    answer = extract_answer(record.final) if record.final is not None else None
    error, detail = _verdict(task, record, answer, values)
    return Episode(
        task=task.id,
        mode="code",
        success=error is None,
        # A step is one model call, the final answer's included: the paper's turns.
        turns=len(record.steps),
        input_tokens=record.usage.input_tokens,
        output_tokens=record.usage.output_tokens,
        seconds=round(seconds, 3),
        error=error,
        answer=answer,
        detail=detail,
        trajectory=export_trajectory(task, record),
    )


def _verdict(
    task: Task, record: Trajectory, answer: str | None, values: Mapping[str, object]
) -> tuple[Cause | None, str | None]:
    if record.status == "error" and record.error is not None:
        ename, evalue = record.error.ename, record.error.evalue
        if ename in TURN_LIMIT_ERRORS:
            return "turn_limit", f"{ename}: {evalue}"
        if ename in PROVIDER_ERRORS:
            return "provider_error", f"{ename}: {evalue}"
        # A missing model, a bad setting: the harness is set up wrong, not the model.
        raise KernelFailure(f"{task.id}: the request failed with {ename}: {evalue}")
    if record.status != "ok":
        raise KernelFailure(f"{task.id}: the request ended as {record.status!r}")
    if answer is None:
        return "invalid_action", "the final answer has no 'Answer: …' line"
    if not check(task, answer):
        return "wrong_answer", f"expected {task.expected!r}, answered {answer!r}"
    if task.namespace and not check_namespace(task, values):
        found = {name: values.get(name, MISSING) for name in task.namespace}
        return "wrong_answer", f"namespace: expected {dict(task.namespace)!r}, found {found!r}"
    return None, None


def export_trajectory(task: Task, record: Trajectory) -> dict[str, Any]:
    """The record in the `codeact` export format (export.py), with the id every mode
    gives its episodes (`<task>#<mode>`)."""
    exported = export_record(Found(record), ExportOptions(format="codeact"))
    assert exported is not None  # nothing is filtered out without `only_successful`
    return {"id": f"{task.id}#code", "conversations": exported["conversations"]}


async def namespace_values(kernel: KernelHandle, expressions: Sequence[str]) -> dict[str, object]:
    """What `expressions` evaluate to in the kernel's namespace now, as Python values.

    They are the kernel's user expressions: evaluated after an empty cell, each on its
    own (one that fails spoils no other), defining nothing in the namespace; their
    `repr`s come back as literals (`values_from_reprs`), so any kernel, a gateway's too,
    can answer.
    """
    done = await kernel.execute(
        "",
        timeout=SETUP_TIMEOUT,
        store_history=False,
        user_expressions={str(i): expression for i, expression in enumerate(expressions)},
    )
    results = done.reply.get("user_expressions", {})
    reprs: dict[str, str | None] = {}
    for i, expression in enumerate(expressions):
        result = results.get(str(i), {})
        ok = result.get("status") == "ok"
        reprs[expression] = str(result["data"]["text/plain"]) if ok else None
    return values_from_reprs(reprs)


async def _setup(kernel: KernelHandle, code: str, what: str) -> None:
    done = await kernel.execute(code, timeout=SETUP_TIMEOUT, store_history=False)
    if done.status != "ok":
        raise KernelFailure(f"defining {what} failed in the kernel: {_reply_summary(done)}")


def _reply_summary(done: Execution) -> str:
    if done.status == "ok":
        return "ok"
    return f"{done.reply.get('ename')}: {done.reply.get('evalue')}"
