"""The `codeact` command: `run` (headless requests and notebooks), `export`, `bench`.

`codeact run` is a frontend like JupyterLab with the extension, without the browser
(headless.py): a real `codeact` kernel, the same comm, the same cells in the notebook
it writes. Its options only set the kernel's environment (`CODEACT_MODEL` …), so every
other setting comes from where the kernel always reads it (DESIGN.md §4).

Exit status: 0 when every request ended with a final answer (and every code cell ran),
1 when one failed (or the run hit --timeout), 130 on Ctrl-C, 143 on SIGTERM (both
write the partial notebook), 2 for usage errors.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .version import __version__

OK, FAILED, USAGE, INTERRUPTED, TERMINATED = 0, 1, 2, 130, 143

DESCRIPTION = f"""\
codeact {__version__}: CodeAct without a notebook UI. A request in natural language goes
to an LLM that answers with Python code, run in a real `codeact` Jupyter kernel; the
result is a notebook like the one JupyterLab with the CodeAct extension makes."""

EPILOG = """\
settings: --model, --base-url, --max-steps, --approval and --format override the
environment (CODEACT_MODEL, CODEACT_BASE_URL, CODEACT_API_KEY, ...), which overrides
c.CodeAct.* in Jupyter/IPython config files, as in the kernel. The key is read from
the environment only (CODEACT_API_KEY, OPENAI_API_KEY, ANTHROPIC_API_KEY).

Run `codeact COMMAND --help` for a command's options. docs/cli.md has the details."""

RUN_DESCRIPTION = """\
Run requests, or a notebook, in a fresh `codeact` kernel and write the notebook.

  codeact run "REQUEST" ["NEXT REQUEST" ...]   one prompt cell per request, in order,
                                               in one kernel (follow-ups remember)
  codeact run NOTEBOOK.ipynb                   every code cell in order: code runs as
                                               code, prompt cells ask the model and
                                               replace the cells they generated before

The notebook is what JupyterLab with the extension makes: the prompt cell, one code
cell per action (outputs, execution count, metadata.codeact), the final answer as a
Markdown cell. A failing cell stops the run (unless tagged raises-exception).

progress: on stderr as in terminal IPython; --json prints one JSON event per line on
stdout instead (request_started, text_delta, action, observation, usage, finished,
failed, cell, notebook_written; schema in docs/cli.md).

exit status: 0 every request ended with a final answer, 1 a request or cell failed or
--timeout passed, 130 interrupted (Ctrl-C: the kernel is interrupted, the partial
notebook written), 143 terminated (SIGTERM: likewise), 2 usage error."""

