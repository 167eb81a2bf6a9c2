"""How a notebook looks and reads in JupyterLab with the extension (issue 13).

Prompt cells are marked (in the view and in the file) while the user types them and
edited as prose; steps fold when superseded and say which run they belong to; Stop and
the approval's Run / Skip are at hand (keyboard included); headers are readable and
their colours meet WCAG AA in the light and the dark theme. Assertions are made on the
DOM, on computed styles and on the notebook file JupyterLab saved; screenshots go to
test-artifacts/.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest
from model_server import ScriptedModelServer, text

from .analysis import (
    PROMPT,
    SALES,
    STEP_1,
    STEP_3,
    analysis_notebook,
    fenced,
    script_analysis,
)
from .lab_driver import (
    ROOT,
    Lab,
    by_id,
    cell_locator,
    code,
    command,
    generated,
    open_notebook,
    read_notebook,
    run_cell,
    save,
    screenshot,
    start_cell,
    wait_until_idle,
    write_notebook,
)

DARK = "JupyterLab Dark"
LIGHT = "JupyterLab Light"


def cell_state(page: Any, cell_id: str) -> dict[str, Any]:
    """What the view shows of one cell: classes, badge, editor language and wrapping."""
    return dict(
        page.evaluate(
            """(cellId) => {
                const panel = window.jupyterapp.shell.currentWidget;
                const cell = panel.content.widgets.find(c => c.model.id === cellId);
                const content = cell.node.querySelector('.cm-content');
                // Highlighting classes are generated: recognise keywords by their colour.
                const probe = document.createElement('span');
                probe.style.color = 'var(--jp-mirror-editor-keyword-color)';
                content.appendChild(probe);
                const keyword = getComputedStyle(probe).color;
                probe.remove();
                const scroller = cell.node.querySelector('.cm-scroller');
                return {
                    prompt: cell.node.classList.contains('codeact-prompt'),
                    badge: cell.node.querySelector('.codeact-PromptHeader .codeact-badge')
                        ?.textContent ?? null,
                    mimeType: cell.model.mimeType,
                    wraps: content?.classList.contains('cm-lineWrapping') ?? false,
                    font: content ? getComputedStyle(content).fontFamily : '',
                    overflows: scroller ? scroller.scrollWidth > scroller.clientWidth + 1 : false,
                    keywords: Array.from(cell.node.querySelectorAll('.cm-line span'))
                        .filter(s => getComputedStyle(s).color === keyword)
                        .map(s => s.textContent),
                    codeact: cell.model.getMetadata('codeact') ?? null,
                };
            }""",
            cell_id,
        )
    )


def type_into(page: Any, cell_id: str, source: str) -> None:
    """Replace a cell's text by typing, as a user does (edit mode, select all, type)."""
    cell_locator(page, cell_id).locator(".cm-content").click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.type(source, delay=5)


def test_a_prompt_is_marked_as_you_type_and_edited_as_prose(page: Any, lab: Lab) -> None:
    write_notebook(
        lab,
        "typing.ipynb",
        [code("data", SALES), code("typed", ""), code("named", "数据分析"), code("plain", "")],
    )
    page.set_viewport_size({"width": 900, "height": 900})
    open_notebook(page, lab, "typing.ipynb")
    # The kernel, not a guess, decides: an undefined name in a script without spaces
    # is a request, from the moment the notebook opens.
    page.wait_for_function(
        """() => window.jupyterapp.shell.currentWidget.content.widgets
               .find(c => c.model.id === 'named').node.classList.contains('codeact-prompt')""",
        timeout=20_000,
    )
    assert not cell_state(page, "typed")["prompt"]
    assert not cell_state(page, "data")["prompt"]

    type_into(page, "typed", PROMPT)
    page.wait_for_selector(".codeact-prompt .codeact-badge", timeout=20_000)
    page.wait_for_function(
        """() => window.jupyterapp.shell.currentWidget.content.widgets
               .find(c => c.model.id === 'typed').node.classList.contains('codeact-prompt')""",
        timeout=20_000,
    )
    state = cell_state(page, "typed")
    assert state["badge"] == "Prompt"
    assert state["codeact"] == {"version": 1, "role": "prompt"}
    # Prose: no Python keywords highlighted ("with", "and", "in" are words here),
    # wrapped at 900 px without a horizontal scrollbar, in the content font.
    assert state["mimeType"] != "text/x-ipython"
    assert state["keywords"] == []
    assert state["wraps"] and not state["overflows"]
    assert "monospace" not in state["font"].lower()
    screenshot(page, "look-typing-prompt.png")

    # Code typed into another cell is not a prompt; it keeps Python's editor.
    type_into(page, "plain", "for month in sales:\n    print(month, sales[month])")
    page.wait_for_timeout(1500)
    plain = cell_state(page, "plain")
    assert not plain["prompt"] and plain["badge"] is None and plain["codeact"] is None
    assert plain["mimeType"] == "text/x-ipython"
    assert "for" in plain["keywords"]

    # A prompt typed back into code is no prompt any more.
    type_into(page, "named", "print(sales)")
    page.wait_for_function(
        """() => !window.jupyterapp.shell.currentWidget.content.widgets
               .find(c => c.model.id === 'named').node.classList.contains('codeact-prompt')""",
        timeout=20_000,
    )
    assert cell_state(page, "named")["mimeType"] == "text/x-ipython"

    save(page)
    notebook = read_notebook(lab, "typing.ipynb")
    assert by_id(notebook, "typed").metadata["codeact"] == {"version": 1, "role": "prompt"}
    assert by_id(notebook, "typed").cell_type == "code"
    for cell_id in ("data", "named", "plain"):
        assert "codeact" not in by_id(notebook, cell_id).metadata


