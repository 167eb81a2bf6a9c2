"""What calling an MCP tool through `mcp.<server>.<tool>` costs, and what an MCP config
costs at kernel start. Measured in real `codeact` kernels against the demo MCP server of
the tests (tests/mcp_demo_server.py) over stdio, with the scripted model server.

- call overhead: the median time of one `add` call made from a code action (which also
  prints the call's `[mcp]` line) and from a user cell, against the same call made
  directly with the SDK's `Client.call_tool` in the same kernel process (awaited on a
  loop in a thread of its own); rounds alternate so machine noise hits all three alike.
  Also the kernel process's CPU time per call, which machine load does not inflate: a
  synchronous call from the main thread wakes the background loop's thread and is woken
  by it, and on a busy machine each wake-up can wait for a core. Target: at most 2 ms
  more than the direct call.
- kernel start: KernelManager.start_kernel until kernel_info, with and without
  CODEACT_MCP_CONFIG naming three servers, alternately. Target: unchanged (servers and
  the SDK load at first use); the script also checks that no server process runs and
  that the SDK is not imported after start.
- `%load_ext codeact_kernel` in a fresh IPython process, with and without the same
  CODEACT_MCP_CONFIG, alternately (as benchmarks/load_ext.py times it). Target:
  unchanged, within noise (the config is read; the SDK is not imported).

Usage: python benchmarks/mcp_overhead.py [--calls 200] [--rounds 5] [--starts 7]
       [--loads 11]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from jupyter_client.manager import KernelManager

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

from kernel_harness import execute, install_kernelspec, kernel_env  # noqa: E402
from mcp_harness import children_of, demo_entry, time_entry, write_config  # noqa: E402
from model_server import ScriptedModelServer, text  # noqa: E402

TARGET_MS = 2.0

TIMED = """\
import statistics as _statistics, time as _time
_add = mcp.demo.add
for _ in range(20):
    _add(1)
_samples = []
_cpu = _time.process_time()
for _ in range({calls}):
    _started = _time.perf_counter()
    _add(1)
    _samples.append(_time.perf_counter() - _started)
print("MEDIAN", _statistics.median(_samples))
print("CPU", (_time.process_time() - _cpu) / {calls})
"""

DIRECT = """\
import asyncio as _asyncio, statistics as _statistics, sys as _sys, threading as _threading
import time as _time
from mcp import Client as _Client, StdioServerParameters as _Params

async def _direct():
    params = _Params(command=_sys.executable, args=[{demo!r}])
    async with _Client(params) as client:
        for _ in range(20):
            await client.call_tool("add", {{"a": 1}})
        samples = []
        cpu = _time.process_time()
        for _ in range({calls}):
            started = _time.perf_counter()
            await client.call_tool("add", {{"a": 1}})
            samples.append(_time.perf_counter() - started)
        return _statistics.median(samples), (_time.process_time() - cpu) / {calls}

