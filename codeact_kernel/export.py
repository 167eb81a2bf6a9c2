"""Trajectories out of notebooks and sessions, as JSONL training data.

Where records come from (trajectory.py has the record):

- a notebook: a prompt cell's `metadata.codeact.trajectory` (Lab, headless), else the
  footer output's `metadata["codeact"]["trajectory"]` (every frontend); each request
  once, in notebook order. The cells generated for a request (`metadata.codeact` with
  its `request_id` and `step`) are checked against the record: one whose source no
  longer has its recorded hash was edited by hand, one that is gone was deleted. The
  export still says what the model did, and lists those cells in `edited_cells`;
- a live session: the records of the requests it ran (`%codeact export`).

Formats, one JSON object per line and request:

- `codeact`: CodeActInstruct's `{"id", "conversations": [{"role", "content"}],
  "edited_cells"}`, roles system/user/assistant, every action written as
  `<execute>…</execute>` (and the system prompt asking for that) whatever the request
  used, the observations as user turns that start "Observation:";
- `openai`: chat fine-tuning's `{"messages": [{"role", "content"}]}`, nothing else (the
  fine-tuning API takes no other keys);
- `sharegpt`: `{"id", "conversations": [{"from": system|human|gpt, "value"}],
  "edited_cells"}`.

Filters: `only_successful` keeps the requests that ended with a final answer;
`drop_failed_steps` removes each failed action's answer and observation (as
CodeActInstruct's filtering did), which keeps user and assistant turns alternating.

Ids derive from the record (its request id and conversation), never from the time
of the export, so exporting the same notebook twice gives the same ids. Every text is
redacted once more on the way out (`secrets.py`: key shapes, secret-looking
environment variables, and the secrets of a live session).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any, Literal

from .actions import parse_answer
from .context import OBSERVATION, convert_system_prompt
from .provenance import METADATA_KEY, source_hash
from .secrets import Redactor, find_secrets
from .trajectory import ChatMessage, Trajectory, TrajectoryFormatError

Format = Literal["codeact", "openai", "sharegpt"]
FORMATS: tuple[Format, ...] = ("codeact", "openai", "sharegpt")

Change = Literal["edited", "deleted"]

_SHAREGPT_ROLES = {"system": "system", "user": "human", "assistant": "gpt"}


@dataclass(frozen=True)
class ExportOptions:
    format: Format = "codeact"
    only_successful: bool = False
    drop_failed_steps: bool = False


@dataclass(frozen=True)
class EditedCell:
    """A generated cell the user changed after the request made it."""

    step: int
    change: Change


@dataclass(frozen=True)
class Found:
    """A record, with what the notebook that held it says about its cells."""

    trajectory: Trajectory
    edited_cells: tuple[EditedCell, ...] = ()


@dataclass(frozen=True)
class Unreadable:
    """A record in a notebook that does not follow the schema: skipped, and said so."""

    cell: int
    reason: str


# --- reading -----------------------------------------------------------------------------


def records_from_notebook(notebook: Mapping[str, Any]) -> tuple[list[Found], list[Unreadable]]:
    """The requests recorded in `notebook` (an nbformat notebook or its JSON), in order,
    and the records that could not be read."""
    cells = [cell for cell in notebook.get("cells") or () if isinstance(cell, Mapping)]
    generated = _generated_cells(cells)
    found: list[Found] = []
    unreadable: list[Unreadable] = []
    seen: set[str] = set()
    for index, cell in enumerate(cells):
        prompt = _codeact(cell)
        makes_cells = prompt.get("role") == "prompt"
        candidates = [prompt.get("trajectory")] if makes_cells else []
        candidates += [_codeact(output).get("trajectory") for output in _outputs(cell)]
        for data in candidates:
            if data is None:
                continue
            try:
                record = Trajectory.from_json(data)
            except TrajectoryFormatError as error:
                unreadable.append(Unreadable(index, str(error)))
                continue
            if record.request_id in seen:
                continue
            seen.add(record.request_id)
            # Inline frontends make no cells: only a prompt cell that made them can
            # have lost some.
            edits = _edits(record, generated) if makes_cells else ()
            found.append(Found(record, edits))
    return found, unreadable


def records_from_session(records: Iterable[Trajectory]) -> list[Found]:
    """The requests of a live session (`Session.records`): no cells to check."""
    return [Found(record) for record in records]


def _generated_cells(
    cells: Iterable[Mapping[str, Any]],
) -> dict[tuple[str, int], Mapping[str, Any]]:
    made: dict[tuple[str, int], Mapping[str, Any]] = {}
    for cell in cells:
        codeact = _codeact(cell)
        request_id, step = codeact.get("request_id"), codeact.get("step")
        if isinstance(request_id, str) and type(step) is int and "role" not in codeact:
            made[(request_id, step)] = cell
    return made


def _edits(
    record: Trajectory, generated: Mapping[tuple[str, int], Mapping[str, Any]]
) -> tuple[EditedCell, ...]:
    edits: list[EditedCell] = []
    for step in record.steps:
        if step.code is None:
            continue  # no action, no cell
        cell = generated.get((record.request_id, step.step))
        if cell is None:
            edits.append(EditedCell(step.step, "deleted"))
            continue
        # The hash the cell was made with, or the code that ran (a user may have edited
        # the action before approving it, and the cell then shows what ran).
        now = source_hash(_source(cell))
        if now not in (_codeact(cell).get("source_hash"), source_hash(step.code)):
            edits.append(EditedCell(step.step, "edited"))
    return tuple(edits)


def _codeact(item: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = item.get("metadata")
    codeact = metadata.get(METADATA_KEY) if isinstance(metadata, Mapping) else None
    return codeact if isinstance(codeact, Mapping) else {}


def _outputs(cell: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    outputs = cell.get("outputs")
    return [o for o in outputs if isinstance(o, Mapping)] if isinstance(outputs, list) else []


def _source(cell: Mapping[str, Any]) -> str:
    source = cell.get("source", "")
    # nbformat allows a list of lines.
    return "".join(source) if isinstance(source, list) else str(source)


# --- writing -----------------------------------------------------------------------------


def export_record(
    found: Found, options: ExportOptions, redact: Redactor | None = None
) -> dict[str, Any] | None:
    """The JSON object of one request in `options.format`; None when filtered out."""
    record = found.trajectory
    if options.only_successful and not record.succeeded:
        return None
    clean = redact or export_redactor()
    messages = [ChatMessage(m.role, clean(m.content)) for m in conversation(record, options)]
    if options.format == "openai":
        return {"messages": [{"role": m.role, "content": m.content} for m in messages]}
    edited = [{"step": edit.step, "change": edit.change} for edit in found.edited_cells]
    if options.format == "codeact":
        turns = [{"role": m.role, "content": m.content} for m in messages]
        return {"id": record_id(record), "conversations": turns, "edited_cells": edited}
    if options.format == "sharegpt":
        turns = [{"from": _SHAREGPT_ROLES[m.role], "value": m.content} for m in messages]
        return {"id": record_id(record), "conversations": turns, "edited_cells": edited}
    raise ValueError(f"Unknown export format {options.format!r}: use one of {', '.join(FORMATS)}.")


def conversation(record: Trajectory, options: ExportOptions) -> list[ChatMessage]:
    """The system prompt and the request's messages, filtered and formatted as asked."""
    messages = list(record.messages)
    if options.drop_failed_steps:
        messages = _without_failed_steps(record, messages)
    system = record.system
    if options.format == "codeact":
        source = str(record.settings.get("action_format", "markdown"))
        system = convert_system_prompt(system, source, "execute")
        messages = [
            ChatMessage(m.role, as_execute(m.content) if m.role == "assistant" else m.content)
            for m in messages
        ]
    return [ChatMessage("system", system), *messages] if system else messages


