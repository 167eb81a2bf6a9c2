"""The notebook's behaviour in JupyterLab (issue 13): nothing lost on re-run, statuses
that tell the truth, approval that runs what it shows, replay for every answered
prompt, the narrative in reading order, and `input()` in the step that asks.

Assertions are made on the notebook JupyterLab saved (nbformat) and on the scripted
model server's request log; screenshots go to test-artifacts/.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from model_server import ScriptedModelServer, error, text

from codeact_kernel.labcomm import REPLAY_NOTE
from codeact_kernel.provenance import source_hash

from .analysis import fenced
from .lab_driver import (
    Lab,
    accept_dialog,
    answer_cells,
    by_id,
    cell_locator,
    code,
    command,
    generated,
    open_notebook,
    outputs_text,
    read_notebook,
    run_cell,
    save,
    screenshot,
    start_cell,
    wait_until_idle,
    write_notebook,
)


def set_source(page: Any, cell_id: str, source: str) -> None:
    """Replace a cell's source through the shared model, as typing would end up."""
    page.evaluate(
        """([cellId, source]) => {
            const notebook = window.jupyterapp.shell.currentWidget.content;
            const cell = notebook.widgets.find(c => c.model.id === cellId);
            cell.model.sharedModel.setSource(source);
        }""",
        [cell_id, source],
    )


def last_observation(model_server: ScriptedModelServer) -> str:
    """What the model was told last (the last user message of the latest request)."""
    messages = model_server.requests[-1]["body"]["messages"]
    return str(next(m for m in reversed(messages) if m["role"] == "user")["content"])


def test_rerun_keeps_earlier_steps_until_replaced_and_undo_restores_them(
    page: Any, lab: Lab, model_server: ScriptedModelServer
) -> None:
    write_notebook(
        lab, "keep.ipynb", [code("prompt", "count the letters in 'banana'"), code("mine", "1")]
    )
    open_notebook(page, lab, "keep.ipynb")
    model_server.script(
        text(fenced("Counting.", 'word = "banana"')),
        text(fenced("Now the letters.", "len(word)")),
        text("It has 6 letters."),
    )
    assert run_cell(page, "prompt")
    save(page)
    first = read_notebook(lab, "keep.ipynb")
    first_ids = [c.id for c in generated(first, "prompt")]
    assert len(first_ids) == 2

    # A re-run that fails (the provider refuses), one answered in prose, one stopped:
    # the earlier steps are all still there.
    model_server.script(error(401, "invalid api key"))
    assert not run_cell(page, "prompt")
    model_server.script(text("Six, as before."))
    assert run_cell(page, "prompt")
    model_server.script(text("Thinking " + "very " * 300, chunk_size=4, delay=0.05))
    start_cell(page, "prompt")
    model_server.wait_for_requests(len(model_server.requests) + 1)
    page.wait_for_selector(".codeact-Progress", timeout=20_000)
    page.locator(".codeact-Progress .codeact-stop").click()
    wait_until_idle(page, timeout=30)
    save(page)
    kept = read_notebook(lab, "keep.ipynb")
    assert [c.id for c in generated(kept, "prompt")] == first_ids
    assert [c.outputs for c in generated(kept, "prompt")] == [
        c.outputs for c in generated(first, "prompt")
    ]
    assert answer_cells(kept, "prompt") == answer_cells(first, "prompt")
    # The prompt keeps the record of its latest run: the stopped one.
    assert by_id(kept, "prompt").metadata["codeact"]["status"] == "interrupted"

    # A run with code replaces them, when its first step arrives.
    model_server.script(
        text(fenced("Counting the a's.", '"banana".count("a")')), text("There are 3 a's.")
    )
    assert run_cell(page, "prompt")
    save(page)
    replaced = read_notebook(lab, "keep.ipynb")
    assert [c.source for c in generated(replaced, "prompt")] == ['"banana".count("a")']
    assert not set(first_ids) & {c.id for c in replaced.cells}
    screenshot(page, "rerun-replaced.png")

    # One undo brings the earlier run's cells back.
    cell_locator(page, "mine").click()
    page.keyboard.press("Escape")
    page.keyboard.press("z")
    page.wait_for_function(
        """(ids) => { const cells = window.jupyterapp.shell.currentWidget.content.widgets;
                      return ids.every(id => cells.some(c => c.model.id === id)); }""",
        arg=first_ids,
        timeout=10_000,
    )
    save(page)
    undone = read_notebook(lab, "keep.ipynb")
    assert set(first_ids) <= {c.id for c in undone.cells}
    assert '"banana".count("a")' in [c.source for c in generated(undone, "prompt")]


