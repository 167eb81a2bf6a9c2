"""`codeact export NOTEBOOK… -o FILE.jsonl`: a notebook's requests as training data.

The `codeact` command (cli.py) registers this subcommand with `add_parser`. Exit
status: 0 when everything found was written (also when the filters left nothing),
1 when some records could not be read (the others are written; the unreadable ones are
named on stderr), 2 for usage errors: an option, a notebook that is missing or not a
notebook, notebooks that hold no CodeAct request at all, an output that cannot be
written or is a notebook.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .export import (
    FORMATS,
    ExportOptions,
    Found,
    records_from_notebook,
    unfit_target,
    write_jsonl,
    write_lines,
)

OK, SOME_UNREADABLE, USAGE = 0, 1, 2

DESCRIPTION = """\
Export the CodeAct requests recorded in notebooks as JSONL, one line per request.

Every notebook this kernel ran keeps each request's trajectory (JupyterLab with the
extension, `codeact run`, papermill/nbclient and other frontends alike): the system
prompt, the request, each answer and the observation the model saw, the final answer.
Generated cells edited or deleted by hand are listed in `edited_cells`; the export
says what the model did. Secrets are redacted.

formats:
  codeact   {"id", "conversations": [{"role", "content"}], "edited_cells"}
            (CodeActInstruct; actions as <execute>, observations as user turns)
  openai    {"messages": [{"role", "content"}]}   (chat fine-tuning)
  sharegpt  {"id", "conversations": [{"from", "value"}], "edited_cells"}

exit status: 0 written, 1 some records unreadable (the rest written),
2 usage error (missing or invalid notebook, no CodeAct requests in any, an -o
that cannot be written or is a notebook)."""

EPILOG = """\
examples:
  codeact export analysis.ipynb -o analysis.jsonl
  codeact export runs/*.ipynb -o train.jsonl --format openai --only-successful"""


def add_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Register `export` on the `codeact` command's subparsers."""
    parser = subparsers.add_parser(
        "export",
        help="export notebooks' CodeAct requests as JSONL trajectories",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("notebooks", nargs="+", metavar="NOTEBOOK", help="notebooks to read")
    parser.add_argument(
        "-o",
        "--output",
        default="-",
        metavar="FILE",
        help="the JSONL file to write (default: standard output)",
    )
    parser.add_argument(
        "--format", choices=FORMATS, default="codeact", help="record format (default: codeact)"
    )
    parser.add_argument(
        "--only-successful",
        action="store_true",
        help="keep only requests that ended with a final answer",
    )
    parser.add_argument(
        "--drop-failed-steps",
        action="store_true",
        help="remove failed actions (their answer and observation)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Read the notebooks, write the export; the exit status."""
    found: list[Found] = []
    unreadable = 0
    if args.output != "-" and any(_same_file(args.output, name) for name in args.notebooks):
        # Writing there would replace a notebook by its own export: the notebook is lost.
        return _usage(f"-o {args.output} is one of the notebooks to read: give another file")
    if problem := unfit_target(args.output):
        return _usage(f"-o {args.output}: {problem}")
    for name in args.notebooks:
        try:
            notebook = _read(Path(name))
        except ValueError as error:
            return _usage(f"{name}: {error}")
        records, bad = records_from_notebook(notebook)
        for item in bad:
            print(
                f"codeact export: {name}: cell {item.cell}: skipped: {item.reason}", file=sys.stderr
            )
        unreadable += len(bad)
        if not records and not bad:
            print(f"codeact export: {name}: no CodeAct requests", file=sys.stderr)
        found += records
    if not found and not unreadable:
        return _usage("no CodeAct requests in the notebooks given: nothing to export")
    options = ExportOptions(args.format, args.only_successful, args.drop_failed_steps)
    try:
        if args.output == "-":
            count = write_lines(sys.stdout, found, options)
        else:
            count = write_jsonl(args.output, found, options)
    except OSError as error:
        return _usage(f"cannot write {args.output}: {error.strerror or error}")
    where = "standard output" if args.output == "-" else args.output
    print(
        f"codeact export: {count} of {len(found)} request(s) written to {where} ({args.format})",
        file=sys.stderr,
    )
    return SOME_UNREADABLE if unreadable else OK


def _read(path: Path) -> Any:
    """The notebook at `path`; `ValueError` saying why when there is none.

    Plain JSON: nbformat's validator takes seconds to import, and a record is checked
    against its own schema anyway.
    """
    if not path.is_file():
        raise ValueError("no such file")
    try:
        notebook = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read it: {error}") from None
    except ValueError as error:
        raise ValueError(f"not a Jupyter notebook (invalid JSON: {error})") from None
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise ValueError("not a Jupyter notebook in nbformat 4 (no list of cells)")
    return notebook


def _same_file(first: str, second: str) -> bool:
    try:
        return Path(first).resolve() == Path(second).resolve() or Path(first).samefile(second)
    except OSError:
        return False


def _usage(message: str) -> int:
    print(f"codeact export: error: {message}", file=sys.stderr)
    return USAGE