def as_execute(answer: str) -> str:
    """`answer` with each action block written as `<execute>…</execute>`."""
    parsed = parse_answer(answer)
    if all(block.kind == "execute" for block in parsed.actions):
        return answer
    pieces: list[str] = []
    position = 0
    for block in parsed.actions:
        pieces.append(parsed.text[position : block.start])
        pieces.append(f"<execute>\n{block.code}\n</execute>")
        position = block.end
    pieces.append(parsed.text[position:])
    return "".join(pieces)


def _without_failed_steps(record: Trajectory, messages: list[ChatMessage]) -> list[ChatMessage]:
    # A step that ran has an answer and an observation of its own, never merged with
    # another step's (roles alternate): removing the pair keeps the alternation.
    kept = list(messages)
    for step in record.steps:
        if not step.failed or not step.answer or not step.observed:
            continue
        pair = [
            ChatMessage("assistant", step.answer),
            ChatMessage("user", OBSERVATION + step.observed),
        ]
        for index in range(len(kept) - 1):
            if kept[index : index + 2] == pair:
                del kept[index : index + 2]
                break
    return kept


def record_id(record: Trajectory) -> str:
    """Stable: the same record gives the same id, whenever and however often exported."""
    content = json.dumps(
        [record.request_id, record.system, [[m.role, m.content] for m in record.messages]],
        ensure_ascii=False,
    )
    return "codeact-" + hashlib.sha256(content.encode("utf-8", "replace")).hexdigest()[:20]


def export_redactor(secrets: Collection[str] = ()) -> Redactor:
    """Key shapes, secret-looking environment variables and `secrets`."""
    return Redactor.of([*secrets, *find_secrets(())])


def export_lines(
    found: Iterable[Found], options: ExportOptions, redact: Redactor | None = None
) -> Iterator[str]:
    """One JSON line per exported request."""
    clean = redact or export_redactor()
    for item in found:
        exported = export_record(item, options, clean)
        if exported is not None:
            yield well_formed(json.dumps(exported, ensure_ascii=False))


def well_formed(text: str) -> str:
    """`text` with lone surrogates (JSON may escape them; UTF-8 cannot hold them) as U+FFFD,
    so a line with one is still written, and read back, as UTF-8."""
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def unfit_target(path: str | os.PathLike[str]) -> str | None:
    """Why an export must not be written to `path`, or None. A notebook named there
    (most likely meant as an input) would be replaced by JSONL and lost."""
    if os.fspath(path).lower().endswith(".ipynb"):
        return "the export is JSONL, not a notebook; name it .jsonl"
    return None


def write_jsonl(
    path: str | os.PathLike[str],
    found: Iterable[Found],
    options: ExportOptions,
    redact: Redactor | None = None,
) -> int:
    """Write the export to `path`; how many records it holds."""
    with open(path, "w", encoding="utf-8") as stream:
        return write_lines(stream, found, options, redact)


def write_lines(
    stream: IO[str], found: Iterable[Found], options: ExportOptions, redact: Redactor | None = None
) -> int:
    count = 0
    for line in export_lines(found, options, redact):
        stream.write(line + "\n")
        count += 1
    return count