def test_step_status_is_the_truth_about_its_latest_execution(
    page: Any, lab: Lab, model_server: ScriptedModelServer
) -> None:
    write_notebook(lab, "status.ipynb", [code("prompt", "make x and double it")])
    open_notebook(page, lab, "status.ipynb")
    model_server.script(
        text(fenced("First x.", "x = 21")),
        text(fenced("Then double it.", "y = x * 2\ny")),
        text("y is 42."),
    )
    assert run_cell(page, "prompt")
    save(page)
    first, second = generated(read_notebook(lab, "status.ipynb"), "prompt")
    assert second.metadata["codeact"]["status"] == "ok"

    # Edited: its old status no longer speaks for it.
    set_source(page, second.id, "y = undefined_name * 2\ny")
    save(page)
    edited = by_id(read_notebook(lab, "status.ipynb"), second.id)
    assert edited.metadata["codeact"]["status"] == "edited"
    # Run by the user, it raises: error, with the tag.
    assert not run_cell(page, second.id)
    save(page)
    failed = by_id(read_notebook(lab, "status.ipynb"), second.id)
    assert failed.metadata["codeact"]["status"] == "error"
    assert failed.metadata["codeact"]["error_name"] == "NameError"
    assert failed.metadata["tags"] == ["raises-exception"]
    assert "error: NameError" in cell_locator(page, second.id).inner_text()

    # Fixed and run again: ok, and the tag is gone.
    set_source(page, second.id, "y = x * 2\ny")
    assert run_cell(page, second.id)
    save(page)
    fixed = by_id(read_notebook(lab, "status.ipynb"), second.id)
    assert fixed.metadata["codeact"]["status"] == "ok"
    assert "error_name" not in fixed.metadata["codeact"]
    assert "tags" not in fixed.metadata

    # Interrupted by the user, then run fine: the status follows.
    set_source(page, first.id, "import time\nfor _ in range(600): time.sleep(0.05)\nx = 21")
    start_cell(page, first.id)
    page.wait_for_function(
        """(id) => window.jupyterapp.shell.currentWidget.content.widgets
                   .find(c => c.model.id === id).model.executionState === 'running'""",
        arg=first.id,
    )
    page.wait_for_timeout(500)
    command(page, "notebook:interrupt-kernel")
    wait_until_idle(page)
    save(page)
    assert (
        by_id(read_notebook(lab, "status.ipynb"), first.id).metadata["codeact"]["status"]
        == "interrupted"
    )
    set_source(page, first.id, "x = 21")
    assert run_cell(page, first.id)
    save(page)
    assert by_id(read_notebook(lab, "status.ipynb"), first.id).metadata["codeact"]["status"] == "ok"
    screenshot(page, "statuses.png")


def test_a_running_status_left_in_the_file_gives_way_to_the_next_execution(
    page: Any, lab: Lab
) -> None:
    # Saved mid-run (the page reloaded while a step ran): nobody reports that request
    # any more, so its `running` must not outlive the cell's next execution or edit.
    def stale(cell_id: str, step: int, source: str) -> Any:
        cell = code(cell_id, source)
        cell.metadata["codeact"] = {
            "version": 1,
            "prompt_cell_id": "prompt",
            "request_id": "gone",
            "step": step,
            "model": "scripted",
            "status": "running",
            "source_hash": source_hash(source),
        }
        return cell

    write_notebook(
        lab,
        "stale.ipynb",
        [code("prompt", "make x"), stale("ran", 1, "x = 21"), stale("typed", 2, "y = x")],
    )
    open_notebook(page, lab, "stale.ipynb")
    assert run_cell(page, "ran")
    set_source(page, "typed", "y = x * 2")
    save(page)
    saved = read_notebook(lab, "stale.ipynb")
    assert by_id(saved, "ran").metadata["codeact"]["status"] == "ok"
    assert by_id(saved, "typed").metadata["codeact"]["status"] == "edited"


