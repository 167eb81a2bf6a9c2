"""Whether a request costs more late in a session than early, measured two ways.

- context per model call: `build_messages` after 10, 100 and 1,000 earlier 5-step turns
  of realistic size (a request line, a few lines of model text with a code block,
  observations of a few hundred characters), with the default budget of 24,000 tokens,
  a namespace summary and the secrets of that namespace. Two cases: the first call of
  a request (one more turn finished since the last call, as in a session), and a call
  after the secrets changed (a new secret-looking variable: nothing cached can be
  used). The target: at 1,000 earlier turns at most 15 ms per call beyond the 10-turn
  figure, in both.
- end to end: a real `codeact` kernel (jupyter_client, as JupyterLab drives it) pointed
  at the scripted loopback model server, answering one-step requests in a row with an
  instant model; the median request time of the first 30 against the last 30. With
  the default budget, the requests sent grow until the earlier turns fill it (several
  hundred of these small ones): that growth is the context doing its job. With a small
  budget, filled early, whatever still grows is overhead.

Figures are medians in milliseconds.

Usage: python benchmarks/session_length.py [--calls 15] [--requests 300] [--skip-kernel]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from codeact_kernel.context import build_messages
from codeact_kernel.events import Observation, Step, Turn
from codeact_kernel.namespace import secret_values, summarize_namespace

TURN_COUNTS = (10, 100, 1000)
TARGET_EXTRA_MS = 15
BUDGET_TOKENS = 24000
# Filled by the first 60 or so requests: what grows after that is overhead, not context.
SMALL_BUDGET_TOKENS = 4000
WINDOW = 30


def realistic_turn(index: int) -> Turn:
    """Four actions and a final answer, about the size a data-analysis request has."""
    steps = []
    for number in range(1, 5):
        table = f"summary_{number}"
        code = f"{table} = df.groupby('region')['revenue'].agg(['mean', 'sum'])\n{table}"
        text = (
            f"Step {number} of request {index}: I will group the sales by region and look "
            f"at the mean and total revenue.\n```python\n{code}\n```"
        )
        output = "\n".join(
            f"{region:<8} {1000 + index + number * 7 + row:>10.2f} {52000.5 + row:>12.2f}"
            for row, region in enumerate(("north", "south", "east", "west", "central") * 2)
        )
        steps.append(Step(number, text, code, Observation(f"Out[{index}]:\n{output}", ok=True)))
    final = f"Revenue by region for request {index}: the north leads, the west trails."
    steps.append(Step(5, final))
    cells = (f"threshold = {index}",) if index % 3 == 0 else ()
    return Turn(f"request {index}: compare revenue by region", steps, cells, final=final)


def namespace() -> dict[str, object]:
    import pandas as pd

    frame = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=5), "revenue": range(5)})
    return {
        "pd": pd,
        "df": frame,
        "threshold": 3,
        "regions": ["north", "south", "east", "west"],
        "OPENAI_API_KEY": "sk-proj-4fQz9LmX2vR7tK1pW8yB3nC6",
        "db_password": "hunter2-but-longer",
    }


def context_ms(turns: int, calls: int) -> tuple[float, float]:
    """Median milliseconds of one `build_messages` call after `turns` earlier turns: the
    first call of a request, and a call with secrets that changed."""
    history = [realistic_turn(i) for i in range(turns)]
    ns = namespace()
    summary = summarize_namespace(ns)
    secrets = secret_values(ns)
    current = realistic_turn(turns).steps[:2]

    def call(redacted: frozenset[str]) -> float:
        started = time.perf_counter()
        build_messages(
            request="plot the revenue by region",
            history=history,
            current=current,
            user_cells=("df = df.dropna()",),
            namespace=summary,
            action_format="markdown",
            budget_tokens=BUDGET_TOKENS,
            secrets=redacted,
        )
        return (time.perf_counter() - started) * 1000

    call(secrets)
    next_request = []
    for index in range(calls):
        history.append(realistic_turn(turns + index))
        next_request.append(call(secrets))
    new_secrets = [
        call(secrets | {f"sk-proj-{index:04d}xQz9LmX2vR7tK1pW8"}) for index in range(calls)
    ]
    return statistics.median(next_request), statistics.median(new_secrets)


def kernel_requests_ms(requests: int, context_tokens: int) -> tuple[float, float]:
    """Median milliseconds of a one-step request: the first and the last `WINDOW`."""
    import model_server
    from kernel_harness import install_kernelspec, kernel_env, running_kernel

    answer = "Counting.\n```python\ncount = sum(range(100))\ncount\n```"
    server = model_server.ScriptedModelServer()
    samples: list[float] = []
    with tempfile.TemporaryDirectory() as prefix, server:
        jupyter_path = install_kernelspec(Path(prefix))
        env = kernel_env(server.url, CODEACT_CONTEXT_TOKENS=str(context_tokens))
        with running_kernel(jupyter_path, env) as (_, client):
            for index in range(requests):
                server.reset()
                server.script(model_server.text(answer, chunk_size=64), model_server.text("Done."))
                started = time.perf_counter()
                reply = client.execute_interactive(
                    f"count the numbers below one hundred, take {index}",
                    timeout=30,
                    output_hook=lambda message: None,
                )
                samples.append((time.perf_counter() - started) * 1000)
                if reply["content"]["status"] != "ok":
                    raise RuntimeError(f"request {index} failed: {reply['content']}")
    return statistics.median(samples[:WINDOW]), statistics.median(samples[-WINDOW:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=15)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--skip-kernel", action="store_true")
    args = parser.parse_args()
    per_call = {turns: context_ms(turns, args.calls) for turns in TURN_COUNTS}
    results: dict[str, object] = {}
    for case, label in enumerate(("first call of a request", "secrets changed")):
        figures = {turns: ms[case] for turns, ms in per_call.items()}
        results[f"context per model call, {label}"] = {
            **{f"{turns} earlier turns, median ms": round(ms, 2) for turns, ms in figures.items()},
            "1000 minus 10, ms": round(figures[TURN_COUNTS[-1]] - figures[TURN_COUNTS[0]], 2),
            "target ms": TARGET_EXTRA_MS,
        }
    if not args.skip_kernel:
        for budget in (BUDGET_TOKENS, SMALL_BUDGET_TOKENS):
            first, last = kernel_requests_ms(args.requests, budget)
            results[f"kernel, {args.requests} one-step requests, budget {budget}"] = {
                f"first {WINDOW} median ms": round(first, 2),
                f"last {WINDOW} median ms": round(last, 2),
                "ratio": round(last / first, 2),
            }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
