"""`codeact run`, run as a user runs it: the console script in a subprocess, a real
kernel, the scripted model server; the notebook it writes read back with nbformat.

No kernelspec is installed in these tests' Jupyter dirs (conftest isolates them), so
every run also proves that a fresh `pip install` works: the command falls back to the
package's own `codeact` kernelspec.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from kernel_harness import TEST_KEY, install_kernelspec, kernel_env
from model_server import ScriptedModelServer, error, text
from nbclient import NotebookClient

from codeact_kernel.cli import default_output
from codeact_kernel.provenance import source_hash
from codeact_kernel.version import __version__

CODEACT = Path(sys.executable).with_name("codeact")
MODEL = "openai:test-model"


def codeact(
    *args: str, cwd: Path, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the console script as its own session: no controlling terminal (/dev/tty)."""
    return subprocess.run(
        [str(CODEACT), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        start_new_session=True,
    )


@pytest.fixture
def env(model_server: ScriptedModelServer) -> dict[str, str]:
    return kernel_env(model_server.url)


def read(path: Path) -> nbformat.NotebookNode:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    return notebook


def events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def codeact_meta(cell: Any) -> dict[str, Any]:
    return dict(cell.metadata.get("codeact") or {})


SQUARE = "Computing it.\n```python\nprint(6 * 7)\n```"
ANSWER = "Six times seven is 42."


def test_the_command_is_installed_and_its_help_fits_a_screen(tmp_path: Path) -> None:
    assert CODEACT.is_file(), "pip install -e . installs the console script"
    env = dict(os.environ)
    top = codeact("--help", cwd=tmp_path, env=env)
    assert top.returncode == 0
    for needed in ("run", "export", "CODEACT_MODEL", "CODEACT_API_KEY"):
        assert needed in top.stdout
    run = codeact("run", "--help", cwd=tmp_path, env=env)
    assert run.returncode == 0
    for needed in (
        "NOTEBOOK.ipynb",
        "--model",
        "--base-url",
        "--max-steps",
        "--approval",
        "--format",
        "--cwd",
        "--timeout",
        "--replay",
        "--json",
        "130",
        "docs/cli.md",
    ):
        assert needed in run.stdout, needed
    assert len(top.stdout.splitlines()) <= 40
    assert len(run.stdout.splitlines()) <= 60
    version = codeact("--version", cwd=tmp_path, env=env)
    assert version.returncode == 0 and version.stdout == f"codeact {__version__}\n"
    # `help` as a word, as `python -m codeact_kernel help` takes it.
    assert codeact("help", cwd=tmp_path, env=env).stdout == top.stdout
    assert codeact("help", "run", cwd=tmp_path, env=env).stdout == run.stdout


@pytest.mark.parametrize("args", [("instal",), ("runn", "x"), ("help", "nothing"), ("--bogus",)])
def test_an_unknown_command_or_option_is_refused_naming_the_commands(
    tmp_path: Path, env: dict[str, str], args: tuple[str, ...]
) -> None:
    done = codeact(*args, cwd=tmp_path, env=env)
    assert done.returncode == 2 and done.stdout == ""
    assert "usage: codeact" in done.stderr and args[-1] in done.stderr
    if not args[0].startswith("-"):
        assert "(choose from 'run', 'export', 'bench')" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_request_becomes_the_notebook_lab_would_make(
    tmp_path: Path, model_server: ScriptedModelServer, env: dict[str, str]
) -> None:
    model_server.script(text(SQUARE), text(ANSWER))
    done = codeact("run", "multiply six by seven", "-o", "out.ipynb", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    notebook = read(tmp_path / "out.ipynb")
    assert notebook.metadata.kernelspec.name == "codeact"
    prompt, action, answer = notebook.cells
    assert prompt.source == "multiply six by seven"
    assert isinstance(prompt.execution_count, int)
    marked = codeact_meta(prompt)
    assert marked["role"] == "prompt" and marked["status"] == "ok" and marked["model"] == MODEL
    assert marked["trajectory"]["version"] == 1
    assert marked["trajectory"]["request_id"] == marked["request_id"]
    assert action.cell_type == "code" and action.source == "print(6 * 7)"
    assert action.outputs == [nbformat.v4.new_output("stream", name="stdout", text="42\n")]
    assert action.execution_count == prompt.execution_count + 1
    record = codeact_meta(action)
    assert record["prompt_cell_id"] == prompt.id
    assert record["request_id"] == marked["request_id"]
    assert (record["step"], record["status"], record["model"]) == (1, "ok", MODEL)
    assert record["source_hash"] == source_hash(action.source)
    assert record["answer"] == SQUARE
    assert "42" in record["observed"]
    assert answer.cell_type == "markdown" and answer.source == ANSWER
    assert codeact_meta(answer) == {
        "version": 1,
        "role": "answer",
        "prompt_cell_id": prompt.id,
        "request_id": marked["request_id"],
        "model": MODEL,
    }
    # Progress as in terminal IPython: the prose, the action, its output, a footer.
    assert "Computing it." in done.stderr
    assert "--- step 1 ---\nprint(6 * 7)\n" in done.stderr
    assert "42\n" in done.stderr
    assert "CodeAct · 1 step" in done.stderr
    assert done.stdout == ""
    assert TEST_KEY not in (tmp_path / "out.ipynb").read_text()


def test_an_answer_cut_at_the_output_limit_is_told_on_the_terminal(
    tmp_path: Path, model_server: ScriptedModelServer, env: dict[str, str]
) -> None:
    model_server.script(text("Computing it.\n```python\nprint(6 *", finish="length"), text(ANSWER))
    done = codeact("run", "multiply six by seven", "-o", "out.ipynb", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "Computing it." in done.stderr
    assert "cut off" in done.stderr, done.stderr
    assert "--- step" not in done.stderr, "a cut action never runs"


def test_json_events_parse_and_match_the_notebook(
    tmp_path: Path, model_server: ScriptedModelServer, env: dict[str, str]
) -> None:
    model_server.script(text(SQUARE), text(ANSWER))
    done = codeact("run", "multiply six by seven", "-o", "o.ipynb", "--json", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    stream = events(done.stdout)
    kinds = [event["event"] for event in stream]
    for kind in ("request_started", "text_delta", "action", "observation", "usage", "finished"):
        assert kind in kinds, kind
    assert kinds[-1] == "notebook_written"
    assert kinds.index("request_started") < kinds.index("action") < kinds.index("observation")
    assert kinds.index("observation") < kinds.index("finished")
    notebook = read(tmp_path / "o.ipynb")
    prompt, action, answer = notebook.cells
    by_kind = {event["event"]: event for event in stream}
    assert by_kind["request_started"]["cell_id"] == prompt.id
    assert by_kind["request_started"]["request_id"] == codeact_meta(prompt)["request_id"]
    assert by_kind["action"]["code"] == action.source
    assert by_kind["action"]["action_cell_id"] == action.id
    observation = by_kind["observation"]
    assert observation["status"] == "ok"
    assert observation["execution_count"] == action.execution_count
    assert observation["observed"] == codeact_meta(action)["observed"]
    assert by_kind["finished"]["answer"] == answer.source
    assert by_kind["finished"]["steps"] == 1
    assert "Computing it." in "".join(e["text"] for e in stream if e["event"] == "text_delta")
    written = by_kind["notebook_written"]
    assert written["path"] == "o.ipynb" and written["cells"] == 3 and written["exit_status"] == 0
    assert done.stderr == ""


def make_notebook(path: Path, *sources: str) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(notebook, path)


DOUBLE = "Doubling.\n```python\ny = x * 2\nprint(y)\n```"


def test_a_notebook_runs_code_as_code_and_prompts_ask_the_model(
    tmp_path: Path, model_server: ScriptedModelServer, env: dict[str, str]
) -> None:
    make_notebook(tmp_path / "in.ipynb", "x = 5", "double x", "print(y + 1)")
    model_server.script(text(DOUBLE), text("y is 10."))
    done = codeact("run", "in.ipynb", "-o", "out.ipynb", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    notebook = read(tmp_path / "out.ipynb")
    user, prompt, action, answer, after = notebook.cells
    assert (user.source, user.execution_count, user.outputs) == ("x = 5", 1, [])
    assert codeact_meta(prompt)["role"] == "prompt"
    assert action.outputs[0]["text"] == "10\n"
    assert answer.source == "y is 10."
    assert after.outputs[0]["text"] == "11\n"
    assert after.execution_count > action.execution_count
    assert read(tmp_path / "in.ipynb").cells[0].execution_count is None  # -o leaves it

    # Again, without --replay: the prompt asks the model, its old cells are replaced.
    model_server.reset()
    model_server.script(text("Again.\n```python\ny = x * 3\n```"), text("y is 15 now."))
    again = codeact("run", "out.ipynb", cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stderr
    rerun = read(tmp_path / "out.ipynb")
    sources = [cell.source for cell in rerun.cells]
    assert sources == ["x = 5", "double x", "y = x * 3", "y is 15 now.", "print(y + 1)"]
    assert rerun.cells[1].id == prompt.id
    assert codeact_meta(rerun.cells[2])["request_id"] != codeact_meta(action)["request_id"]
    assert rerun.cells[4].outputs[0]["text"] == "16\n"
    assert len(model_server.requests) == 2


def test_replay_reruns_the_generated_cells_without_the_model(
    tmp_path: Path, model_server: ScriptedModelServer, env: dict[str, str]
) -> None:
    make_notebook(tmp_path / "nb.ipynb", "x = 5", "double x", "print(y + 1)", "what is x?")
    model_server.script(text(DOUBLE), text("y is 10."), text("x is five."))
    assert codeact("run", "nb.ipynb", cwd=tmp_path, env=env).returncode == 0
    before = read(tmp_path / "nb.ipynb")
    assert before.cells[5].source == "what is x?"  # answered in prose: no cells of its own
    model_server.reset()
    done = codeact("run", "nb.ipynb", "--replay", "--json", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert model_server.requests == []
    notebook = read(tmp_path / "nb.ipynb")
    assert [c.source for c in notebook.cells] == [c.source for c in before.cells]
    assert [c.id for c in notebook.cells] == [c.id for c in before.cells]
    prompt, action, last = notebook.cells[1], notebook.cells[2], notebook.cells[4]
    assert codeact_meta(prompt)["trajectory"] == codeact_meta(before.cells[1])["trajectory"]
    assert any("replayed without the model" in str(o.get("data")) for o in prompt.outputs)
    footer = [o for o in before.cells[1].outputs if "CodeAct · " in str(o.get("data"))]
    assert footer and footer[0] in prompt.outputs  # its earlier outputs, shown again
    assert codeact_meta(action)["status"] == "ok"
    assert action.outputs[0]["text"] == "10\n"
    assert last.outputs[0]["text"] == "11\n"
    prose = notebook.cells[5]
    assert any("x is five." in str(o.get("data")) for o in prose.outputs)
    assert codeact_meta(prose)["trajectory"] == codeact_meta(before.cells[5])["trajectory"]
    stream = events(done.stdout)
    kinds = [event["event"] for event in stream]
    assert kinds.count("replayed") == 2 and "request_started" not in kinds


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "required"),
        (("missing.ipynb",), "no such notebook"),
        (("a.ipynb", "b.ipynb"), "one notebook"),
        (("do it", "--replay"), "give a notebook"),
        (("do it", "--max-steps", "0"), "at least 1"),
        (("do it", "--timeout", "-1"), "positive"),
        (("do it", "--model", "gpt-4o"), "provider:model"),
        (("do it", "--format", "json"), "invalid choice"),
        (("do it", "-o", "nowhere/out.ipynb"), "not a directory"),
        (("do it", "-o", "."), "is a directory"),
    ],
)
def test_usage_errors_exit_2_before_any_model_call(
    tmp_path: Path,
    model_server: ScriptedModelServer,
    env: dict[str, str],
    args: tuple[str, ...],
    message: str,
) -> None:
    done = codeact("run", *args, cwd=tmp_path, env=env, timeout=60)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert model_server.requests == []
    assert list(tmp_path.iterdir()) == []


def test_no_command_and_a_broken_notebook_are_usage_errors(
    tmp_path: Path, env: dict[str, str]
) -> None:
    assert codeact(cwd=tmp_path, env=env).returncode == 2
    (tmp_path / "broken.ipynb").write_text("{not json")
    done = codeact("run", "broken.ipynb", cwd=tmp_path, env=env)
    assert done.returncode == 2 and "not a notebook" in done.stderr


def test_a_notebook_that_breaks_the_schema_is_refused_before_the_model_works(
    tmp_path: Path, model_server: ScriptedModelServer, env: dict[str, str]
) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("explain x")]
    notebook.cells[0].metadata["tags"] = "not-a-list"  # another tool's mistake
    nbformat.write(notebook, tmp_path / "odd.ipynb", version=nbformat.NO_CONVERT)
    before = (tmp_path / "odd.ipynb").read_bytes()
    done = codeact("run", "odd.ipynb", cwd=tmp_path, env=env)
    assert done.returncode == 2, done.stderr
    assert "not a valid notebook" in done.stderr and "cells/0/metadata/tags" in done.stderr
    assert model_server.requests == []
    assert (tmp_path / "odd.ipynb").read_bytes() == before


def test_an_output_whose_folder_cannot_hold_it_is_a_usage_error(
    tmp_path: Path, model_server: ScriptedModelServer, env: dict[str, str]
) -> None:
    # A file where the folder should be: unwritable for root too (a read-only directory
    # is not, so that branch is left to os.access).
    (tmp_path / "notes.txt").write_text("mine")
    done = codeact("run", "do it", "-o", "notes.txt/out.ipynb", cwd=tmp_path, env=env)
    assert done.returncode == 2 and "is not a directory" in done.stderr
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert model_server.requests == []


def test_approval_ask_without_a_terminal_fails_before_asking_the_model(
    tmp_path: Path, model_server: ScriptedModelServer, env: dict[str, str]
) -> None:
    done = codeact("run", "delete the temp files", "--approval", "ask", cwd=tmp_path, env=env)
    assert done.returncode == 2
    assert "no terminal" in done.stderr and "--approval auto" in done.stderr
    assert model_server.requests == []
    from_env = codeact("run", "tidy up", cwd=tmp_path, env={**env, "CODEACT_APPROVAL": "ask"})
    assert from_env.returncode == 2 and "no terminal" in from_env.stderr


def test_a_failed_request_exits_1_and_still_writes_the_notebook(
    tmp_path: Path, model_server: ScriptedModelServer, env: dict[str, str]
) -> None:
    model_server.script(*[error(401, "bad key")] * 3)
    done = codeact("run", "summarize everything", "-o", "f.ipynb", "--json", cwd=tmp_path, env=env)
    assert done.returncode == 1
    (prompt,) = read(tmp_path / "f.ipynb").cells
    assert codeact_meta(prompt)["status"] == "error"
    assert any(o.output_type == "error" for o in prompt.outputs)
    stream = events(done.stdout)
    failed = [e for e in stream if e["event"] == "failed"]
    assert failed and failed[0]["error"]["ename"] == "AuthenticationFailed"
    assert stream[-1] == {
        "event": "notebook_written",
        "path": "f.ipynb",
        "cells": 1,
        "exit_status": 1,
    }


def test_a_kernel_that_dies_mid_request_fails_the_request_in_the_notebook(
    tmp_path: Path, model_server: ScriptedModelServer, env: dict[str, str]
) -> None:
    model_server.script(text("Leaving.\n```python\nimport os\nos._exit(1)\n```"), text("unused"))
    done = codeact("run", "stop the kernel", "-o", "d.ipynb", "--json", cwd=tmp_path, env=env)
    assert done.returncode == 1
    assert "The kernel died" in done.stderr
    prompt, action = read(tmp_path / "d.ipynb").cells
    assert codeact_meta(prompt)["role"] == "prompt"
    assert codeact_meta(prompt)["status"] == "error"
    assert codeact_meta(action)["request_id"] == codeact_meta(prompt)["request_id"]
    assert codeact_meta(action)["status"] == "interrupted"
    failed = [e for e in events(done.stdout) if e["event"] == "failed"]
    assert [e["error"]["ename"] for e in failed] == ["DeadKernelError"]
    assert events(done.stdout)[-1]["exit_status"] == 1


def test_a_failing_code_cell_stops_the_run_unless_it_is_expected_to(
    tmp_path: Path, env: dict[str, str]
) -> None:
    make_notebook(tmp_path / "nb.ipynb", "1 / 0", "print('after')")
    notebook = nbformat.read(tmp_path / "nb.ipynb", as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell("undefined_name"))
    nbformat.write(notebook, tmp_path / "nb.ipynb")
    done = codeact("run", "nb.ipynb", cwd=tmp_path, env=env)
    assert done.returncode == 1
    ran = read(tmp_path / "nb.ipynb")
    assert ran.cells[0].outputs[0]["ename"] == "ZeroDivisionError"
    assert ran.cells[1].execution_count is None and ran.cells[1].outputs == []

    ran.cells[0].metadata["tags"] = ["raises-exception"]
    nbformat.write(ran, tmp_path / "nb.ipynb")
    done = codeact("run", "nb.ipynb", cwd=tmp_path, env=env)
    assert done.returncode == 1  # the last cell's NameError is not expected
    ran = read(tmp_path / "nb.ipynb")
    assert ran.cells[1].outputs[0]["text"] == "after\n"
    assert ran.cells[2].outputs[0]["ename"] == "NameError"


SLEEPY = "Waiting.\n```python\nimport time\nprint('sleeping', flush=True)\ntime.sleep(60)\n```"


def started(process: subprocess.Popen[str], kind: str, timeout: float = 60) -> list[str]:
    """Read --json lines until an event of `kind` arrives."""
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if json.loads(line)["event"] == kind:
            return lines
    raise AssertionError(f"no {kind} event in {lines}")


def test_ctrl_c_interrupts_the_kernel_and_writes_the_partial_notebook(
    tmp_path: Path, model_server: ScriptedModelServer, env: dict[str, str]
) -> None:
    model_server.script(text(SLEEPY), text("unused"))
    process = subprocess.Popen(
        [str(CODEACT), "run", "wait a minute", "-o", "p.ipynb", "--json"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        started(process, "action")
        time.sleep(0.5)
        began = time.monotonic()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert time.monotonic() - began < 30
    assert "interrupted" in err
    prompt, action = read(tmp_path / "p.ipynb").cells
    assert codeact_meta(action)["status"] == "interrupted"
    assert action.outputs[0]["text"] == "sleeping\n"
    assert codeact_meta(prompt)["status"] == "interrupted"
    assert json.loads(out.splitlines()[-1])["exit_status"] == 130


def test_ctrl_c_while_the_command_loads_exits_130_without_a_traceback(
    tmp_path: Path, model_server: ScriptedModelServer, env: dict[str, str]
) -> None:
    # Loading the command and checking its settings takes about a second: an impatient
    # Ctrl-C lands there, before any kernel starts.
    process = subprocess.Popen(
        [str(CODEACT), "run", "what is six times seven", "-o", "c.ipynb"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    time.sleep(0.4)
    process.send_signal(signal.SIGINT)
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    assert model_server.requests == []


def test_json_read_by_a_reader_that_stops_early_still_writes_the_notebook(
    tmp_path: Path, model_server: ScriptedModelServer, env: dict[str, str]
) -> None:
    model_server.script(text(SQUARE), text(ANSWER))
    process = subprocess.Popen(
        [str(CODEACT), "run", "what is six times seven", "-o", "h.ipynb", "--json"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None and process.stderr is not None
    try:
        first = json.loads(process.stdout.readline())  # `| head -1`
        process.stdout.close()
        err = process.stderr.read()
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert first["event"] == "cell_started"
    assert process.returncode == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err
    prompt, action, answer = read(tmp_path / "h.ipynb").cells
    assert codeact_meta(prompt)["status"] == "ok" and answer.source == ANSWER
    assert action.outputs[0]["text"] == "42\n"


def test_sigterm_writes_the_partial_notebook_and_exits_143(
    tmp_path: Path, model_server: ScriptedModelServer, env: dict[str, str]
) -> None:
    # `timeout 60 codeact run …`, `kill`, a cancelled CI job: as Ctrl-C, nothing lost.
    model_server.script(text(SLEEPY), text("unused"))
    process = subprocess.Popen(
        [str(CODEACT), "run", "wait a minute", "-o", "k.ipynb", "--json"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        started(process, "action")
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 143, err
    assert "terminated" in err
    prompt, action = read(tmp_path / "k.ipynb").cells
    assert codeact_meta(action)["status"] == "interrupted"
    assert action.outputs[0]["text"] == "sleeping\n"
    assert codeact_meta(prompt)["status"] == "interrupted"
    assert json.loads(out.splitlines()[-1])["exit_status"] == 143


def test_timeout_interrupts_the_run_and_exits_1(
    tmp_path: Path, model_server: ScriptedModelServer, env: dict[str, str]
) -> None:
    model_server.script(text(SLEEPY), text("unused"))
    began = time.monotonic()
    done = codeact("run", "wait a minute", "-o", "t.ipynb", "--timeout", "8", cwd=tmp_path, env=env)
    assert done.returncode == 1
    assert "--timeout 8 s passed" in done.stderr
    assert time.monotonic() - began < 50
    prompt, action = read(tmp_path / "t.ipynb").cells
    assert codeact_meta(action)["status"] == "interrupted"
    assert codeact_meta(prompt)["status"] == "interrupted"


def test_a_request_that_reads_as_code_still_goes_to_the_model(
    tmp_path: Path, model_server: ScriptedModelServer, env: dict[str, str]
) -> None:
    model_server.script(text("Here is help: ask me anything."))
    done = codeact("run", "help", "-o", "h.ipynb", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    (prompt,) = read(tmp_path / "h.ipynb").cells
    assert prompt.source == "%%codeact\nhelp"
    assert len(model_server.requests) == 1


def test_the_default_output_never_overwrites_a_notebook(tmp_path: Path) -> None:
    first = default_output("20260101-120000", tmp_path)
    assert first == tmp_path / "codeact-20260101-120000.ipynb"
    first.write_text("{}")
    second = default_output("20260101-120000", tmp_path)
    assert second == tmp_path / "codeact-20260101-120000-2.ipynb"
    second.write_text("{}")
    assert default_output("20260101-120000", tmp_path).name == "codeact-20260101-120000-3.ipynb"
    assert default_output("20260101-120000") == Path("codeact-20260101-120000.ipynb")


def test_a_request_that_ends_with_a_notebook_name_is_a_request(
    tmp_path: Path, model_server: ScriptedModelServer, env: dict[str, str]
) -> None:
    model_server.script(text("There is no such notebook here."))
    request = "count the cells of analysis.ipynb"
    done = codeact("run", request, "-o", "r.ipynb", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    (prompt,) = read(tmp_path / "r.ipynb").cells
    assert prompt.source == request
    assert len(model_server.requests) == 1
    # A notebook whose name has a space is still a notebook when it exists.
    spaced = tmp_path / "my analysis.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")]), spaced)
    rerun = codeact("run", "my analysis.ipynb", cwd=tmp_path, env=env)
    assert rerun.returncode == 0, rerun.stderr
    assert read(spaced).cells[0].outputs[0]["data"]["text/plain"] == "2"
    assert len(model_server.requests) == 1


def test_papermill_and_nbclient_run_a_notebook_made_headless(
    tmp_path: Path,
    model_server: ScriptedModelServer,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    failing = "Trying.\n```python\nundefined_name\n```"
    model_server.script(text(failing), text(SQUARE), text(ANSWER))
    done = codeact("run", "multiply six by seven", "-o", "m.ipynb", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    notebook = read(tmp_path / "m.ipynb")
    assert [cell.metadata.get("tags") for cell in notebook.cells[1:3]] == [
        ["raises-exception"],
        None,
    ]
    # Run All elsewhere re-runs every cell: the prompt asks again, the failed attempt is
    # expected to fail, and the run goes on.
    monkeypatch.setenv("JUPYTER_PATH", str(install_kernelspec(tmp_path / "prefix")))
    for name, value in env.items():
        if name.startswith("CODEACT_"):
            monkeypatch.setenv(name, value)
    model_server.script(text(ANSWER))
    NotebookClient(notebook, timeout=60, kernel_name="codeact").execute()
    assert notebook.cells[2].outputs[0]["text"] == "42\n"
    # papermill fails a run on any error output, tags or not (as for a notebook made in
    # Lab): it gets one whose steps all succeeded.
    model_server.script(text(SQUARE), text(ANSWER))
    done = codeact("run", "multiply six by seven", "-o", "ok.ipynb", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    model_server.script(text(ANSWER))
    import papermill

    papermill.execute_notebook(
        str(tmp_path / "ok.ipynb"), str(tmp_path / "pm.ipynb"), kernel_name="codeact"
    )
    assert read(tmp_path / "pm.ipynb").cells[1].outputs[0]["text"] == "42\n"


def test_approval_ask_asks_on_the_terminal(
    tmp_path: Path, model_server: ScriptedModelServer, env: dict[str, str]
) -> None:
    pexpect = pytest.importorskip("pexpect")
    model_server.script(
        text("Removing.\n```python\nprint('removed')\n```"),
        text(SQUARE),
        text(ANSWER),
    )
    child = pexpect.spawn(
        str(CODEACT),
        ["run", "tidy up, then multiply", "-o", "a.ipynb", "--approval", "ask", "--json"],
        cwd=str(tmp_path),
        env={**env, "TERM": "dumb"},
        encoding="utf-8",
        timeout=60,
    )
    try:
        child.expect(r"Run step 1\? \[Y\]es / \[n\]o \(skip\) / \[s\]top: ")
        child.sendline("n")
        child.expect(r"Run step 2\? ")
        child.sendline("y")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, child.before
    prompt, skipped, action, answer = read(tmp_path / "a.ipynb").cells
    assert codeact_meta(prompt)["status"] == "ok"
    assert skipped.cell_type == "raw" and codeact_meta(skipped)["status"] == "skipped"
    assert action.outputs[0]["text"] == "42\n" and codeact_meta(action)["status"] == "ok"
    assert answer.source == ANSWER
