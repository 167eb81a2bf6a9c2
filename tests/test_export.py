"""`codeact export` (cli_export.py over export.py): notebooks → JSONL trajectories.

A notebook is run once, headlessly with nbclient against the scripted model server
(a request that debugs itself, one that fails, secrets in the environment, the
namespace and the outputs); the export runs as a subprocess, as a user runs it. The
records of a Lab-made notebook (prompt cell metadata, generated cells) are built
from that run's real records, to check the edits a user made by hand.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from kernel_harness import TEST_KEY, install_kernelspec, kernel_env
from model_server import ScriptedModelServer, text
from nbclient import NotebookClient

from codeact_kernel.context import system_prompt
from codeact_kernel.export import (
    ExportOptions,
    Found,
    as_execute,
    conversation,
    export_record,
    record_id,
    records_from_notebook,
)
from codeact_kernel.provenance import source_hash
from codeact_kernel.trajectory import Trajectory

DB_PASSWORD = "correct-horse-battery-staple-42"
ENV_KEY = "sk-envsecret-0123456789abcdefXYZ"

# The export subcommand as `codeact` registers it (cli.py calls the same `add_parser`).
EXPORT = """\
import argparse, sys
from codeact_kernel.cli_export import add_parser
parser = argparse.ArgumentParser(prog="codeact")
add_parser(parser.add_subparsers(dest="command", required=True))
args = parser.parse_args(sys.argv[1:])
sys.exit(args.func(args))
"""


def codeact_export(
    *args: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", EXPORT, "export", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def ran(
    tmp_path_factory: pytest.TempPathFactory, _model_server_session: ScriptedModelServer
) -> Path:
    """A notebook run with nbclient: a request that fails once and fixes it, one that
    runs out of steps, with secrets about."""
    server = _model_server_session
    server.reset()
    folder = tmp_path_factory.mktemp("export")
    jupyter_path = install_kernelspec(folder / "prefix")
    env = kernel_env(server.url, JUPYTER_PATH=str(jupyter_path), SOME_SERVICE_API_KEY=ENV_KEY)
    server.script(
        text("Summing.\n```python\ntotal = sum(numbers) / 0\n```"),
        text(
            "Fixed.\n```python\nimport os\ntotal = sum(numbers)\n"
            "print(total, db_password, os.environ['CODEACT_API_KEY'])\n```"
        ),
        text("The total is 6."),
        text("```python\nx = 1\n```"),
    )
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "codeact", "display_name": "CodeAct (Python 3)"}
    nb.cells = [
        nbformat.v4.new_code_cell(f"numbers = [1, 2, 3]\ndb_password = {DB_PASSWORD!r}"),
        nbformat.v4.new_code_cell("add up the numbers"),
        nbformat.v4.new_code_cell("%%codeact --max-steps 1\nkeep going"),
    ]
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        NotebookClient(nb, timeout=60, kernel_name="codeact", allow_errors=True).execute()
    server.reset()
    path = folder / "ran.ipynb"
    nbformat.write(nb, path)
    return path


def records(path: Path) -> list[Trajectory]:
    found, unreadable = records_from_notebook(nbformat.read(path, as_version=4))
    assert unreadable == []
    return [item.trajectory for item in found]


def lab_notebook(record: Trajectory) -> nbformat.NotebookNode:
    """The notebook Lab with the extension makes of `record`: prompt cell, step cells."""
    nb = nbformat.v4.new_notebook()
    prompt = nbformat.v4.new_code_cell(record.request)
    prompt.metadata["codeact"] = {
        "version": 1,
        "role": "prompt",
        "request_id": record.request_id,
        "model": record.model,
        "status": record.status,
        "trajectory": record.to_json(),
    }
    nb.cells = [prompt]
    for step in record.steps:
        if step.code is None:
            continue
        cell = nbformat.v4.new_code_cell(step.code)
        cell.metadata["codeact"] = {
            "version": 1,
            "prompt_cell_id": prompt.id,
            "request_id": record.request_id,
            "step": step.step,
            "model": record.model,
            "status": step.status,
            "error_name": None,
            "source_hash": source_hash(step.code),
            "answer": step.answer,
            "observed": step.observed,
        }
        nb.cells.append(cell)
    return nb


# --- formats -------------------------------------------------------------------------------


def check_alternation(roles: list[str], system: str, user: str, assistant: str) -> None:
    assert roles[0] == system
    rest = roles[1:]
    assert rest[0] == user and rest[-1] == assistant
    assert all(a != b for a, b in itertools.pairwise(rest)), roles


def check_codeact(line: dict[str, Any]) -> None:
    assert set(line) == {"id", "conversations", "edited_cells"}
    assert isinstance(line["id"], str) and line["id"].startswith("codeact-")
    turns = line["conversations"]
    assert all(set(turn) == {"role", "content"} for turn in turns)
    assert all(isinstance(turn["content"], str) for turn in turns)
    check_alternation([t["role"] for t in turns], "system", "user", "assistant")
    instructions = turns[0]["content"].split("## The user's namespace")[0]
    assert "<execute>" in instructions and "```python" not in instructions
    for turn in turns[1:]:
        if turn["role"] == "assistant":
            assert "```python" not in turn["content"]


def check_openai(line: dict[str, Any]) -> None:
    assert set(line) == {"messages"}
    messages = line["messages"]
    assert all(set(m) == {"role", "content"} for m in messages)
    check_alternation([m["role"] for m in messages], "system", "user", "assistant")


def check_sharegpt(line: dict[str, Any]) -> None:
    assert set(line) == {"id", "conversations", "edited_cells"}
    turns = line["conversations"]
    assert all(set(turn) == {"from", "value"} for turn in turns)
    check_alternation([t["from"] for t in turns], "system", "human", "gpt")


CHECKS = {"codeact": check_codeact, "openai": check_openai, "sharegpt": check_sharegpt}


@pytest.mark.parametrize("format", list(CHECKS))
def test_every_format_follows_its_schema(ran: Path, tmp_path: Path, format: str) -> None:
    out = tmp_path / "out.jsonl"
    done = codeact_export(ran, "-o", out, "--format", format)
    assert done.returncode == 0, done.stderr
    assert "2 of 2 request(s) written" in done.stderr
    lines = read_jsonl(out)
    assert len(lines) == 2
    for line in lines:
        CHECKS[format](line)
    text = out.read_text(encoding="utf-8")
    for secret in (DB_PASSWORD, TEST_KEY, ENV_KEY):
        assert secret not in text
    assert "[redacted]" in text


def test_the_export_is_the_conversation_the_model_saw(ran: Path, tmp_path: Path) -> None:
    first, failed = records(ran)
    assert (first.status, failed.status) == ("ok", "error")
    assert [s.status for s in first.steps] == ["error", "ok", "none"]

    out = tmp_path / "openai.jsonl"
    assert codeact_export(ran, "-o", out, "--format", "openai").returncode == 0
    messages = read_jsonl(out)[0]["messages"]
    assert messages[0] == {"role": "system", "content": first.system}
    assert messages[1:] == [{"role": m.role, "content": m.content} for m in first.messages]
    observations = [m["content"] for m in messages if m["content"].startswith("Observation:")]
    assert len(observations) == 2 and "ZeroDivisionError" in observations[0]

    out = tmp_path / "codeact.jsonl"
    assert codeact_export(ran, "-o", out).returncode == 0
    turns = read_jsonl(out)[0]["conversations"]
    assert turns[2]["content"] == "Summing.\n<execute>\ntotal = sum(numbers) / 0\n</execute>"
    assert [t["content"] for t in turns[1:]] == [
        as_execute(m["content"]) if m["role"] == "assistant" else m["content"] for m in messages[1:]
    ]
    assert turns[0]["content"].startswith(system_prompt("execute", "")[:200])


def test_filters(ran: Path, tmp_path: Path) -> None:
    out = tmp_path / "filtered.jsonl"
    done = codeact_export(
        ran, "-o", out, "--format", "openai", "--only-successful", "--drop-failed-steps"
    )
    assert done.returncode == 0, done.stderr
    assert "1 of 2 request(s) written" in done.stderr
    (line,) = read_jsonl(out)
    check_openai(line)
    contents = [m["content"] for m in line["messages"]]
    assert not any("ZeroDivisionError" in c or "/ 0" in c for c in contents)
    assert [m["role"] for m in line["messages"]] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
    ]
    assert contents[-1] == "The total is 6."


def test_ids_are_stable_and_distinct(ran: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert codeact_export(ran, "-o", first).returncode == 0
    assert codeact_export(ran, "-o", second, "--drop-failed-steps").returncode == 0
    ids = [line["id"] for line in read_jsonl(first)]
    assert len(set(ids)) == 2
    assert ids == [line["id"] for line in read_jsonl(second)]
    assert ids == [record_id(record) for record in records(ran)]


# --- notebooks made in Lab: prompt cell metadata, generated cells, edits --------------------


def test_hand_edited_and_deleted_cells_are_listed(ran: Path, tmp_path: Path) -> None:
    record = records(ran)[0]
    nb = lab_notebook(record)
    # The footer output also carries the record: the request is exported once.
    nb.cells[0].outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={"text/plain": "CodeAct · 3 steps"},
            metadata={"codeact": {"trajectory": record.to_json()}},
        )
    ]
    untouched = tmp_path / "lab.ipynb"
    nbformat.write(nb, untouched)

    edited = copy.deepcopy(nb)
    edited.cells[1].source = "total = 6  # I fixed it myself"
    del edited.cells[2]
    changed = tmp_path / "edited.ipynb"
    nbformat.write(edited, changed)

    out = tmp_path / "out.jsonl"
    assert codeact_export(untouched, changed, "-o", out).returncode == 0
    clean, hand_made = read_jsonl(out)
    assert clean["edited_cells"] == []
    assert hand_made["edited_cells"] == [
        {"step": 1, "change": "edited"},
        {"step": 2, "change": "deleted"},
    ]
    # What the model did, not what the user made of it.
    assert hand_made["conversations"] == clean["conversations"]
    assert hand_made["id"] == clean["id"]


def test_prompt_metadata_comes_first(ran: Path) -> None:
    record = records(ran)[0]
    nb = lab_notebook(record)
    stale = record.to_json()
    stale["final"] = "an older answer"
    nb.cells[0].outputs = [
        nbformat.v4.new_output(
            "display_data", data={"text/plain": "x"}, metadata={"codeact": {"trajectory": stale}}
        )
    ]
    (found,), _ = records_from_notebook(nb)
    assert found.trajectory.final == "The total is 6."


# --- secrets --------------------------------------------------------------------------------


def test_secrets_in_the_environment_are_redacted_at_export(ran: Path, tmp_path: Path) -> None:
    """A record written before a key existed still cannot carry it out."""
    nb = nbformat.read(ran, as_version=4)
    late_key = "sk-latekey-9876543210fedcbaQRS"
    footer = next(o for o in nb.cells[1].outputs if o.get("metadata", {}).get("codeact"))
    footer.metadata["codeact"]["trajectory"]["messages"][0]["content"] += f" {late_key}"
    planted = tmp_path / "planted.ipynb"
    nbformat.write(nb, planted)
    out = tmp_path / "out.jsonl"
    env = dict(os.environ, LATE_TOKEN=late_key)
    assert codeact_export(planted, "-o", out, env=env).returncode == 0
    assert late_key not in out.read_text(encoding="utf-8")


# --- usage ------------------------------------------------------------------------------------


def test_usage_errors_and_unreadable_records(ran: Path, tmp_path: Path) -> None:
    missing = codeact_export(tmp_path / "nope.ipynb", "-o", tmp_path / "x.jsonl")
    assert missing.returncode == 2 and "no such file" in missing.stderr

    plain = tmp_path / "plain.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")]), plain)
    nothing = codeact_export(plain, "-o", tmp_path / "x.jsonl")
    assert nothing.returncode == 2 and "no CodeAct requests" in nothing.stderr

    garbage = tmp_path / "garbage.ipynb"
    garbage.write_text("{not json")
    assert codeact_export(garbage).returncode == 2

    assert codeact_export(ran, "--format", "yaml").returncode == 2

    nb = nbformat.read(ran, as_version=4)
    footer = next(o for o in nb.cells[2].outputs if o.get("metadata", {}).get("codeact"))
    footer.metadata["codeact"]["trajectory"]["version"] = 99
    damaged = tmp_path / "damaged.ipynb"
    nbformat.write(nb, damaged)
    out = tmp_path / "out.jsonl"
    partial = codeact_export(damaged, plain, "-o", out)
    assert partial.returncode == 1
    assert "version 99" in partial.stderr and "plain.ipynb: no CodeAct requests" in partial.stderr
    assert len(read_jsonl(out)) == 1

    kept = ran.read_bytes()
    onto_itself = codeact_export(ran, "-o", ran)
    assert onto_itself.returncode == 2 and "one of the notebooks" in onto_itself.stderr
    assert ran.read_bytes() == kept
    not_jsonl = codeact_export(ran, "-o", tmp_path / "other.ipynb")
    assert not_jsonl.returncode == 2 and "name it .jsonl" in not_jsonl.stderr
    assert not (tmp_path / "other.ipynb").exists()

    to_stdout = codeact_export(ran, "--format", "sharegpt")
    assert to_stdout.returncode == 0 and len(to_stdout.stdout.splitlines()) == 2


def test_a_lone_surrogate_in_a_record_is_still_written_as_utf8(ran: Path, tmp_path: Path) -> None:
    # JSON may escape a lone surrogate (a tool that wrote broken text); UTF-8 cannot hold it.
    data = json.loads(ran.read_text(encoding="utf-8"))
    footer = next(o for o in data["cells"][2]["outputs"] if o.get("metadata", {}).get("codeact"))
    footer["metadata"]["codeact"]["trajectory"]["messages"][0]["content"] += "\ud800"
    odd = tmp_path / "odd.ipynb"
    odd.write_text(json.dumps(data), encoding="utf-8")  # ASCII: the surrogate stays escaped
    out = tmp_path / "out.jsonl"
    done = codeact_export(odd, "-o", out)
    assert done.returncode == 0, done.stderr
    lines = read_jsonl(out)
    assert len(lines) == 2
    assert any("\ufffd" in turn["content"] for line in lines for turn in line["conversations"])


def test_help_fits_one_screen() -> None:
    done = codeact_export("--help")
    assert done.returncode == 0
    assert "--only-successful" in done.stdout and "--drop-failed-steps" in done.stdout
    assert len(done.stdout.splitlines()) <= 45


# --- pieces -----------------------------------------------------------------------------------


def test_actions_become_execute_blocks() -> None:
    answer = "Look.\n```python\nprint(1)\n```"
    assert as_execute(answer) == "Look.\n<execute>\nprint(1)\n</execute>"
    assert as_execute("Done, see `x`.") == "Done, see `x`."
    kept = "Run:\n<execute>\nx = 1\n</execute>"
    assert as_execute(kept) == kept
    shown = "Output:\n```text\n1\n```"
    assert as_execute(shown) == shown


def test_the_codeact_format_asks_for_execute_blocks(ran: Path) -> None:
    record = records(ran)[0]
    assert record.settings["action_format"] == "markdown"
    system = conversation(record, ExportOptions("codeact"))[0].content
    assert "<execute>" in system and "```python" not in system.split("## The user's namespace")[0]
    assert "numbers" in system  # the namespace summary stays
    as_sent = conversation(record, ExportOptions("openai"))[0].content
    assert as_sent == record.system


def test_filtered_out_records_give_none(ran: Path) -> None:
    failed = records(ran)[1]
    assert export_record(Found(failed), ExportOptions(only_successful=True)) is None
    exported = export_record(Found(failed), ExportOptions())
    assert exported is not None and exported["conversations"][-1]["role"] == "assistant"


# --- the `codeact` command: a notebook made headless, exported ---------------------------------


def test_a_notebook_made_by_codeact_run_exports(
    tmp_path: Path, model_server: ScriptedModelServer
) -> None:
    jupyter_path = install_kernelspec(tmp_path / "prefix")
    env = kernel_env(model_server.url, JUPYTER_PATH=str(jupyter_path))
    model_server.script(text("Adding.\n```python\nprint(1 + 1)\n```"), text("It is 2."))
    made = tmp_path / "made.ipynb"
    command = [sys.executable, "-m", "codeact_kernel.cli"]
    ran = subprocess.run(
        [*command, "run", "add one and one", "-o", str(made)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert ran.returncode == 0, ran.stderr
    nb = nbformat.read(made, as_version=4)
    assert nb.cells[0].metadata["codeact"]["trajectory"]["final"] == "It is 2."
    (found,), unreadable = records_from_notebook(nb)
    assert unreadable == [] and found.edited_cells == ()
    for format, check in CHECKS.items():
        line = export_record(found, ExportOptions(format))  # type: ignore[arg-type]
        assert line is not None
        check(line)
        assert TEST_KEY not in json.dumps(line)

    nb.cells[1].source = "print(2)"
    nbformat.write(nb, made)
    assert codeact_export(made, "-o", tmp_path / "edited.jsonl").returncode == 0
    (line,) = read_jsonl(tmp_path / "edited.jsonl")
    assert line["edited_cells"] == [{"step": 1, "change": "edited"}]


def test_percent_export_arguments() -> None:
    from IPython.core.error import UsageError

    from codeact_kernel.commands import export_arguments

    assert export_arguments("out.jsonl") == ("out.jsonl", ExportOptions())
    path, options = export_arguments(
        "'my runs.jsonl' --format=openai --only-successful --drop-failed-steps"
    )
    assert path == "my runs.jsonl"
    assert options == ExportOptions("openai", only_successful=True, drop_failed_steps=True)
    assert export_arguments("x.jsonl --format sharegpt")[1].format == "sharegpt"
    for bad, message in (
        ("", "one file name"),
        ("a.jsonl b.jsonl", "one file name"),
        ("x.jsonl --format", "--format takes one of"),
        ("x.jsonl --verbose", "Unknown option"),
        ("'x.jsonl", "quotation"),
    ):
        with pytest.raises(UsageError, match=message):
            export_arguments(bad)