def test_approval_runs_the_code_the_cell_shows_and_stop_leaves_nothing_runnable(
    page: Any, lab: Lab, model_server: ScriptedModelServer
) -> None:
    write_notebook(
        lab, "approve.ipynb", [code("prompt", "%%codeact --approval ask\ngreet, then clean up")]
    )
    open_notebook(page, lab, "approve.ipynb")
    model_server.script(
        text(fenced("A greeting.", 'print("proposed")')),
        text(fenced("Now the clean-up.", 'import shutil\nshutil.rmtree("/tmp/nothing-here")')),
    )
    start_cell(page, "prompt")
    page.wait_for_selector(".codeact-CellHeader .codeact-run", timeout=20_000)
    pending_id = page.evaluate(
        """() => window.jupyterapp.shell.currentWidget.content.widgets
                  .find(c => c.model.getMetadata('codeact')?.step === 1).model.id"""
    )
    pending = cell_locator(page, pending_id)
    # Nothing runs while it waits: no [*].
    assert "[*]" not in pending.locator(".jp-InputPrompt").inner_text()
    set_source(page, pending_id, 'print("edited by the user")')
    page.locator(".codeact-CellHeader .codeact-run").first.click()

    # Step 2 waits; Stop while it waits.
    page.wait_for_function(
        """() => window.jupyterapp.shell.currentWidget.content.widgets
                  .some(c => c.model.getMetadata('codeact')?.step === 2 &&
                             c.model.getMetadata('codeact')?.status === 'pending')""",
        timeout=20_000,
    )
    screenshot(page, "approval-pending.png")
    command(page, "notebook:interrupt-kernel")
    wait_until_idle(page)
    save(page)

    notebook = read_notebook(lab, "approve.ipynb")
    ran, stopped = generated(notebook, "prompt")
    assert ran.source == 'print("edited by the user")'
    assert outputs_text(ran) == "edited by the user\n"
    assert ran.metadata["codeact"]["status"] == "ok"
    # The model was told the code that ran, and its output.
    told = last_observation(model_server)
    assert 'print("edited by the user")' in told
    assert "edited by the user" in told
    # Never approved: a raw cell no Run All executes; the notice is in the prompt cell.
    assert stopped.cell_type == "raw"
    assert stopped.metadata["codeact"]["status"] == "skipped"
    prompt = by_id(notebook, "prompt")
    assert any(o.output_type == "error" and o.ename == "KeyboardInterrupt" for o in prompt.outputs)
    assert page.locator(".jp-Stdin").count() == 0


# Every way JupyterLab runs cells, pressed while an action awaits approval (its cell active).
RUN_PATHS = {
    "run-cell": "() => window.jupyterapp.commands.execute('notebook:run-cell')",
    "run-and-advance": (
        "() => window.jupyterapp.commands.execute('notebook:run-cell-and-select-next')"
    ),
    "run-all": "() => window.jupyterapp.commands.execute('notebook:run-all-cells')",
    "toolbar": None,  # the notebook toolbar's ▶, clicked
    "run-selected": """() => {
        const notebook = window.jupyterapp.shell.currentWidget.content;
        notebook.extendContiguousSelectionTo(notebook.widgets.length - 1);
        return window.jupyterapp.commands.execute('notebook:run-cell');
    }""",
}

PENDING_CELL = """() => window.jupyterapp.shell.currentWidget.content.widgets
    .find(c => c.model.getMetadata('codeact')?.status === 'pending')?.model.id ?? null"""


def mark_action(marker: str, value: str) -> str:
    """An action whose every effect can be checked afterwards: a file and a variable."""
    return f'open("{marker}", "w").write("{value}")\nMARKED = "{value}"\nprint("marked")'


