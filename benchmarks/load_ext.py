"""What `%load_ext codeact_kernel` costs, measured in fresh processes.

Each run starts a new interpreter (so nothing is cached in memory) that imports IPython,
makes a shell, then loads the extension, timing each part; runs alternate with a
baseline process that stops before `%load_ext` (so machine noise hits both alike) and
one that goes on to the first `%codeact config`.
Reported as medians:

- `import IPython` (the baseline every IPython user pays anyway);
- `%load_ext codeact_kernel` in-process (the target: at most 0.15 s);
- the whole process with and without `%load_ext` (the difference is the cost a user
  notices at start-up);
- the first `%codeact config` after loading (informative: that is when the providers
  load to resolve the settings; the session itself is made, cheaply, at load time, and
  httpx and the agent load at the first request).

It also checks that loading imports none of the heavy modules.

Usage: python benchmarks/load_ext.py [--runs 15]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

TARGET_SECONDS = 0.15
HEAVY = (
    "httpx",
    "codeact_kernel.agent",
    "codeact_kernel.context",
    "codeact_kernel.providers",
    "codeact_kernel.magic_runner",
    "mcp",
)

PROBE = """
import json, sys, time
started = time.perf_counter()
import IPython
from IPython.core.interactiveshell import InteractiveShell
imported = time.perf_counter()
shell = InteractiveShell.instance()
made = time.perf_counter()
result = {"import": imported - started, "shell": made - imported}
if sys.argv[1] in ("load", "use"):
    shell.run_line_magic("load_ext", "codeact_kernel")
    loaded = time.perf_counter()
    result["load_ext"] = loaded - made
    result["heavy"] = [name for name in HEAVY if name in sys.modules]
if sys.argv[1] == "use":
    shell.run_line_magic("codeact", "config")
    result["first_use"] = time.perf_counter() - loaded
print(json.dumps(result))
"""


def run_process(mode: str) -> tuple[float, dict[str, object]]:
    script = f"HEAVY = {HEAVY!r}\n{PROBE}"
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", script, mode], capture_output=True, text=True, check=True
    )
    seconds = time.perf_counter() - started
    # `%codeact config` prints its table first; the measurements are the last line.
    return seconds, json.loads(done.stdout.strip().splitlines()[-1])


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    base_wall: list[float] = []
    load_wall: list[float] = []
    imports: list[float] = []
    loads: list[float] = []
    first_uses: list[float] = []
    heavy: set[str] = set()
    run_process("load")  # warm the OS file cache, not counted
    for _ in range(args.runs):
        seconds, result = run_process("base")
        base_wall.append(seconds)
        imports.append(float(result["import"]))  # type: ignore[arg-type]
        seconds, result = run_process("load")
        load_wall.append(seconds)
        loads.append(float(result["load_ext"]))  # type: ignore[arg-type]
        heavy.update(result["heavy"])  # type: ignore[arg-type]
        _, result = run_process("use")
        first_uses.append(float(result["first_use"]))  # type: ignore[arg-type]

    load = median(loads)
    rows = [
        ("import IPython (baseline)", median(imports)),
        ("%load_ext codeact_kernel (in-process)", load),
        ("process: IPython shell only", median(base_wall)),
        ("process: IPython shell + %load_ext", median(load_wall)),
        ("process difference", median(load_wall) - median(base_wall)),
        ("first %codeact config (informative)", median(first_uses)),
    ]
    print(f"medians of {args.runs} fresh processes each ({sys.executable})")
    for name, seconds in rows:
        print(f"  {name:<40} {seconds * 1000:8.1f} ms")
    verdict = "OK" if load <= TARGET_SECONDS else "OVER TARGET"
    print(f"target: %load_ext <= {TARGET_SECONDS * 1000:.0f} ms -> {verdict}")
    if heavy:
        print(f"WARNING: %load_ext imported heavy modules: {sorted(heavy)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
