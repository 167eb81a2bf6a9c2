"""A notebook with natural-language cells runs headlessly with nbclient."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from kernel_harness import install_kernelspec, kernel_env
from model_server import ScriptedModelServer, error, text
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def notebook(*cells: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "codeact", "display_name": "CodeAct (Python 3)"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    return nb


@pytest.fixture
def environment(
    tmp_path: Path, model_server: ScriptedModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    jupyter_path = install_kernelspec(tmp_path / "prefix")
    for name, value in kernel_env(model_server.url, JUPYTER_PATH=str(jupyter_path)).items():
        monkeypatch.setenv(name, value)


@pytest.mark.usefixtures("environment")
def test_a_notebook_with_a_natural_language_cell_runs_headlessly(
    tmp_path: Path, model_server: ScriptedModelServer
) -> None:
    model_server.script(
        text("Squaring.\n```python\nsquares = [n * n for n in numbers]\nprint(squares)\n```"),
        text("The squares are 1, 4 and 9."),
    )
    nb = notebook("numbers = [1, 2, 3]", "square every number", "print(sum(squares))")
    NotebookClient(nb, timeout=60, kernel_name="codeact").execute()
    prompt_outputs = nb.cells[1].outputs
    texts = [o.get("text", "") for o in prompt_outputs if o.output_type == "stream"]
    assert texts == ["[1, 4, 9]\n"]
    markdown = [o.data["text/markdown"] for o in prompt_outputs if o.output_type == "display_data"]
    assert any("The squares are 1, 4 and 9." in m for m in markdown)
    assert nb.cells[2].outputs[0]["text"] == "14\n"
    nbformat.write(nb, tmp_path / "ran.ipynb")
    assert nbformat.read(tmp_path / "ran.ipynb", as_version=4).cells[2].outputs


@pytest.mark.usefixtures("environment")
def test_a_failing_request_stops_the_run(model_server: ScriptedModelServer) -> None:
    model_server.script(*[error(401, "bad key")] * 3)
    nb = notebook("summarize everything", "after = 1")
    with pytest.raises(CellExecutionError, match="AuthenticationFailed"):
        NotebookClient(nb, timeout=60, kernel_name="codeact").execute()
    assert nb.cells[1].outputs == []
