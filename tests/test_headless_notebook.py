"""The notebook a headless run builds from the comm's messages: the rules of the
extension's cells.ts / controller.ts / outputs.ts, checked without a kernel."""

from __future__ import annotations

from typing import Any

import nbformat
import pytest

from codeact_kernel.cli import as_prompt
from codeact_kernel.headless import cells_to_run
from codeact_kernel.headless_notebook import (
    NotebookBuilder,
    OutputCollector,
    insertion_index,
    is_answered,
    is_edited,
    new_notebook,
    replacement,
    strip_running,
    with_cell_ids,
)
from codeact_kernel.provenance import source_hash

MODEL = "openai:test-model"


def generated(prompt_id: str, request_id: str, step: int, code: str, **extra: Any) -> Any:
    cell = nbformat.v4.new_code_cell(code)
    cell.metadata["codeact"] = {
        "version": 1,
        "prompt_cell_id": prompt_id,
        "request_id": request_id,
        "step": step,
        "model": MODEL,
        "status": "ok",
        "source_hash": source_hash(code),
        **extra,
    }
    return cell


def notebook_with(*cells: Any) -> Any:
    notebook = new_notebook()
    notebook.cells = list(cells)
    return notebook


def message(kind: str, prompt_cell: Any, request: str = "r2", **fields: Any) -> dict[str, Any]:
    return {"type": kind, "cell_id": prompt_cell.id, "request_id": request, **fields}


def test_a_cell_is_edited_when_its_source_or_type_changed() -> None:
    cell = generated("p", "r", 1, "x = 1")
    assert not is_edited(cell)
    cell.source = "x = 2"
    assert is_edited(cell)
    skipped = nbformat.v4.new_raw_cell("x = 1")
    skipped.metadata = generated("p", "r", 1, "x = 1", status="skipped").metadata
    assert not is_edited(skipped)
    assert not is_edited(nbformat.v4.new_code_cell("user code"))


def test_new_actions_go_below_earlier_steps_and_above_later_ones() -> None:
    prompt = nbformat.v4.new_code_cell("do it")
    user = nbformat.v4.new_code_cell("mine")
    one, three = generated(prompt.id, "r", 1, "a"), generated(prompt.id, "r", 3, "c")
    cells = [prompt, one, three, user]
    assert insertion_index(cells, prompt.id, "r", 2) == 2
    assert insertion_index(cells, prompt.id, "r", 4) == 3
    assert insertion_index([prompt, three, user], prompt.id, "r", 1) == 1
    assert insertion_index([prompt, user], prompt.id, "r", 1) == 1
    assert insertion_index([user], prompt.id, "r", 1) is None


def test_a_new_request_replaces_unedited_cells_and_keeps_edited_ones() -> None:
    prompt = nbformat.v4.new_code_cell("do it")
    kept = generated(prompt.id, "r1", 1, "a")
    kept.source = "a  # mine now"
    gone = generated(prompt.id, "r1", 2, "b")
    current = generated(prompt.id, "r2", 1, "c")
    other = generated("another prompt", "r0", 1, "d")
    answer = nbformat.v4.new_markdown_cell("done")
    answer.metadata["codeact"] = {"role": "answer", "prompt_cell_id": prompt.id, "request_id": "r1"}
    result = replacement([prompt, kept, gone, current, other, answer], prompt.id, "r2")
    assert set(result.remove) == {gone.id, answer.id}
    assert result.keep == (kept.id,)


def test_outputs_merge_streams_and_follow_display_updates() -> None:
    outputs: list[Any] = []
    collector = OutputCollector(outputs)
    collector.apply("stream", {"name": "stdout", "text": "a"})
    collector.apply("stream", {"name": "stdout", "text": "b\n"})
    collector.apply(
        "display_data",
        {"data": {"text/plain": "1"}, "metadata": {}, "transient": {"display_id": "d"}},
    )
    assert collector.update({"data": {"text/plain": "2"}, "transient": {"display_id": "d"}})
    assert not collector.update({"data": {"text/plain": "3"}, "transient": {"display_id": "x"}})
    assert [o.get("text") or o["data"]["text/plain"] for o in outputs] == ["ab\n", "2"]
    collector.apply("clear_output", {"wait": True})
    assert len(outputs) == 2  # cleared only when the next output comes
    collector.apply("execute_result", {"data": {"text/plain": "4"}, "execution_count": 3})
    assert [o["output_type"] for o in outputs] == ["execute_result"]
    assert collector.live
    assert not collector.apply("status", {})


