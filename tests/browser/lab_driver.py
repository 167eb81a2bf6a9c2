"""Driving JupyterLab from playwright: notebooks on disk, commands, waiting, screenshots.

Cells are addressed by their nbformat id. Commands run through JupyterLab's own
command registry (`window.jupyterapp`, exposed by the test server), which is what the
menus and keyboard shortcuts call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
from nbformat.notebooknode import NotebookNode

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"

KERNELSPEC = {"name": "codeact", "display_name": "CodeAct (Python 3)", "language": "python"}


class Lab:
    """A running JupyterLab server and the notebooks it serves."""

    def __init__(self, url: str, root: Path, log: Path, data: Path) -> None:
        self.url = url
        self.root = root
        self.log = log
        self.data = data

    def path(self, name: str) -> Path:
        return self.root / name


def code(cell_id: str, source: str) -> NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.id = cell_id
    return cell


def markdown(cell_id: str, source: str) -> NotebookNode:
    cell = nbformat.v4.new_markdown_cell(source)
    cell.id = cell_id
    return cell


def write_notebook(lab: Lab, name: str, cells: list[NotebookNode]) -> Path:
    notebook = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": KERNELSPEC})
    path = lab.path(name)
    nbformat.write(notebook, path)
    return path


def read_notebook(lab: Lab, name: str) -> NotebookNode:
    notebook = nbformat.read(lab.path(name), as_version=4)
    nbformat.validate(notebook)
    return notebook


def by_id(notebook: NotebookNode, cell_id: str) -> NotebookNode:
    return next(cell for cell in notebook.cells if cell.id == cell_id)


def generated(notebook: NotebookNode, prompt_id: str) -> list[NotebookNode]:
    """The step cells of a prompt (its answer cell, `role: answer`, is not one)."""
    return [
        cell
        for cell in notebook.cells
        if cell.metadata.get("codeact", {}).get("prompt_cell_id") == prompt_id
        and "step" in cell.metadata["codeact"]
    ]


def answer_cells(notebook: NotebookNode, prompt_id: str) -> list[NotebookNode]:
    """The Markdown cells with a prompt's final answers (`role: answer`)."""
    return [
        cell
        for cell in notebook.cells
        if cell.metadata.get("codeact", {}).get("role") == "answer"
        and cell.metadata["codeact"].get("prompt_cell_id") == prompt_id
    ]


def open_notebook(page: Any, lab: Lab, name: str, workspace: str = "") -> None:
    """Open `name` alone in a fresh workspace and wait until its kernel is idle."""
    workspace = workspace or name.replace(".", "-")
    page.goto(f"{lab.url}/lab/workspaces/{workspace}/tree/{name}?reset")
    wait_for_kernel(page, name)


def wait_for_kernel(page: Any, name: str, kernel_name: str = "codeact") -> None:
    page.wait_for_function(
        """([name, kernelName]) => {
            const panel = window.jupyterapp?.shell.currentWidget;
            const kernel = panel?.sessionContext?.session?.kernel;
            return panel?.context?.path === name && panel.content.widgets.length > 0 &&
                kernel?.name === kernelName && kernel.status === 'idle' &&
                kernel.connectionStatus === 'connected';
        }""",
        arg=[name, kernel_name],
        timeout=60_000,
    )


def run_cell(page: Any, cell_id: str) -> bool:
    """Run one cell, as Ctrl+Enter does, and wait for it to finish."""
    return bool(
        page.evaluate(
            """async (cellId) => {
                const app = window.jupyterapp;
                const notebook = app.shell.currentWidget.content;
                notebook.deselectAll();
                notebook.activeCellIndex = notebook.widgets.findIndex(c => c.model.id === cellId);
                return await app.commands.execute('notebook:run-cell');
            }""",
            cell_id,
        )
    )


def command(page: Any, name: str, args: dict[str, Any] | None = None, *, wait: bool = True) -> None:
    """Execute a JupyterLab command; with `wait`, until the promise it returns settles."""
    script = (
        "async ([name, args]) => { await window.jupyterapp.commands.execute(name, args); }"
        if wait
        else "([name, args]) => { void window.jupyterapp.commands.execute(name, args); }"
    )
    page.evaluate(script, [name, args or {}])


def start_cell(page: Any, cell_id: str) -> None:
    """Start running one cell and return at once."""
    page.evaluate(
        """(cellId) => {
            const app = window.jupyterapp;
            const notebook = app.shell.currentWidget.content;
            notebook.deselectAll();
            notebook.activeCellIndex = notebook.widgets.findIndex(c => c.model.id === cellId);
            void app.commands.execute('notebook:run-cell');
        }""",
        cell_id,
    )


def accept_dialog(page: Any) -> None:
    page.click(".jp-Dialog .jp-mod-accept", timeout=10_000)


def wait_until_idle(page: Any, timeout: float = 60) -> None:
    """Until the kernel is idle and no cell is running or queued, for half a second."""
    page.wait_for_function(
        """() => {
            const panel = window.jupyterapp.shell.currentWidget;
            const kernel = panel.sessionContext.session?.kernel;
            const busy = !kernel || kernel.status !== 'idle' ||
                panel.content.widgets.some(c => c.model.type === 'code' &&
                                                c.model.executionState === 'running');
            const now = Date.now();
            if (busy) { window.__codeactIdleSince = undefined; return false; }
            window.__codeactIdleSince = window.__codeactIdleSince ?? now;
            return now - window.__codeactIdleSince > 500;
        }""",
        timeout=timeout * 1000,
        polling=100,
    )


def save(page: Any) -> None:
    """Save the notebook until it is clean: the extension may still write a cell's
    metadata (a status after an edit) while a save runs, which leaves it dirty again."""
    for _ in range(4):
        command(page, "docmanager:save")
        try:
            page.wait_for_function(
                "() => !window.jupyterapp.shell.currentWidget.context.model.dirty",
                timeout=5_000,
            )
            return
        except Exception:  # playwright's TimeoutError: save again
            continue
    raise AssertionError("the notebook stays dirty after four saves")


def cell_locator(page: Any, cell_id: str) -> Any:
    index = page.evaluate(
        """(cellId) => window.jupyterapp.shell.currentWidget.content.widgets
               .findIndex(c => c.model.id === cellId)""",
        cell_id,
    )
    assert index >= 0, f"no cell {cell_id}"
    return page.locator(".jp-Notebook .jp-Cell").nth(index)


def screenshot(page: Any, name: str, **options: Any) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), **options)
    return path


def outputs_text(cell: NotebookNode) -> str:
    """Every text a cell's outputs show, joined."""
    parts: list[str] = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type == "error":
            parts.append(f"{output.ename}: {output.evalue}")
        else:
            data = output.get("data", {})
            parts.append(str(data.get("text/markdown", data.get("text/plain", ""))))
    return "\n".join(parts)