RUN_EPILOG = """\
examples:
  codeact run "load sales.csv and plot revenue by month" -o sales.ipynb
  codeact run analysis.ipynb -o analysis-rerun.ipynb --model openai:gpt-4o-mini
  codeact run analysis.ipynb --replay        # re-run the saved actions, no model
  codeact run "count the lines of README.md" --json > events.jsonl"""


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["help"]:
        # `codeact help [COMMAND]`, as `python -m codeact_kernel help` works.
        words = [*words[1:2], "--help"]
    try:
        parser = build_parser()
        args = parser.parse_args(words)
        if getattr(args, "func", None) is None:
            parser.print_help()
            return USAGE
        status: int = args.func(args)
    except KeyboardInterrupt:
        # Ctrl-C outside a run's own handling (while the command loads, reads or checks):
        # no kernel has started and nothing is half written, so a line, not a traceback.
        print("codeact: interrupted", file=sys.stderr)
        return INTERRUPTED
    return status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="codeact",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-V", "--version", action="version", version=f"codeact {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    add_run_parser(commands)
    with contextlib.suppress(ImportError):
        from .cli_export import add_parser as add_export_parser

        add_export_parser(commands)
    with contextlib.suppress(ImportError):
        # `codeact bench`, when the benchmark package is there (DESIGN.md §9).
        from .bench.cli import add_parser as add_bench_parser

        add_bench_parser(commands)
    return parser


def add_run_parser(commands: argparse._SubParsersAction[Any]) -> None:
    run = commands.add_parser(
        "run",
        help="run requests or a notebook headless and write the notebook",
        description=RUN_DESCRIPTION,
        epilog=RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "targets", nargs="+", metavar="REQUEST | NOTEBOOK.ipynb", help=argparse.SUPPRESS
    )
    run.add_argument(
        "-o",
        "--output",
        metavar="OUT.ipynb",
        help="where to write the notebook (default: a request writes "
        "codeact-YYYYmmdd-HHMMSS.ipynb here; a notebook is updated in place)",
    )
    run.add_argument("--model", metavar="PROVIDER:MODEL", help="e.g. openai:gpt-4o-mini")
    run.add_argument(
        "--base-url", metavar="URL", help="the model server, e.g. http://localhost:8000/v1"
    )
    run.add_argument("--max-steps", type=_positive_int, metavar="N", help="actions per request")
    run.add_argument(
        "--approval", choices=("auto", "ask"), help="ask: confirm each action on the terminal"
    )
    run.add_argument(
        "--format",
        choices=("markdown", "execute"),
        dest="action_format",
        help="how the model marks code (execute: <execute> tags, for CodeActAgent models)",
    )
    run.add_argument(
        "--cwd",
        metavar="DIR",
        help="the kernel's working directory (default: the notebook's, or .)",
    )
    run.add_argument(
        "--timeout",
        type=_positive_float,
        metavar="SECONDS",
        help="wall-clock limit of the whole run: then the kernel is interrupted, the "
        "partial notebook written, and the exit status is 1",
    )
    run.add_argument(
        "--replay",
        action="store_true",
        help="re-run the notebook's generated cells instead of asking the model (as Run "
        "All after a restart in JupyterLab): no model call",
    )
    run.add_argument("--json", action="store_true", help="JSON events on stdout, one per line")
    run.add_argument(
        "--kernel", default="codeact", metavar="NAME", help="kernelspec to run (default: codeact)"
    )
    run.set_defaults(func=run_command)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"needs a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"needs a number of seconds, not {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


# --- codeact run -----------------------------------------------------------------------


class UsageProblem(Exception):
    """A usage error found after parsing: exit status 2 with this message."""


@dataclass(frozen=True)
class Plan:
    """What a run does, checked before any kernel starts."""

    requests: tuple[str, ...]
    notebook: Path | None
    output: Path
    cwd: Path
    env: dict[str, str]
    ask_needed: bool


def run_command(args: argparse.Namespace) -> int:
    try:
        plan = make_plan(args)
    except UsageProblem as problem:
        print(f"codeact run: {problem}", file=sys.stderr)
        return USAGE
    return execute(plan, args)


def make_plan(args: argparse.Namespace, environ: dict[str, str] | None = None) -> Plan:
    from .errors import ConfigurationError
    from .settings import resolve

    targets: list[str] = args.targets
    notebooks = [t for t in targets if is_notebook_target(t)]
    notebook: Path | None = None
    if notebooks:
        if len(targets) > 1:
            raise UsageProblem("give one notebook, or requests, not both or several notebooks")
        notebook = Path(notebooks[0])
        if not notebook.is_file():
            raise UsageProblem(f"no such notebook: {notebook}")
    elif args.replay:
        raise UsageProblem("--replay re-runs a notebook's generated cells: give a notebook")
    if any(not t.strip() for t in targets):
        raise UsageProblem("a request is empty: say what the model should do")
    if args.output:
        output = Path(args.output)
    elif notebook is not None:
        output = notebook
    else:
        output = default_output(time.strftime("%Y%m%d-%H%M%S"))
    # Checked now, not after the model's work: a notebook that cannot be written is lost.
    if not output.parent.resolve().is_dir():
        raise UsageProblem(f"cannot write {output}: {output.parent} is not a directory")
    if output.is_dir():
        raise UsageProblem(f"cannot write {output}: it is a directory (give a file name)")
    if not os.access(output.parent.resolve(), os.W_OK):
        raise UsageProblem(f"cannot write {output}: {output.parent} is not writable")
    cwd = Path(args.cwd) if args.cwd else (notebook.parent if notebook else Path.cwd())
    if not cwd.is_dir():
        raise UsageProblem(f"--cwd {cwd} is not a directory")
    env = dict(os.environ if environ is None else environ)
    for variable, value in (
        ("CODEACT_MODEL", args.model),
        ("CODEACT_BASE_URL", args.base_url),
        ("CODEACT_MAX_STEPS", args.max_steps),
        ("CODEACT_APPROVAL", args.approval),
        ("CODEACT_ACTION_FORMAT", args.action_format),
    ):
        if value is not None:
            env[variable] = str(value)
    try:
        # The same checks the kernel makes, before it starts: a bad value is a usage error.
        settings = resolve(environ=env)
        if args.model:
            from .providers import parse_model_name

            parse_model_name(args.model)
    except ConfigurationError as error:
        raise UsageProblem(str(error)) from None
    return Plan(
        requests=tuple(targets) if notebook is None else (),
        notebook=notebook,
        output=output,
        cwd=cwd.resolve(),
        env=env,
        ask_needed=settings.approval == "ask",
    )


def default_output(stamp: str, directory: Path = Path()) -> Path:
    """`codeact-<stamp>.ipynb`, or `-2`, `-3`… after it: a run must not write over the
    notebook of another one started in the same second (a script's parallel jobs)."""
    candidate, number = directory / f"codeact-{stamp}.ipynb", 1
    while candidate.exists():
        number += 1
        candidate = directory / f"codeact-{stamp}-{number}.ipynb"
    return candidate


def is_notebook_target(target: str) -> bool:
    """A notebook to run, not a request: `x.ipynb`, or a notebook that exists. A sentence
    that ends with a notebook's name ("summarize analysis.ipynb") is a request."""
    if not target.lower().endswith(".ipynb"):
        return False
    return not any(space.isspace() for space in target) or Path(target).is_file()


def execute(plan: Plan, args: argparse.Namespace) -> int:
    import nbformat

    from .headless import (
        HeadlessError,
        HeadlessKernel,
        Interrupts,
        cells_to_run,
        expected_to_fail,
        tty_asker,
    )
    from .headless_notebook import NotebookBuilder, new_notebook, strip_running, with_cell_ids
    from .headless_progress import JsonReporter, Reporter, TerminalReporter

    ask = tty_asker()
    if plan.ask_needed and ask is None:
        print(
            "codeact run: approval is 'ask' but there is no terminal to ask on (/dev/tty). "
            "Run it from a terminal, or use --approval auto to run actions without review.",
            file=sys.stderr,
        )
        return USAGE
    if plan.notebook is not None:
        try:
            notebook = with_cell_ids(nbformat.read(plan.notebook, as_version=4))
        except Exception as error:
            print(f"codeact run: {plan.notebook} is not a notebook: {error}", file=sys.stderr)
            return USAGE
        # The run writes a valid notebook: a broken one is refused before the model works.
        problem = invalid_because(notebook)
        if problem:
            print(
                f"codeact run: {plan.notebook} is not a valid notebook: {problem}", file=sys.stderr
            )
            return USAGE
    else:
        notebook = new_notebook()
        notebook.cells = [nbformat.v4.new_code_cell(as_prompt(r)) for r in plan.requests]
    reporter: Reporter = (
        JsonReporter()
        if args.json
        else TerminalReporter(color=_color(sys.stderr), cells=plan.notebook is not None)
    )
    builder = NotebookBuilder(notebook)
    interrupts = Interrupts(
        deadline=time.monotonic() + args.timeout if args.timeout is not None else None
    )
    kernel = HeadlessKernel(
        builder,
        reporter,
        kernel_name=args.kernel,
        cwd=str(plan.cwd),
        env=plan.env,
        replay=args.replay,
        ask=ask,
        interrupts=interrupts,
    )
    failed = False
    with interrupts.catching():
        try:
            kernel.start()
            for cell_id in cells_to_run(notebook, replay=args.replay):
                if interrupts.due():
                    break
                cell = next((c for c in notebook.cells if c.id == cell_id), None)
                if cell is None:
                    continue  # a generated cell its prompt's new request replaced
                result = kernel.run_cell(cell, notebook.cells.index(cell))
                if result.status == "interrupted":
                    break
                if result.status == "error" and (result.request or not expected_to_fail(cell)):
                    failed = True
                    break
        except HeadlessError as error:
            print(f"codeact run: {error}", file=sys.stderr)
            failed = True
        finally:
            strip_running(notebook.cells)
            if kernel.language_info:
                notebook.metadata["language_info"] = kernel.language_info
            written = write_notebook(notebook, plan.output)
            kernel.shutdown()
    if interrupts.timed_out:
        message = f"--timeout {args.timeout:g} s passed: the kernel was interrupted"
        reporter.emit({"event": "notice", "message": message})
    elif interrupts.count:
        how = "terminated" if interrupts.terminated else "interrupted"
        print(f"codeact run: {how}; the notebook so far is in {plan.output}", file=sys.stderr)
    if interrupts.count and not interrupts.timed_out:
        status = TERMINATED if interrupts.terminated else INTERRUPTED
    else:
        status = FAILED if failed or interrupts.timed_out or not written else OK
    if written:
        reporter.emit(
            {
                "event": "notebook_written",
                "path": str(plan.output),
                "cells": len(notebook.cells),
                "exit_status": status,
            }
        )
    return status


def as_prompt(request: str) -> str:
    """The prompt cell for a request: as written, or under `%%codeact` when the kernel
    would take the words for code (`codeact run "help"`)."""
    from .routing import route_cell

    if route_cell(request).kind == "natural_language":
        return request
    return f"%%codeact\n{request}"


def invalid_because(notebook: Any) -> str:
    """Why `notebook` breaks the nbformat schema, in one line ("" when it is valid)."""
    import nbformat

    try:
        nbformat.validate(notebook)
    except nbformat.ValidationError as error:
        where = "/".join(str(part) for part in error.absolute_path)
        return f"{error.message} (at {where or 'the top'})"
    return ""


def write_notebook(notebook: Any, path: Path) -> bool:
    """Validate and write atomically (a reader never sees half a notebook)."""
    import nbformat

    partial = path.with_name(f".{path.name}.partial")
    try:
        nbformat.validate(notebook)
        nbformat.write(notebook, str(partial))
        os.replace(partial, path)
    except Exception as error:
        print(f"codeact run: could not write {path}: {error}", file=sys.stderr)
        with contextlib.suppress(OSError):
            partial.unlink()
        return False
    return True


def _color(stream: Any) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)()) and not os.environ.get("NO_COLOR")


if __name__ == "__main__":
    sys.exit(main())