_out = []
_thread = _threading.Thread(target=lambda: _out.append(_asyncio.run(_direct())))
_thread.start()
_thread.join()
print("MEDIAN", _out[0][0])
print("CPU", _out[0][1])
"""


def start(env: dict[str, str]) -> tuple[KernelManager, Any, float]:
    manager = KernelManager(kernel_name="codeact")
    started = time.perf_counter()
    manager.start_kernel(env=env)
    client = manager.client()
    client.start_channels()
    client.wait_for_ready(timeout=60)
    return manager, client, time.perf_counter() - started


def printed(result: Any, label: str) -> float:
    """The milliseconds a timed snippet printed after `label`."""
    for line in result.stdout.splitlines():
        if line.startswith(label + " "):
            return float(line.split()[1]) * 1000
    raise RuntimeError(f"no {label} in {result.content} {result.stdout[-2000:]}")


def call_overhead(
    env: dict[str, str], server: ScriptedModelServer, calls: int, rounds: int
) -> dict[str, float]:
    manager, client, _ = start(env)
    kinds = ("direct SDK", "user cell", "code action")
    walls: dict[str, list[float]] = {kind: [] for kind in kinds}
    cpus: dict[str, list[float]] = {kind: [] for kind in kinds}
    try:
        warm = execute(client, "mcp.demo.add(1)", timeout=120)
        assert warm.status == "ok", warm.content
        for _ in range(rounds):
            server.script(text("```python\n" + TIMED.format(calls=calls) + "```"), text("Done."))
            runs = {
                "direct SDK": DIRECT.format(demo=str(TESTS / "mcp_demo_server.py"), calls=calls),
                "user cell": TIMED.format(calls=calls),
                "code action": "time the demo server's add tool",
            }
            for kind, code in runs.items():
                result = execute(client, code, timeout=300)
                walls[kind].append(printed(result, "MEDIAN"))
                cpus[kind].append(printed(result, "CPU"))
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    return {
        **{f"{kind} wall": round(statistics.median(walls[kind]), 3) for kind in kinds},
        **{f"{kind} CPU": round(statistics.median(cpus[kind]), 3) for kind in kinds},
    }


def start_times(plain: dict[str, str], configured: dict[str, str], starts: int) -> dict[str, Any]:
    times: dict[str, list[float]] = {"without MCP config": [], "with MCP config": []}
    checks: list[dict[str, Any]] = []
    for i in range(starts):
        order = [("without MCP config", plain), ("with MCP config", configured)]
        for label, env in order if i % 2 else reversed(order):
            manager, client, seconds = start(env)
            times[label].append(seconds)
            if label == "with MCP config" and not checks:
                probe = execute(client, "import os, sys; print(os.getpid(), 'mcp' in sys.modules)")
                pid, imported = probe.stdout.split()
                checks.append(
                    {
                        "server processes after start": len(children_of(int(pid))),
                        "mcp SDK imported after start": imported == "True",
                    }
                )
            client.stop_channels()
            manager.shutdown_kernel(now=True)
    without = statistics.median(times["without MCP config"])
    with_config = statistics.median(times["with MCP config"])
    return {
        "without MCP config median ms": round(without * 1000, 1),
        "with MCP config median ms": round(with_config * 1000, 1),
        "ratio": round(with_config / without, 3),
        **checks[0],
    }


LOAD_EXT = """
import json, sys, time
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
started = time.perf_counter()
shell.run_line_magic("load_ext", "codeact_kernel")
print(json.dumps([time.perf_counter() - started, "mcp" in sys.modules]))
"""


def load_ext_times(plain: dict[str, str], configured: dict[str, str], loads: int) -> dict[str, Any]:
    times: dict[str, list[float]] = {"without MCP config": [], "with MCP config": []}
    imported = False
    for i in range(loads + 1):
        order = [("without MCP config", plain), ("with MCP config", configured)]
        for label, env in order if i % 2 else reversed(order):
            done = subprocess.run(
                [sys.executable, "-c", LOAD_EXT], env=env, capture_output=True, text=True
            )
            seconds, sdk = json.loads(done.stdout.strip().splitlines()[-1])
            if i:  # the first round warms the OS file cache
                times[label].append(seconds)
            imported = imported or (label == "with MCP config" and sdk)
    without = statistics.median(times["without MCP config"])
    with_config = statistics.median(times["with MCP config"])
    return {
        "without MCP config median ms": round(without * 1000, 1),
        "with MCP config median ms": round(with_config * 1000, 1),
        "mcp SDK imported by %load_ext": imported,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--starts", type=int, default=7)
    parser.add_argument("--loads", type=int, default=11)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, ScriptedModelServer() as server:
        root = Path(folder)
        os.environ["JUPYTER_PATH"] = str(install_kernelspec(root / "prefix"))
        config = write_config(
            root / "mcp.json",
            {
                "demo": demo_entry(),
                "time": time_entry(),
                "web": {"url": "http://127.0.0.1:9/mcp"},
            },
        )
        plain = kernel_env(server.url)
        configured = kernel_env(server.url, CODEACT_MCP_CONFIG=str(config))
        calls = call_overhead(configured, server, args.calls, args.rounds)
        starts = start_times(plain, configured, args.starts)
        loads = load_ext_times(plain, configured, args.loads)
    overhead = {
        "ms per call (kernel process: wall median, CPU mean)": calls,
        "wall overhead from a code action ms": round(
            calls["code action wall"] - calls["direct SDK wall"], 3
        ),
        "wall overhead from a user cell ms": round(
            calls["user cell wall"] - calls["direct SDK wall"], 3
        ),
        "CPU overhead from a code action ms": round(
            calls["code action CPU"] - calls["direct SDK CPU"], 3
        ),
        "target ms": TARGET_MS,
    }
    report = {"call overhead": overhead, "kernel start": starts, "%load_ext": loads}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
