"""Kernel overhead of `codeact` against stock `python3`, measured in one run.

Kernels are started and exercised alternately so that machine noise hits both alike;
the figures are medians and ratios. Three measurements:

- start: KernelManager.start_kernel until the kernel answers kernel_info;
- plain cell: execute_request → reply + idle for a one-line code cell;
- agent overhead per step: an in-process request whose model answers instantly,
  minus the time the same actions take when run directly.

Usage: python benchmarks/kernel_overhead.py [--starts 7] [--cells 300] [--steps 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jupyter_client.manager import KernelManager

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

TARGETS = {"start": 1.15, "plain cell": 1.05}


def install_specs(prefix: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "ipykernel", "install", "--prefix", str(prefix)],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [sys.executable, "-m", "codeact_kernel", "install", "--prefix", str(prefix)],
        check=True,
        capture_output=True,
    )
    os.environ["JUPYTER_PATH"] = str(prefix / "share" / "jupyter")


def time_start(name: str) -> float:
    manager = KernelManager(kernel_name=name)
    started = time.perf_counter()
    manager.start_kernel()
    client = manager.client()
    client.start_channels()
    client.wait_for_ready(timeout=60)
    seconds = time.perf_counter() - started
    client.stop_channels()
    manager.shutdown_kernel(now=True)
    return seconds


def time_cells(names: list[str], cells: int) -> dict[str, list[float]]:
    running = {}
    for name in names:
        manager = KernelManager(kernel_name=name)
        manager.start_kernel()
        client = manager.client()
        client.start_channels()
        client.wait_for_ready(timeout=60)
        running[name] = (manager, client)
    times: dict[str, list[float]] = {name: [] for name in names}
    try:
        for i in range(cells):
            for name in names if i % 2 else reversed(names):
                client = running[name][1]
                started = time.perf_counter()
                client.execute_interactive(f"x = {i}", timeout=30)
                times[name].append(time.perf_counter() - started)
    finally:
        for manager, client in running.values():
            client.stop_channels()
            manager.shutdown_kernel(now=True)
    return times


def agent_overhead_ms(steps: int) -> float:
    """Median milliseconds the agent adds to a step beyond running its code."""
    from IPython.core.interactiveshell import InteractiveShell
    from scripted import ScriptedModel

    from codeact_kernel.agent import Agent
    from codeact_kernel.events import Turn
    from codeact_kernel.executor import ShellExecutor
    from codeact_kernel.settings import Settings

    shell = InteractiveShell.instance()
    shell.user_ns["data"] = list(range(100))
    executor = ShellExecutor(shell)
    settings = Settings(model="scripted:bench", max_steps=3)
    code = "total = sum(data)"
    replies = [f"Step.\n```python\n{code}\n```", f"Again.\n```python\n{code}\n```", "Done."]

    async def request() -> float:
        agent = Agent(
            ScriptedModel(list(replies), chunk=16),
            executor,
            settings,
            namespace=lambda: "data: list, len 100",
        )
        started = time.perf_counter()
        async for _ in agent.run(Turn("sum the data")):
            pass
        return time.perf_counter() - started

    async def direct() -> float:
        started = time.perf_counter()
        await executor.run(code)
        await executor.run(code)
        return time.perf_counter() - started

    async def measure() -> list[float]:
        per_step = []
        for _ in range(steps // 3):
            with_agent = await request()
            without = await direct()
            per_step.append((with_agent - without) / 3 * 1000)
        return per_step

    loop = asyncio.new_event_loop()
    try:
        return statistics.median(loop.run_until_complete(measure()))
    finally:
        loop.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=7)
    parser.add_argument("--cells", type=int, default=300)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as prefix:
        install_specs(Path(prefix))
        names = ["python3", "codeact"]
        starts: dict[str, list[float]] = {name: [] for name in names}
        for i in range(args.starts):
            for name in names if i % 2 else reversed(names):
                starts[name].append(time_start(name))
        cells = time_cells(names, args.cells)
    results = {}
    for label, samples in (("start", starts), ("plain cell", cells)):
        stock = statistics.median(samples["python3"])
        ours = statistics.median(samples["codeact"])
        results[label] = {
            "python3 median ms": round(stock * 1000, 2),
            "codeact median ms": round(ours * 1000, 2),
            "ratio": round(ours / stock, 3),
            "target": TARGETS[label],
        }
    results["agent overhead per step"] = {
        "median ms": round(agent_overhead_ms(args.steps), 2),
        "target ms": 15,
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
