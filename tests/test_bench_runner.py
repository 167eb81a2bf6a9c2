"""`codeact bench`, run as a user runs it, against the reference model server.

The command runs in a subprocess (`python -m codeact_kernel.bench.cli`, the same
parser `codeact bench` uses) with real `codeact` kernels, local or on a real
`jupyter kernelgateway` on 127.0.0.1; the reference model server
(tests/reference_server.py) answers every task as its reference solution does, or
misbehaves for chosen tasks. A small subset keeps it fast: the first task of each tool
set and the sales scenario (four questions sharing one namespace).
"""

from __future__ import annotations

import csv
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from kernel_harness import TEST_KEY
from model_server import ScriptedModelServer, text
from reference_server import ReferenceModelServer

from codeact_kernel.bench.episode import Episode
from codeact_kernel.bench.reference import reference_turns
from codeact_kernel.bench.report import summarize
from codeact_kernel.bench.tasks import all_tasks, get_task

pytest_plugins = ("kernel_harness",)

TOOLS = "tools/*-01"
SCENARIO = "data/sales-*"
MODEL = "openai:reference"
MODES = ("code", "json", "text")


@pytest.fixture(scope="module")
def reference() -> Iterator[ReferenceModelServer]:
    with ReferenceModelServer() as server:
        yield server


@pytest.fixture
def server(reference: ReferenceModelServer) -> Iterator[ReferenceModelServer]:
    """The reference server, behaving and with an empty log, per test."""
    reference.reset()
    reference.behaviours.clear()
    yield reference
    reference.behaviours.clear()