def test_a_request_builds_the_cells_lab_builds() -> None:
    prompt = nbformat.v4.new_code_cell("do it")
    old = generated(prompt.id, "r1", 1, "old")
    user = nbformat.v4.new_code_cell("mine")
    builder = NotebookBuilder(notebook_with(prompt, old, user))
    builder.request_start(message("request_start", prompt, model=MODEL))
    assert builder.cells == [prompt, old, user]  # until the new run makes its first cell

    start = message("action_start", prompt, step=1, code="1 / 0", explanation="Try.")
    first = builder.action_start(start)
    assert first is not None and builder.cells == [prompt, first, user]
    assert first.metadata["codeact"]["status"] == "running"
    assert first.metadata["codeact"]["explanation"] == "Try."
    collector = builder.collector("r2", 1)
    assert collector is not None
    collector.apply("error", {"ename": "ZeroDivisionError", "evalue": "x", "traceback": ["tb"]})
    builder.action_end(
        message(
            "action_end",
            prompt,
            step=1,
            code="1 / 0",
            status="error",
            outputs=[],
            execution_count=4,
            error_name="ZeroDivisionError",
            answer="Try.\n```python\n1 / 0\n```",
            observed="ZeroDivisionError: x",
        )
    )
    record = first.metadata["codeact"]
    assert (record["status"], record["error_name"]) == ("error", "ZeroDivisionError")
    assert record["observed"] == "ZeroDivisionError: x" and record["answer"].startswith("Try.")
    assert first.metadata["tags"] == ["raises-exception"]
    assert first.execution_count == 4 and first.outputs[0]["ename"] == "ZeroDivisionError"

    # Nothing arrived live for step 2: the kernel's copy of its outputs is used.
    builder.action_start(message("action_start", prompt, step=2, code="print(1)"))
    stream = {"output_type": "stream", "name": "stdout", "text": "1\n"}
    second = builder.action_end(
        message(
            "action_end",
            prompt,
            step=2,
            code="print(1)",
            status="ok",
            outputs=[stream],
            execution_count=5,
            error_name=None,
        )
    )
    assert second is not None and second.outputs == [nbformat.from_dict(stream)]
    assert "error_name" not in second.metadata["codeact"]

    # A declined action becomes a raw cell with the same id and record.
    third = builder.action_start(message("action_start", prompt, step=3, code="rm()"))
    assert third is not None
    builder.approval_request(message("approval_request", prompt, step=3, prompt="Run step 3?"))
    assert third.metadata["codeact"]["status"] == "pending"
    raw = builder.action_end(
        message("action_end", prompt, step=3, code="rm()", status="skipped", outputs=[])
    )
    assert raw is not None and raw.cell_type == "raw" and raw.id == third.id

    record = {"version": 1, "status": "ok", "final": "Done."}
    answer = builder.request_end(
        message("request_end", prompt, status="ok", record=record, answer_cell="Done.")
    )
    assert answer is not None
    assert builder.cells == [prompt, first, second, raw, answer, user]
    assert prompt.metadata["codeact"] == {
        "version": 1,
        "role": "prompt",
        "request_id": "r2",
        "model": MODEL,
        "status": "ok",
        "trajectory": record,
    }
    assert answer.metadata["codeact"]["role"] == "answer"
    nbformat.validate(builder.notebook)


def test_an_answer_without_actions_stays_in_the_prompt_cell() -> None:
    prompt = nbformat.v4.new_code_cell("what is 2 + 2?")
    builder = NotebookBuilder(notebook_with(prompt))
    builder.request_start(message("request_start", prompt, model=MODEL))
    assert (
        builder.request_end(message("request_end", prompt, status="ok", answer_cell=None)) is None
    )
    assert builder.cells == [prompt]
    assert prompt.metadata["codeact"]["status"] == "ok"


def test_a_request_cut_short_leaves_no_cell_running() -> None:
    prompt = nbformat.v4.new_code_cell("sleep")
    builder = NotebookBuilder(notebook_with(prompt))
    builder.request_start(message("request_start", prompt, model=MODEL))
    cell = builder.action_start(message("action_start", prompt, step=1, code="sleep()"))
    assert cell is not None
    builder.request_end(
        message("request_end", prompt, status="interrupted", record={"status": "interrupted"})
    )
    assert cell.metadata["codeact"]["status"] == "interrupted"
    assert prompt.metadata["codeact"]["status"] == "interrupted"
    other = generated(prompt.id, "r3", 1, "x", status="pending")
    strip_running([other])
    assert other.metadata["codeact"]["status"] == "interrupted"