def wait_for_pending(page: Any) -> str:
    """The id of the cell awaiting approval, once it does; it is made active."""
    page.wait_for_selector(".codeact-CellHeader .codeact-run", timeout=20_000)
    pending_id = str(page.evaluate(PENDING_CELL))
    cell_locator(page, pending_id).locator(".codeact-CellHeader").click()
    page.keyboard.press("Escape")
    page.wait_for_selector(".jp-Notebook.codeact-mod-approval", timeout=10_000)
    return pending_id


def cell_type(page: Any, cell_id: str) -> str:
    return str(
        page.evaluate(
            """(cellId) => window.jupyterapp.shell.currentWidget.content.widgets
                .find(c => c.model.id === cellId).model.type""",
            cell_id,
        )
    )


def select_only(page: Any, cell_id: str) -> None:
    """Make `cell_id` the active cell, and the only one selected."""
    page.evaluate(
        """(cellId) => {
            const notebook = window.jupyterapp.shell.currentWidget.content;
            notebook.activeCellIndex = notebook.widgets.findIndex(c => c.model.id === cellId);
            notebook.deselectAll();
        }""",
        cell_id,
    )


def press_run_path(page: Any, path: str) -> None:
    script = RUN_PATHS[path]
    if script is None:
        page.locator(
            ".jp-NotebookPanel-toolbar [data-command='notebook:run-cell-and-select-next']"
        ).click()
    else:
        page.evaluate(f"() => {{ void ({script})(); }}")


def kernel_says(page: Any, lab: Lab, name: str, expression: str) -> str:
    """Evaluate `expression` in the notebook's kernel through a cell of its own."""
    page.evaluate(
        """(source) => {
            const panel = window.jupyterapp.shell.currentWidget;
            const notebook = panel.content;
            notebook.activeCellIndex = notebook.widgets.length - 1;
            window.jupyterapp.commands.execute('notebook:insert-cell-below');
            notebook.activeCell.model.sharedModel.setSource(source);
        }""",
        f"print({expression})",
    )
    checked = page.evaluate(
        "() => window.jupyterapp.shell.currentWidget.content.activeCell.model.id"
    )
    assert run_cell(page, checked)
    save(page)
    return outputs_text(by_id(read_notebook(lab, name), checked)).strip()


@pytest.mark.parametrize("ending", ["stop", "skip"])
def test_no_run_command_runs_an_action_awaiting_approval(
    page: Any, lab: Lab, model_server: ScriptedModelServer, ending: str
) -> None:
    name = f"unapproved-{ending}.ipynb"
    marker = f"marker-{ending}.txt"
    write_notebook(
        lab,
        name,
        [code("prompt", "%%codeact --approval ask\nmark the file"), code("after", "after = 1")],
    )
    open_notebook(page, lab, name)
    model_server.script(
        text(fenced("Marking.", mark_action(marker, "ran"))),
        # Whatever asks the model later (after Skip; Run All re-running the prompt) is told
        # in prose: nothing more to approve.
        *[text("Nothing more to do.") for _ in range(3)],
    )
    start_cell(page, "prompt")
    pending_id = wait_for_pending(page)
    pending = cell_locator(page, pending_id)
    # A raw cell, which no run command executes; it reads as Python all the same.
    assert cell_type(page, pending_id) == "raw"
    assert pending.locator(".cm-content[data-language='python']").count() == 1

    # Every way JupyterLab runs a cell, on the waiting one, one after the other.
    for path in RUN_PATHS:
        select_only(page, pending_id)
        press_run_path(page, path)
        page.wait_for_timeout(1000)  # a queued execution would have been sent by now
        # Code cells run with it (Run All, a selection) meet JupyterLab's own guard while
        # the kernel waits for an answer: a dialog, dismissed; nothing was sent.
        while page.locator(".jp-Dialog").count():
            accept_dialog(page)
            page.wait_for_timeout(300)
        assert page.evaluate(PENDING_CELL) == pending_id, f"{path}: still awaiting approval"
        assert "[*]" not in pending.locator(".jp-InputPrompt").inner_text(), path
    if ending == "skip":
        pending.locator(".codeact-CellHeader .codeact-skip").click()
    else:
        command(page, "notebook:interrupt-kernel")
    wait_until_idle(page)
    save(page)

    notebook = read_notebook(lab, name)
    never_ran = by_id(notebook, pending_id)
    assert never_ran.cell_type == "raw"
    assert never_ran.metadata["codeact"]["status"] == "skipped"
    assert not lab.path(marker).exists()
    told = [
        str(message["content"])
        for request in model_server.requests
        for message in request["body"]["messages"]
        if message["role"] == "user" and str(message["content"]).startswith("Observation")
    ]
    assert all("marked" not in observation for observation in told)
    if ending == "skip":
        assert any("declined" in observation for observation in told)
    assert kernel_says(page, lab, name, 'globals().get("MARKED", "never")') == "never"

    # Run All after a restart replays the prompt, runs the other cells, never the action.
    asked = len(model_server.requests)
    command(page, "notebook:restart-run-all", wait=False)
    accept_dialog(page)
    page.wait_for_function(
        """() => window.jupyterapp.shell.currentWidget.content.widgets
                  .every(c => c.model.type !== 'code' || c.model.executionCount !== null)""",
        timeout=60_000,
    )
    wait_until_idle(page)
    save(page)
    replayed = read_notebook(lab, name)
    assert len(model_server.requests) == asked, "replayed, not asked again"
    assert by_id(replayed, pending_id).cell_type == "raw"
    assert not lab.path(marker).exists()
    assert kernel_says(page, lab, name, 'globals().get("MARKED", "never")') == "never"


