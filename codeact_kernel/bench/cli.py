"""`codeact bench`: the paper's code-vs-JSON-vs-text comparison on the user's own endpoint.

`add_parser(subparsers)` registers the command with the `codeact` console script;
`main(argv)` runs it on its own (`python -m codeact_kernel.bench.cli …`). The table is
printed to stdout, progress goes to stderr (a bar on a terminal, a line per unit
otherwise, so CI logs stay readable). Exit status: 0 when every episode ran (whatever
the model scored), 1 when some could not run (see the messages; `--resume` runs them),
2 for usage errors, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from ..errors import CodeActError
from .episode import Episode
from .plot import PlotUnavailable, plot
from .report import csv_text, markdown, summarize, table
from .runner import DEFAULT_TIMEOUT, MODES, BenchConfig, Unit, run_bench

DESCRIPTION = """Measure how well a model acts through code, JSON tool calls and text tool
calls on the same offline tasks (the CodeAct paper's comparison), against your own
endpoint. Writes DIR/results.jsonl (one line per episode, with its trajectory),
DIR/summary.md, DIR/summary.csv and DIR/plot.png/.svg."""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `bench` on the `codeact` command's subparsers."""
    parser = subparsers.add_parser(
        "bench", help="compare code, JSON and text actions on your model", description=DESCRIPTION
    )
    configure(parser)
    return parser


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", required=True, help="provider:model, e.g. ollama:qwen2.5-coder:7b"
    )
    parser.add_argument("--base-url", default="", help="the endpoint (vLLM, llama.cpp …)")
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=MODES,
        default=list(MODES),
        metavar="MODE",
        help="action modes to run: code json text (default: all three)",
    )
    parser.add_argument(
        "--suite",
        choices=("tools", "data", "all"),
        default="all",
        help="the multi-tool tasks, the data-analysis scenarios, or both",
    )
    parser.add_argument(
        "--tasks",
        dest="patterns",
        nargs="+",
        default=[],
        metavar="PATTERN",
        help="only tasks whose id matches a PATTERN (e.g. 'tools/shop-*' 'data/sales-*')",
    )
    parser.add_argument(
        "--parallel",
        type=_positive,
        default=1,
        metavar="N",
        help="episodes (kernels) at a time (default 1)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("bench-results"),
        metavar="DIR",
        help="where results go (default ./bench-results)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep DIR/results.jsonl and run only the episodes not in it",
    )
    parser.add_argument(
        "--gateway-url",
        metavar="URL",
        help="run code-mode kernels on a Jupyter Kernel/Enterprise Gateway",
    )
    parser.add_argument(
        "--max-turns",
        type=_positive,
        default=10,
        metavar="N",
        help="turn limit per task, the same in every mode (default 10)",
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="longest a code-mode task may run before it is given up as not run "
        f"(default {DEFAULT_TIMEOUT:.0f})",
    )
    parser.set_defaults(func=run_command)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"needs a number of seconds, not {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


def run_command(args: argparse.Namespace) -> int:
    config = BenchConfig(
        model=args.model,
        out=args.out,
        base_url=args.base_url,
        modes=tuple(dict.fromkeys(args.modes)),
        suite=args.suite,
        patterns=tuple(args.patterns),
        parallel=args.parallel,
        resume=args.resume,
        gateway_url=args.gateway_url,
        max_turns=args.max_turns,
        timeout=args.timeout,
    )
    bar = ProgressBar(sys.stderr)
    try:
        outcome = asyncio.run(run_bench(config, bar))
    except KeyboardInterrupt:
        bar.close()
        print("codeact bench: interrupted; --resume continues where it stopped.", file=sys.stderr)
        return 130
    except (CodeActError, ValueError) as error:
        bar.close()
        print(f"codeact bench: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        # --out names a file, or a place this user cannot write.
        bar.close()
        print(f"codeact bench: cannot write the results in {config.out}: {error}", file=sys.stderr)
        return 2
    bar.close()
    summaries = summarize(outcome.episodes, config.modes)
    print(table(summaries))
    (config.out / "summary.md").write_text(
        markdown(summaries, model=config.model), encoding="utf-8"
    )
    (config.out / "summary.csv").write_text(csv_text(summaries), encoding="utf-8")
    try:
        if summaries:
            plot(summaries, config.out, title=f"codeact bench: {config.model}")
    except PlotUnavailable as missing:
        print(f"codeact bench: {missing}; the table above is complete.", file=sys.stderr)
    for note in outcome.notes:
        print(f"codeact bench: {note}.", file=sys.stderr)
    if outcome.skipped:
        print(
            f"{outcome.skipped} episodes were already in {config.results} (--resume).",
            file=sys.stderr,
        )
    print(
        f"Results in {config.out}/ (results.jsonl, summary.md, summary.csv, plot).", file=sys.stderr
    )
    for failure in outcome.failures:
        print(f"codeact bench: could not run {failure}", file=sys.stderr)
    return 1 if outcome.failures else 0


class ProgressBar:
    """Progress on stderr: a bar redrawn in place on a terminal, a line per unit otherwise."""

    width = 30

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.live = stream.isatty()
        self.done = 0
        self.passed = 0
        self.total: int | None = None
        self.started = time.monotonic()

    def start(self, total: int) -> None:
        self.total = total
        self._draw("")

    def update(self, unit: Unit, episodes: list[Episode] | None, error: str | None) -> None:
        self.done += len(unit.tasks)
        self.passed += sum(1 for e in episodes or [] if e.success)
        if error is not None:
            status = f"could not run: {error}"
        else:
            status = ", ".join(f"{e.task} {'ok' if e.success else e.error}" for e in episodes or [])
        self._draw(f"{unit.mode} {status}")

    def _draw(self, status: str) -> None:
        total = self.total or 0
        count = f"{self.done}/{total}" if total else str(self.done)
        seconds = time.monotonic() - self.started
        if not self.live:
            if status:
                print(f"[{count}] {status}", file=self.stream, flush=True)
            return
        filled = int(self.width * self.done / total) if total else 0
        bar = "#" * filled + "." * (self.width - filled)
        line = f"\r[{bar}] {count} · {self.passed} passed · {seconds:.0f} s · {status}"
        # One terminal row (of the terminal stderr is on, whatever stdout is), or the
        # carriage return would redraw only the last of them.
        try:
            columns = os.get_terminal_size(self.stream.fileno()).columns
        except (OSError, ValueError):
            columns = 0
        columns = columns or shutil.get_terminal_size().columns  # 0: a terminal of no size
        self.stream.write(line[:columns].ljust(columns))
        self.stream.flush()

    def close(self) -> None:
        if self.live:
            self.stream.write("\n")
            self.stream.flush()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="codeact bench", description=DESCRIPTION)
    configure(parser)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
