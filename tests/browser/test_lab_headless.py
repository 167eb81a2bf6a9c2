"""A notebook made by `codeact run` reads in JupyterLab as one made there (issue 11):
the same cells, records and step headers, for the same model answers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from kernel_harness import kernel_env
from model_server import ScriptedModelServer, text

from .lab_driver import (
    Lab,
    open_notebook,
    read_notebook,
    run_cell,
    save,
    screenshot,
    wait_until_idle,
    write_notebook,
)
from .lab_driver import code as code_cell

CODEACT = Path(sys.executable).with_name("codeact")
REQUEST = "make x, the answer"
REPLIES = (
    "First try.\n```python\nx = undefined_name\n```\n",
    "Fixed.\n```python\nx = 21 * 2\nprint(x)\n```\n",
    "x is 42.",
)


def shape(notebook: Any) -> list[tuple[Any, ...]]:
    """What must match: each cell's type, source, outputs' text, metadata (tags, folding)
    and record (not the ids, times and counts that differ between any two runs)."""
    cells = []
    for cell in notebook.cells:
        record = dict(cell.metadata.get("codeact") or {})
        kept = {
            key: record[key]
            for key in ("role", "step", "status", "error_name", "model", "answer", "explanation")
            if key in record
        }
        streams = [o.get("text") for o in cell.get("outputs", []) if o.output_type == "stream"]
        errors = [o.ename for o in cell.get("outputs", []) if o.output_type == "error"]
        others = {key: value for key, value in cell.metadata.items() if key != "codeact"}
        cells.append((cell.cell_type, cell.source, sorted(record), kept, others, streams, errors))
    return cells


def headers(page: Any) -> list[str]:
    page.wait_for_selector(".codeact-CellHeader", timeout=20_000)
    return [str(text) for text in page.locator(".codeact-CellHeader").all_inner_texts()]


def test_a_notebook_made_headless_reads_as_one_made_in_lab(
    page: Any, lab: Lab, model_server: ScriptedModelServer
) -> None:
    write_notebook(lab, "made-in-lab.ipynb", [code_cell("prompt", REQUEST)])
    open_notebook(page, lab, "made-in-lab.ipynb")
    model_server.script(*(text(reply) for reply in REPLIES))
    assert run_cell(page, "prompt")
    wait_until_idle(page)
    save(page)
    in_lab = read_notebook(lab, "made-in-lab.ipynb")
    lab_headers = headers(page)

    model_server.script(*(text(reply) for reply in REPLIES))
    done = subprocess.run(
        [str(CODEACT), "run", REQUEST, "-o", "made-headless.ipynb"],
        cwd=lab.root,
        env=kernel_env(model_server.url),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    headless = read_notebook(lab, "made-headless.ipynb")
    assert shape(headless) == shape(in_lab)
    # The conversation as the model saw it, the same whoever ran it.
    made_here, made_there = (
        nb.cells[0].metadata["codeact"]["trajectory"] for nb in (headless, in_lab)
    )
    assert made_here["messages"] == made_there["messages"]

    open_notebook(page, lab, "made-headless.ipynb")
    assert headers(page) == lab_headers
    assert "error: NameError" in lab_headers[0]
    screenshot(page, "made-headless.png")

    # Both export the same trajectory, in every format (the ids differ: two requests).
    formats = (("codeact", "conversations"), ("openai", "messages"), ("sharegpt", "conversations"))
    for form, key in formats:
        exported = [export(lab, name, form) for name in ("made-in-lab", "made-headless")]
        assert exported[0][key] == exported[1][key]
        assert exported[0][key], f"{form}: an empty conversation"
    codeact_record = export(lab, "made-in-lab", "codeact")
    roles = [turn["role"] for turn in codeact_record["conversations"]]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user", "assistant"]
    assert codeact_record["conversations"][2]["content"].count("<execute>") == 1
    assert codeact_record["conversations"][3]["content"].startswith("Observation:")
    assert "NameError" in codeact_record["conversations"][3]["content"]


def export(lab: Lab, name: str, form: str) -> dict[str, Any]:
    """The one record `codeact export` writes for notebook `name` in format `form`."""
    done = subprocess.run(
        [str(CODEACT), "export", f"{name}.ipynb", "-o", f"{name}.{form}.jsonl", "--format", form],
        cwd=lab.root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    (line,) = (lab.root / f"{name}.{form}.jsonl").read_text().splitlines()
    record: dict[str, Any] = json.loads(line)
    return record
