"""End to end: JupyterLab + the extension + the codeact kernel + a scripted model.

Every assertion that matters is made on the notebook file JupyterLab saved, read with
nbformat; the screenshots (test-artifacts/) show what the user saw.
"""

from __future__ import annotations

import base64
import os
import shutil
import struct
import subprocess
import sys
import zlib
from typing import Any

import pytest
from model_server import ScriptedModelServer, text

from codeact_kernel.labcomm import REPLAY_NOTE

from .analysis import (
    FINAL,
    SALES,
    STEP_1,
    STEP_2,
    STEP_3,
    STEP_4,
    analysis_notebook,
    fenced,
    script_analysis,
)
from .lab_driver import (
    ROOT,
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
    wait_for_kernel,
    wait_until_idle,
    write_notebook,
)


def kernel_says(page: Any, expression: str) -> str:
    """text/plain of `expression`, evaluated by the notebook's kernel."""
    return str(
        page.evaluate(
            """async (code) => {
                const panel = window.jupyterapp.shell.currentWidget;
                const kernel = panel.sessionContext.session.kernel;
                const reply = await kernel.requestExecute({
                    code: '', silent: true, user_expressions: {value: code}
                }).done;
                return reply.content.user_expressions.value.data['text/plain'];
            }""",
            expression,
        )
    )


def user_cells_untouched(notebook: Any) -> None:
    assert by_id(notebook, "intro").source == "# Monthly sales"
    assert by_id(notebook, "data").source == SALES
    assert by_id(notebook, "after").source == 'print("a cell the user wrote")'
    for cell_id in ("intro", "data", "after"):
        assert "codeact" not in by_id(notebook, cell_id).metadata
    # The prompt cell records its run (docs/protocol.md, "What the notebook records").
    assert by_id(notebook, "prompt").metadata["codeact"]["role"] == "prompt"


