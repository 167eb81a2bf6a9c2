"""The cost of `codeact bench` itself: seconds per episode with an instant model, per mode,
and the speed-up of `--parallel 4` over `--parallel 1`.

The model is the reference model server (tests/reference_server.py) on 127.0.0.1, which
answers every turn at once with the reference solution, so what is measured is the
harness: kernels starting and running the CodeAct loop (code mode), the tool-calling
loops (json, text), HTTP, scoring and writing results. Runs go through `run_bench`,
the function the command calls, each into a fresh results directory; rounds alternate
the settings compared so that machine noise hits them alike; figures are medians.

Usage: python benchmarks/bench_harness.py [--rounds 3] [--tasks 'tools/*-0[1-4]']
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from kernel_harness import install_kernelspec
from reference_server import ReferenceModelServer

from codeact_kernel.bench.runner import BenchConfig, run_bench

MODES = ("code", "json", "text")


def timed_run(
    server: ReferenceModelServer, out: Path, modes: tuple[str, ...], tasks: str, parallel: int
) -> tuple[float, int]:
    """Wall seconds of one run, and the episodes it ran (all must succeed)."""
    config = BenchConfig(
        model="openai:reference",
        base_url=server.url,
        out=out,
        modes=modes,
        suite="tools",
        patterns=(tasks,),
        parallel=parallel,
    )
    started = time.perf_counter()
    outcome = asyncio.run(run_bench(config))
    seconds = time.perf_counter() - started
    failed = [e.task for e in outcome.episodes if not e.success]
    if failed or outcome.failures:
        raise SystemExit(f"the reference run failed: {failed} {outcome.failures}")
    return seconds, len(outcome.episodes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tasks", default="tools/*-0[1-4]", help="task id pattern")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root_name:
        root = Path(root_name)
        os.environ["JUPYTER_PATH"] = str(install_kernelspec(root / "prefix"))
        os.environ["CODEACT_API_KEY"] = "sk-bench-harness"
        per_episode: dict[str, list[float]] = {mode: [] for mode in MODES}
        walls: dict[int, list[float]] = {1: [], 4: []}
        episodes = 0
        with ReferenceModelServer() as server:
            for round_ in range(args.rounds):
                for mode in MODES:
                    out = root / f"{round_}-{mode}"
                    seconds, count = timed_run(server, out, (mode,), args.tasks, 1)
                    per_episode[mode].append(seconds / count)
                for parallel in (1, 4):
                    out = root / f"{round_}-all-{parallel}"
                    seconds, episodes = timed_run(server, out, MODES, args.tasks, parallel)
                    walls[parallel].append(seconds)
    result = {
        "tasks": args.tasks,
        "rounds": args.rounds,
        "cpus": os.cpu_count(),
        "seconds per episode (parallel 1, median)": {
            mode: round(statistics.median(values), 3) for mode, values in per_episode.items()
        },
        f"all modes, {episodes} episodes: wall seconds (median)": {
            f"parallel {n}": round(statistics.median(values), 2) for n, values in walls.items()
        },
        "speed-up of --parallel 4": round(
            statistics.median(walls[1]) / statistics.median(walls[4]), 2
        ),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