def test_approving_after_an_edit_runs_the_edited_code_exactly(
    page: Any, lab: Lab, model_server: ScriptedModelServer
) -> None:
    name = "approve-edited.ipynb"
    write_notebook(lab, name, [code("prompt", "%%codeact --approval ask\nmark the file")])
    open_notebook(page, lab, name)
    model_server.script(
        text(fenced("Marking.", mark_action("proposed.txt", "proposed"))), text("Marked.")
    )
    start_cell(page, "prompt")
    pending_id = wait_for_pending(page)
    assert cell_type(page, pending_id) == "raw"
    # An ordinary run command first: nothing happens.
    page.evaluate("() => { void window.jupyterapp.commands.execute('notebook:run-cell'); }")
    edited = mark_action("edited.txt", "edited")
    set_source(page, pending_id, edited)
    cell_locator(page, pending_id).locator(".codeact-CellHeader").click()
    page.keyboard.press("Escape")
    page.wait_for_selector(".jp-Notebook.codeact-mod-approval", timeout=10_000)
    page.keyboard.press("Shift+Enter")
    wait_until_idle(page)
    save(page)

    notebook = read_notebook(lab, name)
    ran = by_id(notebook, pending_id)
    assert ran.cell_type == "code"
    assert ran.source == edited
    assert outputs_text(ran) == "marked\n"
    assert ran.metadata["codeact"]["status"] == "ok"
    assert lab.path("edited.txt").read_text() == "edited"
    assert not lab.path("proposed.txt").exists()
    assert edited in last_observation(model_server)
    assert kernel_says(page, lab, name, "MARKED") == "edited"


def test_run_all_replays_prompts_answered_in_prose_or_failed(
    page: Any, lab: Lab, model_server: ScriptedModelServer
) -> None:
    write_notebook(
        lab,
        "prose.ipynb",
        [
            code("prompt", "what is a DataFrame, in one sentence?"),
            code("failing", "and what is a Series?"),
            code("plain", "1 + 1"),
        ],
    )
    open_notebook(page, lab, "prose.ipynb")
    model_server.script(text("A table of columns that share one index."))
    assert run_cell(page, "prompt")
    model_server.script(error(401, "invalid api key"))
    assert not run_cell(page, "failing")
    save(page)
    asked = len(model_server.requests)

    command(page, "notebook:restart-run-all", wait=False)
    accept_dialog(page)
    wait_until_idle(page)
    save(page)
    notebook = read_notebook(lab, "prose.ipynb")
    assert len(model_server.requests) == asked, "Run All must not ask the model again"
    shown = outputs_text(by_id(notebook, "prompt"))
    assert "A table of columns" in shown
    assert REPLAY_NOTE in shown
    assert REPLAY_NOTE in outputs_text(by_id(notebook, "failing"))
    # Run All went on past the failed prompt.
    assert "2" in outputs_text(by_id(notebook, "plain"))
    screenshot(page, "replayed-prose.png")

    # Run on its own, a prompt asks the model, as before.
    model_server.script(text("Still a table."))
    assert run_cell(page, "prompt")
    assert len(model_server.requests) == asked + 1