# --- readable and accessible -----------------------------------------------------

READABILITY = """() => {
    const parse = (value) => {
        const m = value.match(/rgba?\\(([^)]+)\\)/);
        if (!m) return null;
        const [r, g, b, a] = m[1].split(',').map(Number);
        return [r, g, b, a === undefined || Number.isNaN(a) ? 1 : a];
    };
    const over = (top, bottom) => top.slice(0, 3).map(
        (c, i) => c * top[3] + bottom[i] * (1 - top[3])).concat([1]);
    // The colour behind an element: its and its ancestors' backgrounds, composited.
    const background = (node) => {
        const layers = [];
        for (let n = node; n && n.nodeType === 1; n = n.parentElement) {
            const colour = parse(getComputedStyle(n).backgroundColor);
            if (colour && colour[3] > 0) {
                layers.push(colour);
                if (colour[3] >= 1) break;
            }
        }
        let result = [255, 255, 255, 1];
        for (const layer of layers.reverse()) result = over(layer, result);
        return result;
    };
    const luminance = (c) => {
        const [r, g, b] = c.slice(0, 3).map(v => {
            v /= 255;
            return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
        });
        return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const contrast = (a, b) => {
        const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
        return (hi + 0.05) / (lo + 0.05);
    };
    const found = [];
    const roots = document.querySelectorAll(
        '.codeact-CellHeader, .codeact-PromptHeader, .codeact-Progress');
    for (const root of roots) {
        for (const node of [root, ...root.querySelectorAll('*')]) {
            const own = Array.from(node.childNodes).some(
                c => c.nodeType === 3 && c.textContent.trim());
            if (!own) continue;
            const style = getComputedStyle(node);
            const bg = background(node);
            const fg = over(parse(style.color), bg);
            found.push({
                text: node.textContent.trim().slice(0, 40),
                cls: node.className,
                size: parseFloat(style.fontSize),
                contrast: Math.round(contrast(fg, bg) * 100) / 100,
            });
        }
    }
    return found;
}"""


def check_readable(page: Any, theme: str) -> list[dict[str, Any]]:
    """Every text of our headers: at least 12 px (labels and toggles 13 px) and 4.5:1."""
    found = page.evaluate(READABILITY)
    assert found, "no CodeAct header text on the page"
    small = [f for f in found if f["size"] < 12]
    assert not small, (theme, small)
    for selector in ("codeact-label", "codeact-toggle", "codeact-fold-run"):
        assert all(f["size"] >= 13 for f in found if selector in f["cls"]), (theme, selector)
    poor = [f for f in found if f["contrast"] < 4.5]
    assert not poor, (theme, poor)
    return list(found)


def set_theme(page: Any, theme: str) -> None:
    command(page, "apputils:change-theme", {"theme": theme})
    light = "true" if theme == LIGHT else "false"
    page.wait_for_function(
        f"() => document.body.dataset.jpThemeLight === '{light}' && "
        f"document.body.dataset.jpThemeName === '{theme}'",
        timeout=20_000,
    )
    page.wait_for_timeout(500)