def bench(
    server: ScriptedModelServer,
    jupyter_path: Path,
    out: Path,
    *args: str,
    python: tuple[str, ...] = ("-m", "codeact_kernel.bench.cli"),
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """`codeact bench --model … --base-url … --out OUT ARGS` in a subprocess."""
    env = {
        **os.environ,
        "JUPYTER_PATH": str(jupyter_path),
        "CODEACT_API_KEY": TEST_KEY,
    }
    command = [
        sys.executable,
        *python,
        "--model",
        MODEL,
        "--base-url",
        server.url,
        "--out",
        str(out),
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)


def results(out: Path) -> list[Episode]:
    lines = (out / "results.jsonl").read_text(encoding="utf-8").splitlines()
    return [Episode.from_json(json.loads(line)) for line in lines if line.strip()]


def by_key(episodes: list[Episode]) -> dict[tuple[str, str], Episode]:
    return {(e.task, e.mode): e for e in episodes}


def comparable(episode: Episode) -> dict[str, Any]:
    """An episode without what no two runs share: its timing, and the temporary directory
    a data scenario writes its CSV to (the namespace summary shows its path)."""
    data = episode.to_json()
    del data["seconds"]
    return json.loads(re.sub(r"codeact-bench-\w+", "codeact-bench-TMP", json.dumps(data)))


def summary_rows(out: Path) -> dict[str, dict[str, str]]:
    with (out / "summary.csv").open(encoding="utf-8") as file:
        return {row["mode"]: row for row in csv.DictReader(file)}


def asked(server: ReferenceModelServer, task_id: str) -> int:
    """How many model requests posed this task."""
    prompt = next(task.prompt for task in all_tasks() if task.id == task_id)
    return sum(prompt in json.dumps(request["body"]) for request in server.requests)


def tool_ids() -> list[str]:
    return [task.id for task in all_tasks("tools", TOOLS)]


def scenario_ids() -> list[str]:
    return [task.id for task in all_tasks("data", SCENARIO)]


# --- the reference solutions score 100% in every mode -----------------------------------


def test_reference_solutions_score_full_marks_in_every_mode(
    server: ReferenceModelServer, jupyter_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    done = bench(server, jupyter_path, out, "--tasks", TOOLS, SCENARIO, "--parallel", "2")
    assert done.returncode == 0, done.stderr

    episodes = results(out)
    expected = {(t, m) for t in tool_ids() for m in ("code", "json", "text")}
    expected |= {(t, "code") for t in scenario_ids()}
    assert set(by_key(episodes)) == expected
    assert len(episodes) == len(expected), "one line per episode"
    failed = [(e.task, e.mode, e.error, e.detail) for e in episodes if not e.success]
    assert not failed
    for episode in episodes:
        assert episode.turns >= 2, episode  # every task needs a tool call, then the answer
        assert episode.input_tokens > 0 and episode.output_tokens > 0
        conversation = episode.trajectory["conversations"]
        assert episode.trajectory["id"] == f"{episode.task}#{episode.mode}"
        assert conversation[0]["role"] == "system"
        assert [m["role"] for m in conversation[1:3]] == ["user", "assistant"]
        assert conversation[-1]["role"] == "assistant"
        assert "Answer:" in conversation[-1]["content"]
        assert TEST_KEY not in json.dumps(episode.to_json())
    code = by_key(episodes)[(tool_ids()[0], "code")]
    assert "<execute>" in code.trajectory["conversations"][2]["content"]
    assert code.trajectory["conversations"][3]["content"].startswith("Observation:")

    rows = summary_rows(out)
    assert set(rows) == {"code", "json", "text"}
    for mode, row in rows.items():
        assert row["success_pct"] == "100.0", row
        assert int(row["episodes"]) == sum(1 for e in episodes if e.mode == mode)
    for heading in ("mode", "success %", "mean turns", "mean tokens", "turn limit"):
        assert heading in done.stdout
    assert "| code |" in (out / "summary.md").read_text()
    assert (out / "plot.png").read_bytes().startswith(b"\x89PNG")
    assert "<svg" in (out / "plot.svg").read_text()
    assert f"[{len(expected)}/{len(expected)}]" in done.stderr, done.stderr
    # Every mode, the kernel's included, asked for temperature 0.
    assert server.requests
    assert {request["body"].get("temperature") for request in server.requests} == {0.0}


# --- failures are classified ----------------------------------------------------------------


def test_wrong_answers_invalid_actions_and_turn_limits_are_told_apart(
    server: ReferenceModelServer, jupyter_path: Path, tmp_path: Path
) -> None:
    wrong, invalid, endless, good = tool_ids()[:4]
    server.misbehave(wrong, "wrong")
    server.misbehave(invalid, "invalid")
    server.misbehave(endless, "endless")
    out = tmp_path / "run"
    tasks = [wrong, invalid, endless, good]
    # Room for every reference solution of these tasks, and not one turn more.
    limit = max(len(reference_turns(get_task(t), m)) for t in tasks for m in MODES)
    done = bench(
        server, jupyter_path, out, "--tasks", *tasks, "--max-turns", str(limit), "--parallel", "3"
    )
    assert done.returncode == 0, done.stderr

    episodes = by_key(results(out))
    for mode in ("code", "json", "text"):
        assert episodes[(wrong, mode)].error == "wrong_answer", mode
        assert episodes[(wrong, mode)].answer == "not the expected answer"
        assert episodes[(invalid, mode)].error == "invalid_action", mode
        assert episodes[(endless, mode)].error == "turn_limit", mode
        assert episodes[(endless, mode)].turns == limit, mode
        assert episodes[(good, mode)].success, episodes[(good, mode)]
    rows = summary_rows(out)
    for mode in ("code", "json", "text"):
        assert rows[mode]["success_pct"] == "25.0"
        assert (rows[mode]["wrong_answer"], rows[mode]["invalid_action"]) == ("1", "1")
        assert (rows[mode]["turn_limit"], rows[mode]["provider_error"]) == ("1", "0")


def test_a_failing_endpoint_is_a_provider_error_not_the_models_failure(
    server: ReferenceModelServer, jupyter_path: Path, tmp_path: Path
) -> None:
    broken, good = tool_ids()[:2]
    server.misbehave(broken, "error")
    out = tmp_path / "run"
    done = bench(server, jupyter_path, out, "--tasks", broken, good, "--modes", "code", "json")
    assert done.returncode == 0, done.stderr

    episodes = by_key(results(out))
    for mode in ("code", "json"):
        assert episodes[(broken, mode)].error == "provider_error", mode
        assert "500" in (episodes[(broken, mode)].detail or "") or "Server" in (
            episodes[(broken, mode)].detail or ""
        )
        # Retried per the request policy (the providers' retries) before giving up.
        assert episodes[(good, mode)].success
    rows = summary_rows(out)
    assert rows["code"]["success_pct"] == "100.0", "a provider error is not counted against"
    assert rows["code"]["provider_error"] == "1"
    requests = asked(server, broken)
    assert requests >= 2 * 2, f"each mode retried the failing request ({requests} requests)"

    # --resume runs provider errors again (they are no verdict) and nothing else.
    server.behaviours.clear()
    server.reset()
    again = bench(
        server, jupyter_path, out, "--tasks", broken, good, "--modes", "code", "json", "--resume"
    )
    assert again.returncode == 0, again.stderr
    assert asked(server, good) == 0
    assert all(e.success for e in results(out)[-2:])
    assert summary_rows(out)["json"]["success_pct"] == "100.0"


def test_a_kernel_killed_by_its_action_is_reported_and_left_for_resume(
    model_server: ScriptedModelServer, jupyter_path: Path, tmp_path: Path
) -> None:
    model_server.script(text("Stopping.\n```python\nimport os\nos._exit(3)\n```"))
    out = tmp_path / "run"
    started = time.monotonic()
    done = bench(model_server, jupyter_path, out, "--tasks", tool_ids()[0], "--modes", "code")
    assert done.returncode == 1, done.stderr
    assert time.monotonic() - started < 60, "the dead kernel was waited for"
    assert f"could not run code {tool_ids()[0]}: the kernel died" in done.stderr
    assert results(out) == [], "nothing is recorded for it: --resume runs it again"


# --- resume, parallel ------------------------------------------------------------------------


def test_resume_makes_no_model_call_for_episodes_already_done(
    server: ReferenceModelServer, jupyter_path: Path, tmp_path: Path
) -> None:
    first, second = tool_ids()[:2]
    out = tmp_path / "run"
    done = bench(server, jupyter_path, out, "--tasks", first, "--modes", "code", "text")
    assert done.returncode == 0, done.stderr
    assert asked(server, first) > 0
    before = results(out)
    # A run killed while it wrote a line leaves it cut short: --resume drops it.
    with (out / "results.jsonl").open("a", encoding="utf-8") as file:
        file.write('{"task": "' + second + '", "mode": "co')

    server.reset()
    again = bench(
        server, jupyter_path, out, "--tasks", first, second, "--modes", "code", "text", "--resume"
    )
    assert again.returncode == 0, again.stderr
    assert asked(server, first) == 0, "a done episode asked the model again"
    assert asked(server, second) > 0
    after = results(out)
    assert [comparable(e) for e in after[: len(before)]] == [comparable(e) for e in before]
    assert set(by_key(after)) == {(t, m) for t in (first, second) for m in ("code", "text")}
    assert "already in" in again.stderr
    assert summary_rows(out)["code"]["episodes"] == "2", "the summary covers both runs"

    # Without --resume the file starts afresh.
    server.reset()
    fresh = bench(server, jupyter_path, out, "--tasks", second, "--modes", "text")
    assert fresh.returncode == 0, fresh.stderr
    assert set(by_key(results(out))) == {(second, "text")}


def test_parallel_runs_give_the_same_results_as_serial_ones(
    server: ReferenceModelServer, jupyter_path: Path, tmp_path: Path
) -> None:
    tasks = ("--tasks", TOOLS, SCENARIO)
    serial = bench(server, jupyter_path, tmp_path / "serial", *tasks, "--parallel", "1")
    assert serial.returncode == 0, serial.stderr
    parallel = bench(server, jupyter_path, tmp_path / "parallel", *tasks, "--parallel", "4")
    assert parallel.returncode == 0, parallel.stderr

    one = by_key(results(tmp_path / "serial"))
    four = by_key(results(tmp_path / "parallel"))
    assert set(one) == set(four)
    assert len(one) == 3 * len(tool_ids()) + len(scenario_ids())
    assert len(tool_ids()) >= 4, "more units than --parallel 4 runs at once"
    for key in one:
        assert comparable(one[key]) == comparable(four[key]), key
    assert (tmp_path / "serial" / "summary.csv").read_text() == (
        tmp_path / "parallel" / "summary.csv"
    ).read_text()


# --- Kernel Gateway -----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# A gateway gives a kernel started with an environment only PATH, what the client sent
# (as far as KG_ENV_WHITELIST allows) and these of its own: the tests' isolated
# directories (conftest.py), so that its kernels write nothing to the user's.
INHERITED = (
    "HOME,TMPDIR,IPYTHONDIR,JUPYTER_PATH,JUPYTER_CONFIG_DIR,JUPYTER_DATA_DIR,"
    "JUPYTER_RUNTIME_DIR,XDG_CACHE_HOME,XDG_CONFIG_HOME,XDG_DATA_HOME,MPLCONFIGDIR"
)


@contextmanager
def kernel_gateway(jupyter_path: Path, workdir: Path, **env: str) -> Iterator[str]:
    """A real `jupyter kernelgateway` on 127.0.0.1 that finds the `codeact` kernelspec;
    its base URL."""
    port = _free_port()
    log = (workdir / "gateway.log").open("w")
    gateway = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            "kernelgateway",
            "--ip=127.0.0.1",
            f"--port={port}",
            "--JupyterWebsocketPersonality.list_kernels=True",
        ],
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={
            **os.environ,
            "JUPYTER_PATH": str(jupyter_path),
            "KG_ENV_PROCESS_WHITELIST": INHERITED,
            **env,
        },
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/api", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                assert gateway.poll() is None, (workdir / "gateway.log").read_text()
                assert time.monotonic() < deadline, "the gateway did not start"
                time.sleep(0.2)
        yield url
        kernels = httpx.get(f"{url}/api/kernels", timeout=5).json()
        assert kernels == [], f"kernels left running on the gateway: {kernels}"
    finally:
        gateway.terminate()
        gateway.wait(timeout=30)
        log.close()


SETTINGS = (
    "CODEACT_MODEL,CODEACT_BASE_URL,CODEACT_API_KEY,CODEACT_MAX_STEPS,CODEACT_MAX_RETRIES,"
    "CODEACT_TEMPERATURE"
)


def test_a_gateway_run_matches_a_local_run(
    server: ReferenceModelServer, jupyter_path: Path, tmp_path: Path
) -> None:
    tasks = ("--tasks", "tools/*-01", SCENARIO, "--modes", "code", "--parallel", "2")
    local = bench(server, jupyter_path, tmp_path / "local", *tasks)
    assert local.returncode == 0, local.stderr
    with kernel_gateway(jupyter_path, tmp_path, KG_ENV_WHITELIST=SETTINGS) as url:
        remote = bench(server, jupyter_path, tmp_path / "gateway", *tasks, "--gateway-url", url)
        assert remote.returncode == 0, remote.stderr + (tmp_path / "gateway.log").read_text()

    here = by_key(results(tmp_path / "local"))
    there = by_key(results(tmp_path / "gateway"))
    assert set(here) == set(there)
    assert len(there) == len(tool_ids()) + len(scenario_ids())
    for key in here:
        assert comparable(here[key]) == comparable(there[key]), key
    assert all(e.success for e in there.values())


def test_a_gateway_that_drops_the_settings_is_named_with_the_fix(
    server: ReferenceModelServer, jupyter_path: Path, tmp_path: Path
) -> None:
    with kernel_gateway(jupyter_path, tmp_path) as url:
        done = bench(
            server,
            jupyter_path,
            tmp_path / "run",
            *("--tasks", tool_ids()[0], "--modes", "code", "--gateway-url", url),
        )
    assert done.returncode == 1, done.stderr
    assert "KG_ENV_WHITELIST=" in done.stderr
    assert "CODEACT_MODEL" in done.stderr
    assert TEST_KEY not in done.stderr + done.stdout
    assert results(tmp_path / "run") == [], "a run that could not happen is not recorded"
    assert server.requests == []


# --- what a user sees without the extra, and usage errors ---------------------------------


def test_without_matplotlib_the_table_is_printed_and_the_extra_named(
    server: ReferenceModelServer, jupyter_path: Path, tmp_path: Path
) -> None:
    hide_matplotlib = (
        "import sys; sys.modules['matplotlib'] = None; "
        "from codeact_kernel.bench.cli import main; sys.exit(main())"
    )
    out = tmp_path / "run"
    done = bench(
        server,
        jupyter_path,
        out,
        *("--tasks", tool_ids()[0], "--modes", "json"),
        python=("-c", hide_matplotlib),
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'codeact-kernel[bench]'" in done.stderr
    assert "json" in done.stdout and "100.0" in done.stdout
    assert (out / "summary.csv").exists()
    assert not (out / "plot.png").exists()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--parallel", "0"), "at least 1"),
        (("--modes", "yaml"), "invalid choice"),
        (("--tasks", "tools/nothing-*"), "no all task matches tools/nothing-*"),
        (("--timeout", "0"), "positive number of seconds"),
        (("--timeout", "nan"), "positive number of seconds"),
    ],
)
def test_usage_errors_exit_2_before_any_model_call(
    server: ReferenceModelServer,
    jupyter_path: Path,
    tmp_path: Path,
    args: tuple[str, ...],
    says: str,
) -> None:
    done = bench(server, jupyter_path, tmp_path / "run", *args, timeout=60)
    assert done.returncode == 2, done.stderr
    assert says in done.stderr
    assert server.requests == []