def test_narrative_reads_in_order(page: Any, lab: Lab, model_server: ScriptedModelServer) -> None:
    write_notebook(lab, "order.ipynb", [code("prompt", "make a list and sum it")])
    open_notebook(page, lab, "order.ipynb")
    model_server.script(
        text(fenced("First the list.", "numbers = [1, 2, 3]"), chunk_size=3, delay=0.05),
        text(fenced("Then its sum.", "sum(numbers)")),
        text("The sum is **6**; the steps are above."),
    )
    start_cell(page, "prompt")
    # While text streams, the progress line counts it.
    page.wait_for_function(
        """() => { const text = document.querySelector('.codeact-Progress')?.textContent ?? '';
                   return text.includes('writing') && !text.includes(' 0 tokens'); }""",
        timeout=20_000,
        polling=50,
    )
    wait_until_idle(page)
    save(page)
    notebook = read_notebook(lab, "order.ipynb")
    one, two = generated(notebook, "prompt")
    assert one.metadata["codeact"]["explanation"] == "First the list."
    assert two.metadata["codeact"]["explanation"] == "Then its sum."
    assert (
        "First the list." in cell_locator(page, one.id).locator(".codeact-CellHeader").inner_text()
    )
    # Contract fields of the step cells.
    assert "numbers = [1, 2, 3]" in one.metadata["codeact"]["answer"]
    assert "executed successfully with no output" in one.metadata["codeact"]["observed"]
    assert "6" in two.metadata["codeact"]["observed"]
    # The prompt keeps neither the steps' prose nor the final answer.
    prompt = by_id(notebook, "prompt")
    shown = outputs_text(prompt)
    assert "First the list." not in shown
    assert "The sum is" not in shown
    assert "2 steps" in shown
    record = prompt.metadata["codeact"]
    assert record["role"] == "prompt" and record["status"] == "ok"
    assert record["trajectory"]["final"].startswith("The sum is")
    # The answer reads after the steps, in a Markdown cell of its own.
    ids = [c.id for c in notebook.cells]
    (answer,) = answer_cells(notebook, "prompt")
    assert ids == ["prompt", one.id, two.id, answer.id]
    assert answer.cell_type == "markdown"
    assert answer.source == "The sum is **6**; the steps are above."
    assert answer.metadata["codeact"] == {
        "version": 1,
        "role": "answer",
        "prompt_cell_id": "prompt",
        "request_id": one.metadata["codeact"]["request_id"],
        "model": "openai:test-model",
    }
    screenshot(page, "reading-order.png")


def test_input_in_an_action_is_asked_in_its_step_cell(
    page: Any, lab: Lab, model_server: ScriptedModelServer
) -> None:
    write_notebook(lab, "input.ipynb", [code("prompt", "ask me my name and greet me")])
    open_notebook(page, lab, "input.ipynb")
    model_server.script(
        text(fenced("Asking.", 'name = input("Your name: ")\nprint("Hello,", name)')),
        text("Greeted."),
    )
    start_cell(page, "prompt")
    box = page.wait_for_selector(".codeact-generated .jp-Stdin input", timeout=20_000)
    assert cell_locator(page, "prompt").locator(".jp-Stdin").count() == 0
    screenshot(page, "input-in-step.png")
    box.fill("Ada")
    box.press("Enter")
    wait_until_idle(page)
    save(page)
    (step,) = generated(read_notebook(lab, "input.ipynb"), "prompt")
    assert "Hello, Ada" in outputs_text(step)
    assert "Your name" not in outputs_text(by_id(read_notebook(lab, "input.ipynb"), "prompt"))
    assert json.dumps(step.metadata["codeact"]["status"]) == '"ok"'


@pytest.fixture(autouse=True)
def _fresh_page_state(page: Any) -> None:
    page.set_default_timeout(30_000)
