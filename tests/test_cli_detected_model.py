"""`codeact run` without CODEACT_MODEL: the model the kernel detects is the one named in
the progress, the JSON events and every cell's metadata, as the Lab extension records it.

(To join test_cli.py, which drives the console script the same way.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
from kernel_harness import kernel_env
from model_server import ScriptedModelServer, text

CODEACT = Path(sys.executable).with_name("codeact")


def test_the_detected_model_is_named_in_the_notebook_and_the_events(
    tmp_path: Path, model_server: ScriptedModelServer
) -> None:
    model_server.models = ["served-model"]
    model_server.script(text("Computing.\n```python\nprint(6 * 7)\n```"), text("It is 42."))
    done = subprocess.run(
        [str(CODEACT), "run", "multiply six by seven", "-o", "out.ipynb", "--json"],
        cwd=tmp_path,
        env=kernel_env(None, CODEACT_BASE_URL=model_server.url),
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,
    )
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    started = next(event for event in events if event["event"] == "request_started")
    assert started["model"] == "openai:served-model"
    notebook = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    prompt, action, answer = notebook.cells
    for cell in (prompt, action, answer):
        assert cell.metadata["codeact"]["model"] == "openai:served-model"
    assert prompt.metadata["codeact"]["trajectory"]["model"] == "openai:served-model"
    footer = prompt.outputs[-1]["data"]["text/markdown"]
    assert footer.rstrip().endswith("· openai:served-model</sub>")
    assert [request["body"]["model"] for request in model_server.requests] == ["served-model"] * 2