def test_an_out_that_is_a_file_is_a_usage_error(
    server: ReferenceModelServer, jupyter_path: Path, tmp_path: Path
) -> None:
    taken = tmp_path / "notes.txt"
    taken.write_text("mine", encoding="utf-8")
    done = bench(server, jupyter_path, taken, "--tasks", "tools/shop-01", "--modes", "json")
    assert done.returncode == 2, done.stderr
    assert "cannot write the results in" in done.stderr and "Traceback" not in done.stderr
    assert taken.read_text(encoding="utf-8") == "mine"
    assert server.requests == []


# --- the summary ---------------------------------------------------------------------------


def _episode(mode: str, success: bool, error: str | None, turns: int) -> Episode:
    return Episode(
        task="t",
        mode=mode,
        success=success,
        turns=turns,
        input_tokens=100,
        output_tokens=10,
        seconds=1.0,
        error=error,  # type: ignore[arg-type]
        answer=None,
        detail=None,
    )


def test_the_summary_leaves_provider_errors_out_of_the_success_rate() -> None:
    episodes = [
        _episode("json", True, None, 2),
        _episode("json", False, "wrong_answer", 4),
        _episode("json", False, "provider_error", 0),
        _episode("code", False, "turn_limit", 10),
    ]
    json_mode, code_mode = summarize(episodes, ("json", "code", "text"))
    assert (json_mode.mode, json_mode.episodes, json_mode.judged) == ("json", 3, 2)
    assert json_mode.success_rate == 50.0
    assert json_mode.mean_turns == 3.0
    assert json_mode.mean_tokens == 110.0
    assert json_mode.failures["provider_error"] == 1
    assert (code_mode.success_rate, code_mode.failures["turn_limit"]) == (0.0, 1)
