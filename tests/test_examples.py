"""examples/tour.ipynb runs top to bottom (with scripted model answers)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from kernel_harness import install_kernelspec, kernel_env
from model_server import ScriptedModelServer, text
from nbclient import NotebookClient

TOUR = Path(__file__).resolve().parent.parent / "examples" / "tour.ipynb"


def test_the_tour_runs(
    tmp_path: Path, model_server: ScriptedModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    jupyter_path = install_kernelspec(tmp_path / "prefix")
    for name, value in kernel_env(model_server.url, JUPYTER_PATH=str(jupyter_path)).items():
        monkeypatch.setenv(name, value)
    model_server.script(
        text(
            "```python\nimport statistics\nmean = statistics.mean(readings)\n"
            "sd = statistics.stdev(readings)\nprint(mean, sd)\n```"
        ),
        text("The mean is stored in `mean` and the standard deviation in `sd`."),
        text(
            "```python\noutliers = [r for r in readings if abs(r - mean) > 2 * sd]\n"
            "print(len(outliers))\n```"
        ),
        text("`outliers` holds them."),
        text("```python\nprint(sorted(outliers))\n```"),
        text("Printed above."),
    )
    nb = nbformat.read(TOUR, as_version=4)
    NotebookClient(nb, timeout=60, kernel_name="codeact").execute()
    code_cells = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code_cells[2].outputs[0]["text"].count("±") == 1
    assert len(model_server.requests) == 6
    assert "openai:test-model" in str(code_cells[-1].outputs)