def test_the_prebuilt_extension_is_enabled(lab: Lab) -> None:
    listing = subprocess.run(
        [sys.executable, "-m", "jupyter", "labextension", "list"],
        env={**os.environ, "JUPYTER_PATH": str(lab.data)},
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(line for line in listing.stderr.splitlines() if "codeact-kernel-lab" in line)
    assert "enabled" in line and "OK" in line and "(python, codeact-kernel)" in line


def test_code_actions_become_cells_with_their_outputs(
    page: Any, lab: Lab, model_server: ScriptedModelServer
) -> None:
    analysis_notebook(lab, "analysis.ipynb")
    open_notebook(page, lab, "analysis.ipynb")
    assert run_cell(page, "data")
    script_analysis(model_server)
    cell_locator(page, "prompt").click()
    page.keyboard.press("Shift+Enter")
    # The prompt cell shows progress while the agent works.
    page.wait_for_selector(".codeact-Progress", timeout=20_000)
    wait_until_idle(page)
    page.wait_for_selector(".codeact-Progress", state="detached", timeout=10_000)
    save(page)

    notebook = read_notebook(lab, "analysis.ipynb")
    ids = [cell.id for cell in notebook.cells]
    cells = generated(notebook, "prompt")
    assert len(cells) == 4
    (answer,) = answer_cells(notebook, "prompt")
    # Directly below the prompt, in order, the answer after them, above the user's cell.
    assert ids == ["intro", "data", "prompt", *[c.id for c in cells], answer.id, "after"]
    assert [c.source for c in cells] == [STEP_1, STEP_2, STEP_3, STEP_4]
    assert all(c.cell_type == "code" for c in cells)

    provenance = [c.metadata["codeact"] for c in cells]
    assert [p["step"] for p in provenance] == [1, 2, 3, 4]
    assert [p["status"] for p in provenance] == ["ok", "error", "ok", "ok"]
    assert provenance[1]["error_name"] == "NameError"
    # A failed step is expected to fail: it must not stop Run All there.
    assert cells[1].metadata["tags"] == ["raises-exception"]
    assert "tags" not in cells[0].metadata
    assert {p["model"] for p in provenance} == {"openai:test-model"}
    assert {p["prompt_cell_id"] for p in provenance} == {"prompt"}
    assert len({p["request_id"] for p in provenance}) == 1

    # Each cell carries its own outputs and execution count.
    counts = [c.execution_count for c in cells]
    assert all(isinstance(n, int) for n in counts) and counts == sorted(counts)
    assert cells[0].outputs[0].output_type == "execute_result"
    assert cells[0].outputs[0].data["text/plain"] == "np.int64(565)" or "565" in outputs_text(
        cells[0]
    )
    assert cells[1].outputs[-1].output_type == "error"
    assert cells[1].outputs[-1].ename == "NameError"
    assert "text/html" in cells[2].outputs[0].data
    assert "growth" in cells[2].outputs[0].data["text/html"]
    assert "image/svg+xml" in cells[3].outputs[0].data

    # Each step's prose is with its step, the answer after the steps; the prompt keeps
    # the footer, and code and outputs are not repeated there.
    assert answer.source == FINAL
    assert provenance[0]["explanation"] == "I'll load the numbers into a DataFrame first."
    prompt = by_id(notebook, "prompt")
    shown = outputs_text(prompt)
    assert "4 steps" in shown
    assert "the table and the chart are in the steps" not in shown
    assert "I'll load the numbers into a DataFrame first." not in shown
    assert "pd.DataFrame" not in shown
    assert "NameError" not in shown
    assert not any(o.output_type in ("stream", "error", "execute_result") for o in prompt.outputs)
    assert not any("image/svg+xml" in o.get("data", {}) for o in prompt.outputs)
    user_cells_untouched(notebook)

    # The headers mark the generated cells.
    assert page.locator(".codeact-CellHeader").count() == 4
    assert "CodeAct · step 2" in page.locator(".codeact-CellHeader").nth(1).inner_text()
    readme_screenshot(page)


def readme_screenshot(page: Any) -> None:
    """The README's picture: the prompt, its answer and the four generated cells.

    Written to test-artifacts/; CODEACT_UPDATE_SCREENSHOT=1 also updates docs/screenshot.png.
    """
    page.set_viewport_size({"width": 1100, "height": 1480})
    page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
    cell_locator(page, "data").scroll_into_view_if_needed()
    page.evaluate(
        """() => {
            const notebook = window.jupyterapp.shell.currentWidget.content;
            notebook.deselectAll();
            notebook.activeCellIndex = notebook.widgets.length - 1;
            notebook.scrollToItem(1, 'start');
        }"""
    )
    page.wait_for_timeout(500)
    path = screenshot(
        page, "readme-screenshot.png", clip={"x": 0, "y": 0, "width": 1100, "height": 1320}
    )
    if os.environ.get("CODEACT_UPDATE_SCREENSHOT") == "1":
        shutil.copy(path, ROOT / "docs" / "screenshot.png")


def test_rerun_replaces_generated_cells_but_keeps_edited_ones(
    page: Any, lab: Lab, model_server: ScriptedModelServer
) -> None:
    write_notebook(
        lab,
        "rerun.ipynb",
        [code("prompt", "count the letters in 'banana'"), code("mine", "x = 'user code'")],
    )
    open_notebook(page, lab, "rerun.ipynb")
    model_server.script(
        text(fenced("Counting.", 'word = "banana"')),
        text(fenced("Now the letters.", "len(word)")),
        text("It has 6 letters."),
    )
    assert run_cell(page, "prompt")
    save(page)
    first = generated(read_notebook(lab, "rerun.ipynb"), "prompt")
    assert [c.source for c in first] == ['word = "banana"', "len(word)"]

    # The user edits the second generated cell.
    editor = cell_locator(page, first[1].id).locator(".cm-content")
    editor.click()
    page.keyboard.press("End")
    page.keyboard.type("  # checked by hand")
    page.keyboard.press("Escape")

    model_server.script(
        text(fenced("Counting the a's this time.", '"banana".count("a")')),
        text("There are 3 a's."),
    )
    assert run_cell(page, "prompt")
    save(page)
    notebook = read_notebook(lab, "rerun.ipynb")
    second = generated(notebook, "prompt")
    assert [c.source for c in second] == ['"banana".count("a")', "len(word)  # checked by hand"]
    fresh, kept = second
    assert fresh.metadata["codeact"]["request_id"] != first[0].metadata["codeact"]["request_id"]
    assert kept.id == first[1].id
    # Kept as it is; its status says it was edited since it ran.
    assert kept.metadata["codeact"] == {**first[1].metadata["codeact"], "status": "edited"}
    assert first[0].id not in [c.id for c in notebook.cells]
    (answer,) = answer_cells(notebook, "prompt")
    assert [c.id for c in notebook.cells] == ["prompt", fresh.id, answer.id, kept.id, "mine"]
    assert by_id(notebook, "mine").source == "x = 'user code'"
    assert "3 a's" in answer.source
    screenshot(page, "rerun-kept-edited.png")


def test_run_all_after_restart_replays_without_the_model(
    page: Any, lab: Lab, model_server: ScriptedModelServer
) -> None:
    analysis_notebook(lab, "replay.ipynb")
    open_notebook(page, lab, "replay.ipynb")
    assert run_cell(page, "data")
    script_analysis(model_server)
    assert run_cell(page, "prompt")
    save(page)
    before = read_notebook(lab, "replay.ipynb")
    requests = len(model_server.requests)

    command(page, "notebook:restart-run-all", wait=False)
    accept_dialog(page)
    wait_until_idle(page)
    save(page)
    after = read_notebook(lab, "replay.ipynb")

    assert len(model_server.requests) == requests, "Run All must not call the model"
    assert [c.id for c in after.cells] == [c.id for c in before.cells]
    old, new = generated(before, "prompt"), generated(after, "prompt")
    assert [c.source for c in new] == [c.source for c in old]
    assert [c.metadata["codeact"] for c in new] == [c.metadata["codeact"] for c in old]
    # The fresh kernel ran them again, in order, with the same results.
    assert [c.execution_count for c in new] == [c.execution_count for c in old]
    assert kernel_says(page, "df.growth.tolist()") == "[nan, 12.5, 18.5, -6.2]"
    for fresh, earlier in zip(new, old, strict=True):
        assert fresh.outputs[0].output_type == earlier.outputs[0].output_type
    assert new[1].outputs[-1].ename == "NameError"
    assert new[2].outputs[0].data["text/html"] == old[2].outputs[0].data["text/html"]
    assert "a cell the user wrote" in outputs_text(by_id(after, "after"))
    # The answer stays after the steps; the prompt says it was replayed.
    assert [c.source for c in answer_cells(after, "prompt")] == [FINAL]
    shown = outputs_text(by_id(after, "prompt"))
    assert "4 steps" in shown
    assert REPLAY_NOTE in shown
    screenshot(page, "replayed.png")


def test_stop_interrupts_the_agent(page: Any, lab: Lab, model_server: ScriptedModelServer) -> None:
    write_notebook(lab, "stop.ipynb", [code("prompt", "think very slowly about nothing")])
    open_notebook(page, lab, "stop.ipynb")
    model_server.script(text("Thinking " + "very " * 200, chunk_size=4, delay=0.1))
    start_cell(page, "prompt")
    progress = page.wait_for_selector(".codeact-Progress", timeout=20_000)
    page.wait_for_function(
        "() => document.querySelector('.codeact-Progress')?.textContent.includes('step 1')"
    )
    screenshot(page, "progress.png")
    progress.query_selector(".codeact-stop").click()
    wait_until_idle(page, timeout=20)
    page.wait_for_selector(".codeact-Progress", state="detached", timeout=10_000)
    save(page)
    prompt = by_id(read_notebook(lab, "stop.ipynb"), "prompt")
    assert any(o.output_type == "error" and o.ename == "KeyboardInterrupt" for o in prompt.outputs)
    # The kernel survived.
    assert kernel_says(page, "1 + 1") == "2"


def png(width: int = 48, height: int = 24) -> str:
    """A small two-colour PNG, base64: big enough to see in a screenshot."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(
        b"\x00"
        + b"".join(b"\x4a\x90\xd9" if x < width // 2 else b"\xf5\xa6\x23" for x in range(width))
        for _ in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    raw = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9))
    return base64.b64encode(raw + chunk(b"IEND", b"")).decode()


PNG = png()


def test_approval_shows_run_and_skip_on_the_proposed_cell(
    page: Any, lab: Lab, model_server: ScriptedModelServer
) -> None:
    write_notebook(
        lab,
        "approval.ipynb",
        [code("prompt", "%%codeact --approval ask\nshow a pixel, then clean up the disk")],
    )
    open_notebook(page, lab, "approval.ipynb")
    show_pixel = (
        f'import base64\nfrom IPython.display import Image\nImage(data=base64.b64decode("{PNG}"))'
    )
    model_server.script(
        text(fenced("Here is the pixel.", show_pixel)),
        text(fenced("Now the clean-up.", 'import shutil\nshutil.rmtree("/")')),
        text("Done; I skipped the clean-up as you asked."),
    )
    start_cell(page, "prompt")
    run_button = page.wait_for_selector(".codeact-CellHeader .codeact-run", timeout=20_000)
    header = page.locator(".codeact-CellHeader").first
    assert "awaiting approval" in header.inner_text()
    screenshot(page, "approval.png")
    run_button.click()
    skip_button = page.wait_for_selector(
        ".codeact-CellHeader:nth-of-type(1) .codeact-skip, .codeact-skip", timeout=20_000
    )
    skip_button.click()
    wait_until_idle(page)
    save(page)
    notebook = read_notebook(lab, "approval.ipynb")
    ran, skipped = generated(notebook, "prompt")
    assert ran.cell_type == "code"
    assert ran.metadata["codeact"]["status"] == "ok"
    assert ran.outputs[0].data["image/png"].strip() == PNG
    # A declined action is kept as a raw cell: visible, never run by Run All.
    assert skipped.cell_type == "raw"
    assert skipped.source == 'import shutil\nshutil.rmtree("/")'
    assert skipped.metadata["codeact"]["status"] == "skipped"
    (answer,) = answer_cells(notebook, "prompt")
    assert "skipped the clean-up" in answer.source
    # No stdin box was left behind.
    assert page.locator(".jp-Stdin").count() == 0


def test_two_views_of_one_notebook_get_each_cell_once(
    page: Any, browser: Any, lab: Lab, model_server: ScriptedModelServer
) -> None:
    write_notebook(lab, "views.ipynb", [code("prompt", "say hello in code")])
    open_notebook(page, lab, "views.ipynb")
    command(page, "docmanager:clone")
    page.wait_for_function("() => Array.from(window.jupyterapp.shell.widgets('main')).length === 2")
    # Another browser on the same notebook and kernel: it sees the kernel's IOPub too.
    other = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    try:
        open_notebook(other, lab, "views.ipynb", workspace="other-browser")
        model_server.script(text(fenced("Hello:", 'print("hello")')), text("Said hello."))
        assert run_cell(page, "prompt")
        save(page)
        notebook = read_notebook(lab, "views.ipynb")
        cells = generated(notebook, "prompt")
        assert len(cells) == 1
        assert cells[0].outputs[0].text == "hello\n"
        # Both views of the first browser show the one generated cell.
        assert page.locator(".codeact-CellHeader").count() == 2
        # The other browser's extension inserted nothing (it did not run the cell).
        assert (
            other.evaluate("() => window.jupyterapp.shell.currentWidget.content.widgets.length")
            == 1
        )
    finally:
        other.context.close()


def test_a_new_kernel_gets_a_new_comm(
    page: Any, lab: Lab, model_server: ScriptedModelServer
) -> None:
    write_notebook(lab, "switch.ipynb", [code("prompt", "say hi"), code("plain", "1 + 1")])
    open_notebook(page, lab, "switch.ipynb")
    change_kernel = (
        "async (name) => { await window.jupyterapp.shell.currentWidget"
        ".sessionContext.changeKernel({name}); }"
    )
    page.evaluate(change_kernel, "python3")
    wait_for_kernel(page, "switch.ipynb", "python3")
    assert run_cell(page, "plain")  # a stock kernel: the extension stays out of the way
    page.evaluate(change_kernel, "codeact")
    wait_for_kernel(page, "switch.ipynb", "codeact")
    model_server.script(text(fenced("Hi:", 'print("hi")')), text("Said hi."))
    assert run_cell(page, "prompt")
    save(page)
    cells = generated(read_notebook(lab, "switch.ipynb"), "prompt")
    assert [c.source for c in cells] == ['print("hi")']
    assert cells[0].outputs[0].text == "hi\n"


@pytest.fixture(autouse=True)
def _fresh_page_state(page: Any) -> None:
    page.set_default_timeout(30_000)