def test_which_cells_a_run_executes() -> None:
    prompt = nbformat.v4.new_code_cell("do it")
    action = generated(prompt.id, "r", 1, "a = 1")
    edited = generated(prompt.id, "r", 2, "b = 1")
    edited.source = "b = 2"
    orphan = generated("deleted prompt", "r0", 1, "c = 1")
    answer = nbformat.v4.new_markdown_cell("Done.")
    markdown = nbformat.v4.new_markdown_cell("# notes")
    notebook = notebook_with(prompt, action, edited, answer, markdown, orphan)
    assert cells_to_run(notebook, replay=False) == [prompt.id, edited.id, orphan.id]
    assert cells_to_run(notebook, replay=True) == [prompt.id, action.id, edited.id, orphan.id]


def test_cells_get_unique_ids_and_requests_that_read_as_code_are_forced() -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.nbformat_minor = 4
    first, second = nbformat.v4.new_code_cell("a"), nbformat.v4.new_code_cell("b")
    second.id = first.id
    notebook.cells = [first, second]
    with_cell_ids(notebook)
    assert notebook.nbformat_minor >= 5 and first.id != second.id
    nbformat.validate(notebook)
    assert as_prompt("plot revenue by month") == "plot revenue by month"
    assert as_prompt("help") == "%%codeact\nhelp"


@pytest.mark.parametrize("request_text", ["x = 1", "print('hi')", "df.head()"])
def test_code_shaped_requests_go_to_the_model(request_text: str) -> None:
    assert as_prompt(request_text).startswith("%%codeact\n")


def test_a_generated_cell_run_on_its_own_records_how_that_run_went() -> None:
    cell = generated("p", "r", 1, "1 / 0", status="error", error_name="ZeroDivisionError")
    cell.metadata["tags"] = ["raises-exception"]
    builder = NotebookBuilder(notebook_with(cell))
    builder.record_execution(cell, True, None)
    assert cell.metadata["codeact"]["status"] == "ok"
    assert "error_name" not in cell.metadata["codeact"] and "tags" not in cell.metadata
    builder.record_execution(cell, False, "NameError")
    assert (cell.metadata["codeact"]["status"], cell.metadata["tags"]) == (
        "error",
        ["raises-exception"],
    )
    builder.record_execution(cell, False, "KeyboardInterrupt")
    assert cell.metadata["codeact"]["status"] == "interrupted"
    running = generated("p", "r", 2, "x", status="running")
    builder.record_execution(running, True, None)
    assert running.metadata["codeact"]["status"] == "running"
    user = nbformat.v4.new_code_cell("mine")
    builder.record_execution(user, False, "NameError")
    assert user.metadata == {}


def test_an_answered_prompt_is_one_with_a_prompt_record() -> None:
    prompt = nbformat.v4.new_code_cell("what is x?")
    assert not is_answered(prompt)
    prompt.metadata["codeact"] = {"version": 1, "role": "prompt", "request_id": "r"}
    assert is_answered(prompt)


def test_a_run_that_fails_before_any_cell_keeps_the_earlier_ones() -> None:
    prompt = nbformat.v4.new_code_cell("do it")
    prompt.metadata["codeact"] = {"version": 1, "role": "prompt", "request_id": "r1", "x": 1}
    old = generated(prompt.id, "r1", 1, "old")
    builder = NotebookBuilder(notebook_with(prompt, old))
    builder.request_start(message("request_start", prompt, model=MODEL))
    error = {"ename": "AuthenticationFailed", "evalue": "bad key"}
    builder.request_end(message("request_end", prompt, status="error", error=error, record=None))
    assert builder.cells == [prompt, old]
    assert prompt.metadata["codeact"] == {
        "version": 1,
        "role": "prompt",
        "request_id": "r2",
        "model": MODEL,
        "status": "error",
        "x": 1,
    }


def test_a_failed_attempt_a_later_step_fixed_is_folded() -> None:
    prompt = nbformat.v4.new_code_cell("do it")
    builder = NotebookBuilder(notebook_with(prompt))
    builder.request_start(message("request_start", prompt, model=MODEL))
    for step, status in ((1, "error"), (2, "error"), (3, "ok")):
        builder.action_start(message("action_start", prompt, step=step, code=f"s{step}"))
        end = message("action_end", prompt, step=step, code=f"s{step}", status=status)
        builder.action_end({**end, "outputs": [], "execution_count": step, "error_name": "E"})
        if step == 2:
            assert all("jupyter" not in cell.metadata for cell in builder.cells)
    first, second, third = builder.cells[1:]
    for failed in (first, second):
        assert failed.metadata["collapsed"] is True
        assert failed.metadata["jupyter"] == {"outputs_hidden": True, "source_hidden": True}
    assert "jupyter" not in third.metadata
    nbformat.validate(builder.notebook)