def check_both_themes(page: Any, name: str) -> set[str]:
    """Readability in the light and the dark theme, with a 900 px screenshot of each."""
    classes: set[str] = set()
    page.set_viewport_size({"width": 900, "height": 1000})
    try:
        for theme, suffix in ((LIGHT, "light"), (DARK, "dark")):
            set_theme(page, theme)
            found = check_readable(page, theme)
            classes.update(c for f in found for c in f["cls"].split())
            screenshot(page, f"{name}-{suffix}.png")
    finally:
        set_theme(page, LIGHT)
    return classes


# --- clutter: folding and runs -----------------------------------------------------


def folded(page: Any, cell_id: str) -> bool:
    return bool(
        page.evaluate(
            """(cellId) => {
                const cell = window.jupyterapp.shell.currentWidget.content.widgets
                    .find(c => c.model.id === cellId);
                const outputs = cell.node.querySelector('.jp-Cell-outputWrapper');
                const input = cell.node.querySelector('.jp-Cell-inputWrapper .jp-InputArea');
                const shown = (n) => !!n && n.offsetParent !== null && n.offsetHeight > 0;
                if (cell.inputHidden !== cell.outputHidden) return null;
                if (cell.inputHidden === shown(input)) return null;
                return cell.inputHidden;
            }""",
            cell_id,
        )
    )


def steps_of(notebook: Any, prompt_id: str) -> list[Any]:
    """The prompt's step cells (not the Markdown cell of its final answer)."""
    return [cell for cell in generated(notebook, prompt_id) if "step" in cell.metadata.codeact]


def header_of(page: Any, cell_id: str) -> Any:
    return cell_locator(page, cell_id).locator(".codeact-CellHeader")


def test_failed_then_fixed_steps_fold_and_runs_are_told_apart(
    page: Any, lab: Lab, model_server: ScriptedModelServer
) -> None:
    analysis_notebook(lab, "runs.ipynb")
    open_notebook(page, lab, "runs.ipynb")
    assert run_cell(page, "data")
    script_analysis(model_server)
    assert run_cell(page, "prompt")
    wait_until_idle(page)
    save(page)
    notebook = read_notebook(lab, "runs.ipynb")
    steps = steps_of(notebook, "prompt")
    assert [s.metadata["codeact"]["status"] for s in steps] == ["ok", "error", "ok", "ok"]
    ids = [s.id for s in steps]

    # The NameError of step 2, fixed by step 3, is folded: code and traceback.
    failed = steps[1]
    assert failed.metadata["jupyter"] == {"source_hidden": True, "outputs_hidden": True}
    assert all("jupyter" not in s.metadata for s in (steps[0], steps[2], steps[3]))
    assert folded(page, ids[1]) is True
    assert "fixed by step 3" in header_of(page, ids[1]).inner_text()
    # A final-answer cell after the steps shares their edge.
    for cell in notebook.cells:
        if cell.metadata.get("codeact", {}).get("role") == "answer":
            assert "codeact-answer" in (cell_locator(page, cell.id).get_attribute("class") or "")
    assert "error: NameError" in header_of(page, ids[1]).inner_text()

    # The toggle folds code and outputs together, and unfolds them.
    toggle = header_of(page, ids[0]).locator(".codeact-toggle")
    assert toggle.get_attribute("aria-expanded") == "true"
    toggle.click()
    assert folded(page, ids[0]) is True
    header_of(page, ids[0]).locator(".codeact-toggle").click()
    assert folded(page, ids[0]) is False

    # The prompt's header folds and unfolds the whole run.
    run_toggle = cell_locator(page, "prompt").locator(".codeact-fold-run")
    assert run_toggle.inner_text() == "▾ Fold 4 steps"
    run_toggle.click()
    assert [folded(page, i) for i in ids] == [True] * 4
    screenshot(page, "look-run-folded.png")
    run_toggle = cell_locator(page, "prompt").locator(".codeact-fold-run")
    assert run_toggle.inner_text() == "▸ Show 4 steps"
    run_toggle.click()
    assert [folded(page, i) for i in ids] == [False] * 4
    header_of(page, ids[1]).locator(".codeact-toggle").click()

    # Every colour and size we use, in both themes, on a real run's headers.
    classes = check_both_themes(page, "look-run")
    for used in ("codeact-badge", "codeact-status-ok", "codeact-status-error", "codeact-note"):
        assert used in classes

    readme_screenshot(page)

    # Re-run with step 1 edited (kept): each header says which run it belongs to.
    page.evaluate(
        """(cellId) => {
            const cell = window.jupyterapp.shell.currentWidget.content.widgets
                .find(c => c.model.id === cellId);
            cell.model.sharedModel.setSource(cell.model.sharedModel.getSource() + '\\n# mine');
        }""",
        ids[0],
    )
    model_server.script(
        text(fenced("Once more, the table.", STEP_1)),
        text(fenced("And the growth.", STEP_3)),
        text("Done again."),
    )
    assert run_cell(page, "prompt")
    wait_until_idle(page)
    page.wait_for_function(
        "() => document.querySelectorAll('.codeact-CellHeader .codeact-label').length >= 3"
    )
    labels = page.eval_on_selector_all(
        ".codeact-CellHeader .codeact-label", "nodes => nodes.map(n => n.textContent)"
    )
    assert "CodeAct · run 2 · step 1" in labels
    assert "CodeAct · run 2 · step 2" in labels
    assert "CodeAct · run 1 · step 1" in labels
    kept = header_of(page, ids[0])
    assert "edited" in kept.inner_text()
    assert "codeact-earlier-run" in (cell_locator(page, ids[0]).get_attribute("class") or "")
    screenshot(page, "look-two-runs.png")


