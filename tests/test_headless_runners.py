"""papermill, nbclient and nbconvert run notebooks with requests, in both hosts.

A request that ended well never leaves an `error` output, however its failed steps
failed (a SyntaxError, an exception with its own rendering, a cell magic's error):
papermill fails a notebook on any error output. The failed steps stay visible as
IPython's traceback text on stderr. A request that failed fails the run as a code
cell's error does, and the `raises-exception` tag lets the run go on, as for code.
The simplest fixed request is in test_hostile_actions.py; the model is the scripted
loopback server.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import papermill
import pytest
from kernel_harness import HOSTS, HostName, host_notebook
from model_server import Reply, ScriptedModelServer, error, text
from nbclient import NotebookClient
from nbconvert.preprocessors import ExecutePreprocessor

pytest_plugins = ("kernel_harness",)

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def action(code: str) -> str:
    return f"```python\n{code}\n```"


# Three failed steps of different kinds, then one that works.
FAILED_THREE_WAYS_THEN_FIXED = (
    text(action("print(1 +)")),
    text(
        action(
            "class Refused(Exception):\n"
            "    def _render_traceback_(self):\n"
            "        return ['Refused: rendered by the exception']\n"
            "raise Refused()"
        )
    ),
    text(action("%%bash\nexit 3")),
    text(action("print('fixed')")),
    text("Done."),
)


def notebook(name: HostName, prompt: str, *, options: str = "") -> nbformat.NotebookNode:
    """A code cell, a request (in the host's form), and a code cell after it."""
    return host_notebook(name, "x = 1", prompt, "print('after')", options=options)


def errors(nb: nbformat.NotebookNode) -> list[str]:
    return [o.ename for cell in nb.cells for o in cell.outputs if o.output_type == "error"]


def stderr(cell: nbformat.NotebookNode) -> str:
    shown = (o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stderr")
    return ANSI.sub("", "".join(shown))


@pytest.mark.usefixtures("headless")
@pytest.mark.parametrize("name", HOSTS)
def test_papermill_passes_a_request_whose_failed_steps_failed_in_any_way(
    name: HostName, tmp_path: Path, model_server: ScriptedModelServer
) -> None:
    model_server.script(*FAILED_THREE_WAYS_THEN_FIXED)
    source, ran = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(notebook(name, "print it"), source)
    papermill.execute_notebook(str(source), str(ran), progress_bar=False, cwd=str(tmp_path))
    nb = nbformat.read(ran, as_version=4)
    assert errors(nb) == []
    shown = stderr(nb.cells[1])
    for failure in ("SyntaxError", "Refused: rendered by the exception", "CalledProcessError"):
        assert failure in shown, "each failed step stays visible"
    assert nb.cells[2].outputs[0]["text"] == "after\n"


@pytest.mark.usefixtures("headless")
@pytest.mark.parametrize("runner", ["nbclient", "nbconvert"])
def test_nbclient_and_nbconvert_pass_it_too(runner: str, model_server: ScriptedModelServer) -> None:
    model_server.script(*FAILED_THREE_WAYS_THEN_FIXED)
    nb = notebook("kernel", "print it")
    if runner == "nbclient":
        NotebookClient(nb, timeout=60).execute()
    else:
        ExecutePreprocessor(timeout=60).preprocess(nb, {})
    assert errors(nb) == []
    assert "Refused: rendered by the exception" in stderr(nb.cells[1])


FAILED_REQUESTS: dict[str, tuple[tuple[Reply, ...], str, str]] = {
    "provider": ((error(401, "bad key"),) * 3, "", "AuthenticationFailed"),
    "step budget": ((text(action("y = 2")),), "--max-steps 1", "StepBudgetExhausted"),
}


@pytest.mark.usefixtures("headless")
@pytest.mark.parametrize("name", HOSTS)
@pytest.mark.parametrize("failure", list(FAILED_REQUESTS))
def test_papermill_fails_a_request_that_failed_and_stops_there(
    name: HostName, failure: str, tmp_path: Path, model_server: ScriptedModelServer
) -> None:
    replies, options, ename = FAILED_REQUESTS[failure]
    model_server.script(*replies)
    source, ran = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(notebook(name, "compute it", options=options), source)
    with pytest.raises(papermill.PapermillExecutionError, match=ename):
        papermill.execute_notebook(str(source), str(ran), progress_bar=False, cwd=str(tmp_path))
    after = nbformat.read(ran, as_version=4).cells[-1]
    assert after.source == "print('after')"
    assert after.outputs == [] and after.execution_count is None


@pytest.mark.usefixtures("headless")
@pytest.mark.parametrize("name", HOSTS)
def test_a_failed_request_tagged_raises_exception_is_expected_like_code(
    name: HostName, tmp_path: Path, model_server: ScriptedModelServer
) -> None:
    # nbclient goes on; papermill goes on too, and still reports the error at the end,
    # exactly as for a code cell with the tag.
    nb = notebook(name, "compute it")
    nb.cells[1].metadata["tags"] = ["raises-exception"]
    model_server.script(*(error(401, "bad key"),) * 3)
    NotebookClient(nb, timeout=60).execute()
    assert errors(nb) == ["AuthenticationFailed"]
    assert nb.cells[2].outputs[0]["text"] == "after\n"

    nb = notebook(name, "compute it")
    nb.cells[1].metadata["tags"] = ["raises-exception"]
    source, ran = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, source)
    model_server.script(*(error(401, "bad key"),) * 3)
    with pytest.raises(papermill.PapermillExecutionError, match="AuthenticationFailed"):
        papermill.execute_notebook(str(source), str(ran), progress_bar=False, cwd=str(tmp_path))
    assert nbformat.read(ran, as_version=4).cells[-1].outputs[0]["text"] == "after\n"
