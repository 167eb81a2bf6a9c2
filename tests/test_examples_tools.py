"""examples/tools.ipynb runs top to bottom (with a scripted model answer): one action
composes two MCP tools of `mcp-server-time` and a @tool function in a loop."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
import pytest
from kernel_harness import install_kernelspec, kernel_env
from model_server import ScriptedModelServer, text
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "tools.ipynb"

ACTION = """\
Let me convert 15:00 UTC for each office and check it against office hours.
```python
now = mcp.time.get_current_time("UTC")
print("It is now", now["datetime"][11:16], "UTC")
for office, zone in OFFICES.items():
    local = mcp.time.convert_time("UTC", "15:00", zone)["target"]["datetime"]
    print(f"{office}: {local[11:16]} local, office hours: {within_office_hours(local)}")
```"""


def test_the_tools_example_runs(
    tmp_path: Path, model_server: ScriptedModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    jupyter_path = install_kernelspec(tmp_path / "prefix")
    # `mcp-server-time` is a console script of this environment.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    for name, value in kernel_env(
        model_server.url, JUPYTER_PATH=str(jupyter_path), PATH=path
    ).items():
        monkeypatch.setenv(name, value)
    model_server.script(text(ACTION), text("Paris and New York can join; it is midnight in Tokyo."))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="codeact").execute()
    cells = [cell for cell in nb.cells if cell.cell_type == "code"]
    outputs = [str(cell.outputs) for cell in cells]
    assert "Added MCP server 'time': 2 tools at mcp.time" in outputs[0]
    assert (
        "convert_time(source_timezone: str, time: str, target_timezone: str) -> dict"
        in (outputs[1])
    )
    assert "within_office_hours(local_time: str) -> bool" in outputs[4]
    request = outputs[5]
    assert "[mcp] time.convert_time(source_timezone='UTC', time='15:00', tar" in request
    assert "Tokyo: 00:00 local, office hours: False" in request
    assert "office hours: True" in request
    system = model_server.requests[0]["body"]["messages"][0]["content"]
    assert "Weekends and holidays are not considered." in system
    assert "def mcp.time.get_current_time(timezone: str) -> dict:" in system
    assert "running; tools: get_current_time, convert_time" in outputs[6]