def readme_screenshot(page: Any) -> None:
    """The README's picture of a run; CODEACT_UPDATE_SCREENSHOT=1 updates docs/screenshot.png."""
    page.set_viewport_size({"width": 1100, "height": 1480})
    page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
    page.evaluate(
        """() => {
            const notebook = window.jupyterapp.shell.currentWidget.content;
            notebook.deselectAll();
            notebook.activeCellIndex = notebook.widgets.length - 1;
            notebook.mode = 'command';
            notebook.scrollToItem(1, 'start');
        }"""
    )
    page.wait_for_timeout(500)
    path = screenshot(page, "look-readme.png", clip={"x": 0, "y": 0, "width": 1100, "height": 1320})
    if os.environ.get("CODEACT_UPDATE_SCREENSHOT") == "1":
        shutil.copy(path, ROOT / "docs" / "screenshot.png")


# --- while it works: Stop and the approval's keys ----------------------------------

SLOW_STEP = (
    "import time\n"
    "for line in range(120):\n"
    "    print('line', line)\n"
    "for _ in range(600):\n"
    "    time.sleep(0.05)"
)


def test_stop_is_on_the_running_step(
    page: Any, lab: Lab, model_server: ScriptedModelServer
) -> None:
    write_notebook(lab, "slow.ipynb", [code("prompt", "print a lot, then wait half a minute")])
    page.set_viewport_size({"width": 900, "height": 700})
    open_notebook(page, lab, "slow.ipynb")
    model_server.script(text(fenced("Printing, then waiting.", SLOW_STEP)), text("Done."))
    start_cell(page, "prompt")
    page.wait_for_selector(".codeact-generated .codeact-stop", timeout=30_000)
    page.wait_for_function(
        """() => document.querySelector('.codeact-generated .jp-OutputArea')
               ?.textContent.includes('line 119')""",
        timeout=20_000,
    )
    # Scrolled down to the step's latest output, its Stop is still in view.
    page.evaluate(
        """() => {
            const notebook = window.jupyterapp.shell.currentWidget.content;
            const outputs = notebook.node.querySelector('.codeact-generated .jp-OutputArea');
            outputs.scrollIntoView({block: 'end'});
        }"""
    )
    page.wait_for_timeout(300)
    stop = page.locator(".codeact-generated .codeact-stop")
    box = stop.bounding_box()
    viewport = page.evaluate(
        "() => window.jupyterapp.shell.currentWidget.content.node.getBoundingClientRect().toJSON()"
    )
    assert box is not None
    assert viewport["top"] <= box["y"] and box["y"] + box["height"] <= viewport["bottom"]
    assert page.locator(".codeact-Progress").bounding_box() is None or (
        page.locator(".codeact-Progress").bounding_box()["y"] < viewport["top"]
    )
    header = page.locator(".codeact-generated .codeact-CellHeader")
    assert "running" in header.inner_text()
    classes = check_both_themes(page, "look-running")
    assert "codeact-stop" in classes and "codeact-status-running" in classes
    page.locator(".codeact-generated .codeact-stop").click()
    wait_until_idle(page, timeout=20)
    save(page)
    notebook = read_notebook(lab, "slow.ipynb")
    (step,) = steps_of(notebook, "prompt")
    assert step.metadata["codeact"]["status"] == "interrupted"
    assert "KeyboardInterrupt" in str(step.outputs) + str(by_id(notebook, "prompt").outputs)


