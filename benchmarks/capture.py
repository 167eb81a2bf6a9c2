"""What capturing an action's output costs, against the same code run as a plain cell.

One kernel (jupyter_client, as JupyterLab drives it): the `codeact` kernel, or with
`--host magic` the stock `python3` kernel with `%load_ext codeact_kernel`, pointed at
the scripted loopback model server with an instant model. The output has one of three
`--shape`s: `prints` lines printed one by one, one write of that many lines, or that
many lines' characters written one at a time (`chars`). Three cells, alternated so
that machine noise hits them alike:

- plain: a code cell that writes that output;
- action: a request whose one action is that same code;
- overhead: a request whose action prints nothing (the cost of a request itself: two
  model calls, rendering), subtracted from the action's time.

The figures are medians in seconds; `ratio` is (action - overhead) / plain, which is
about 1 when capture costs what showing the output costs anyway. Capture must cost
O(output): run with `--prints 10000` and `--prints 100000` and the ratio stays put.

Usage: python benchmarks/capture.py [--prints 100000] [--repeats 5] [--host kernel|magic]
                                    [--shape prints|one-write|chars]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from kernel_harness import (
    HOSTS,
    Host,
    install_kernelspec,
    install_stock_kernelspec,
    kernel_env,
    start_host,
)
from model_server import ScriptedModelServer, text


def timed_request(host: Host, server: ScriptedModelServer, code: str) -> float:
    server.reset()
    server.script(text(f"```python\n{code}\n```", chunk_size=4096), text("Done."))
    result = host.request("print the lines please", timeout=600)
    assert result.status == "ok", result.content
    return result.seconds


def plain_cell(host: Host, code: str) -> float:
    result = host.execute(code, timeout=600)
    assert result.status == "ok", result.content
    return result.seconds


SHAPES = {
    "prints": "for i in range({n}):\n    print(i)",
    "one-write": "import sys\nsys.stdout.write(''.join(f'{{i}}\\n' for i in range({n})))",
    "chars": (
        "import sys\nfor c in ''.join(f'{{i}}\\n' for i in range({n})):\n    sys.stdout.write(c)"
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prints", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--host", choices=HOSTS, default="kernel")
    parser.add_argument("--shape", choices=list(SHAPES), default="prints")
    args = parser.parse_args()
    code = SHAPES[args.shape].format(n=args.prints)
    samples: dict[str, list[float]] = {"plain": [], "action": [], "overhead": []}
    with tempfile.TemporaryDirectory() as prefix, ScriptedModelServer() as server:
        install_stock_kernelspec(Path(prefix))
        jupyter_path = install_kernelspec(Path(prefix))
        with start_host(args.host, jupyter_path, kernel_env(server.url)) as host:
            runs = {
                "plain": lambda: plain_cell(host, code),
                "action": lambda: timed_request(host, server, code),
                "overhead": lambda: timed_request(host, server, "pass"),
            }
            for i in range(args.repeats):
                for name in runs if i % 2 else reversed(runs):
                    samples[name].append(runs[name]())
    medians = {name: statistics.median(values) for name, values in samples.items()}
    results = {
        "host": args.host,
        "shape": args.shape,
        "prints": args.prints,
        "repeats": args.repeats,
        **{f"{name} median s": round(value, 3) for name, value in medians.items()},
        "ratio": round((medians["action"] - medians["overhead"]) / medians["plain"], 2),
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