def press_on_cell(page: Any, cell_id: str, keys: str) -> None:
    """Make `cell_id` the active cell in command mode and press `keys`."""
    page.evaluate(
        """(cellId) => {
            const notebook = window.jupyterapp.shell.currentWidget.content;
            notebook.deselectAll();
            notebook.activeCellIndex = notebook.widgets.findIndex(c => c.model.id === cellId);
            notebook.mode = 'command';
            notebook.activeCell.node.focus();
        }""",
        cell_id,
    )
    page.wait_for_function(
        """() => window.jupyterapp.shell.currentWidget.content.node
               .classList.contains('codeact-mod-approval')"""
    )
    page.keyboard.press(keys)


def pending_cell(page: Any, step: int) -> str:
    page.wait_for_function(
        f"""() => window.jupyterapp.shell.currentWidget.content.widgets.some(c =>
               c.model.getMetadata('codeact')?.step === {step} &&
               c.node.classList.contains('codeact-mod-approval'))""",
        timeout=30_000,
    )
    return str(
        page.evaluate(
            f"""() => window.jupyterapp.shell.currentWidget.content.widgets.find(c =>
                   c.model.getMetadata('codeact')?.step === {step}).model.id"""
        )
    )


def test_approval_keys_run_and_skip(page: Any, lab: Lab, model_server: ScriptedModelServer) -> None:
    write_notebook(
        lab,
        "keys.ipynb",
        [code("prompt", "%%codeact --approval ask\ncount once, greet, then clean up the disk")],
    )
    open_notebook(page, lab, "keys.ipynb")
    count = 'runs = globals().get("runs", 0) + 1\nprint("run", runs)'
    model_server.script(
        text(fenced("Counting.", count)),
        text(fenced("Greeting.", 'print("hello")')),
        text(fenced("Now the clean-up.", 'import shutil\nshutil.rmtree("/")')),
        text("Counted once and greeted; I skipped the clean-up as you asked."),
    )
    start_cell(page, "prompt")
    first = pending_cell(page, 1)
    header = header_of(page, first)
    # The keys are shown on the buttons and in their tooltips.
    run = header.locator(".codeact-run")
    assert "Shift+Enter" in run.inner_text()
    assert "Shift+Enter" in (run.get_attribute("title") or "")
    assert "Ctrl+Enter" in (run.get_attribute("title") or "")
    assert "Alt+S" in header.locator(".codeact-skip").inner_text()
    assert header.locator(".codeact-stop").count() == 1
    classes = check_both_themes(page, "look-approval")
    assert {"codeact-run", "codeact-skip", "codeact-status-pending"} <= classes
    # Command mode: Shift+Enter runs the proposed action.
    press_on_cell(page, first, "Shift+Enter")

    # Edit mode, in the proposed code: Ctrl+Enter runs it, as the user edited it.
    second = pending_cell(page, 2)
    cell_locator(page, second).locator(".cm-content").click()
    page.keyboard.press("End")
    page.keyboard.type("  # checked")
    page.keyboard.press("Control+Enter")

    third = pending_cell(page, 3)
    press_on_cell(page, third, "Alt+s")
    wait_until_idle(page)
    page.wait_for_selector(".codeact-status-skipped")
    classes = check_both_themes(page, "look-skipped")
    assert "codeact-status-skipped" in classes
    save(page)
    notebook = read_notebook(lab, "keys.ipynb")
    counted, greeted, skipped = steps_of(notebook, "prompt")
    assert counted.metadata["codeact"]["status"] == "ok"
    assert counted.outputs[0].text == "run 1\n"
    assert greeted.source == 'print("hello")  # checked'
    assert greeted.metadata["codeact"]["status"] == "ok"
    assert greeted.outputs[0].text == "hello\n"
    assert skipped.cell_type == "raw"
    assert skipped.metadata["codeact"]["status"] == "skipped"
    # The keys answered the questions; they did not also queue the cells to run again.
    assert len(model_server.requests) == 4
    assert kernel_value(page, "runs") == "1"


def kernel_value(page: Any, expression: str) -> str:
    return str(
        page.evaluate(
            """async (code) => {
                const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
                const reply = await kernel.requestExecute({
                    code: '', silent: true, user_expressions: {value: code}
                }).done;
                return reply.content.user_expressions.value.data['text/plain'];
            }""",
            expression,
        )
    )


@pytest.fixture(autouse=True)
def _fresh_page_state(page: Any) -> None:
    page.set_default_timeout(30_000)
