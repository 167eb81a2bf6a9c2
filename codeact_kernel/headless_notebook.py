"""The notebook a headless run writes: the cells JupyterLab with the extension makes.

Pure functions and one builder over an nbformat notebook, no kernel and no I/O, so the
rules are unit-tested on their own. They mirror the extension (labextension/src/cells.ts
for placement and replacement, outputs.ts for outputs, controller.ts for what each comm
message does) and the shared `metadata.codeact` records of provenance.py:

- a generated cell is identified by (prompt cell id, request id, step), so a repeated
  message updates the cell it made instead of adding one;
- a new action goes right below the latest earlier step of its request, else above the
  first later one, else right below the prompt;
- a new request of a prompt deletes the cells its earlier runs made, except those the
  user edited since (their source no longer has the recorded hash, or their type changed);
- a failed action is tagged `raises-exception`, a declined one becomes a raw cell, one
  still running when its request ends is `interrupted`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import nbformat
from nbformat import NotebookNode

from .install import DISPLAY_NAME, KERNEL_NAME
from .provenance import METADATA_KEY, RAISES_EXCEPTION, VERSION, source_hash

ACTIVE = ("running", "pending")
"""Statuses a generated cell has only while its request runs."""

OUTPUT_MESSAGES = frozenset(
    {"stream", "display_data", "execute_result", "error", "clear_output", "update_display_data"}
)


# --- provenance ------------------------------------------------------------------------


def provenance(cell: Mapping[str, Any]) -> dict[str, Any] | None:
    """`metadata.codeact` of a generated cell, or None (user cells, prompt and answer cells)."""
    record = (cell.get("metadata") or {}).get(METADATA_KEY)
    if not isinstance(record, Mapping):
        return None
    if not (
        isinstance(record.get("prompt_cell_id"), str)
        and isinstance(record.get("request_id"), str)
        and isinstance(record.get("step"), int)
        and isinstance(record.get("source_hash"), str)
    ):
        return None
    return dict(record)


def role(cell: Mapping[str, Any]) -> str | None:
    """`prompt` or `answer` for the cells CodeAct marks so, else None."""
    record = (cell.get("metadata") or {}).get(METADATA_KEY)
    value = record.get("role") if isinstance(record, Mapping) else None
    return value if isinstance(value, str) else None


def is_answered(cell: Mapping[str, Any]) -> bool:
    """A prompt cell that a request answered before (it has a prompt record)."""
    record = (cell.get("metadata") or {}).get(METADATA_KEY)
    return (
        role(cell) == "prompt"
        and isinstance(record, Mapping)
        and isinstance(record.get("request_id"), str)
    )


def source_of(cell: Mapping[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def is_edited(cell: Mapping[str, Any]) -> bool:
    """Whether the user changed a generated cell since it was generated."""
    record = provenance(cell)
    if record is None:
        return False
    expected = "raw" if record.get("status") == "skipped" else "code"
    return (
        cell.get("cell_type") != expected or source_hash(source_of(cell)) != record["source_hash"]
    )


def generated_by(cells: Sequence[Mapping[str, Any]], prompt_id: str) -> list[int]:
    """Indices of the cells generated for `prompt_id`, in notebook order."""
    return [
        index
        for index, cell in enumerate(cells)
        if (provenance(cell) or {}).get("prompt_cell_id") == prompt_id
    ]


def find_action(
    cells: Sequence[Mapping[str, Any]], prompt_id: str, request_id: str, step: int
) -> int:
    """Index of the cell of one action, or -1."""
    for index, cell in enumerate(cells):
        record = provenance(cell)
        if (
            record is not None
            and record["prompt_cell_id"] == prompt_id
            and record["request_id"] == request_id
            and record["step"] == step
        ):
            return index
    return -1


def index_of(cells: Sequence[Mapping[str, Any]], cell_id: str) -> int:
    return next((i for i, cell in enumerate(cells) if cell.get("id") == cell_id), -1)


def insertion_index(
    cells: Sequence[Mapping[str, Any]], prompt_id: str, request_id: str, step: int
) -> int | None:
    """Where a new action cell goes; None when the prompt cell is not in the notebook."""
    prompt = index_of(cells, prompt_id)
    if prompt < 0:
        return None
    before: tuple[int, int] | None = None  # (step, index)
    after: tuple[int, int] | None = None
    for index, cell in enumerate(cells):
        record = provenance(cell)
        if record is None or (record["prompt_cell_id"], record["request_id"]) != (
            prompt_id,
            request_id,
        ):
            continue
        if record["step"] < step and (before is None or record["step"] > before[0]):
            before = (record["step"], index)
        elif record["step"] > step and (after is None or record["step"] < after[0]):
            after = (record["step"], index)
    if before is not None:
        return before[1] + 1
    if after is not None:
        return after[1]
    return prompt + 1


@dataclass(frozen=True)
class Replacement:
    """What a new request of a prompt does to the cells its earlier runs generated."""

    remove: tuple[str, ...]
    """Ids of unedited cells: deleted."""
    keep: tuple[str, ...]
    """Ids of edited cells: left exactly as they are."""


def replacement(cells: Sequence[Mapping[str, Any]], prompt_id: str, request_id: str) -> Replacement:
    remove: list[str] = []
    keep: list[str] = []
    for index in generated_by(cells, prompt_id):
        cell = cells[index]
        if (provenance(cell) or {}).get("request_id") == request_id:
            continue
        (keep if is_edited(cell) else remove).append(str(cell.get("id")))
    # The answer cell of an earlier run is the model's text, not the user's: it goes too.
    for cell in cells:
        record = (cell.get("metadata") or {}).get(METADATA_KEY)
        if (
            role(cell) == "answer"
            and isinstance(record, Mapping)
            and record.get("prompt_cell_id") == prompt_id
            and record.get("request_id") != request_id
        ):
            remove.append(str(cell.get("id")))
    return Replacement(tuple(remove), tuple(keep))


def replay_steps(cells: Sequence[Mapping[str, Any]], prompt_id: str) -> list[dict[str, Any]]:
    """The `steps` of a replay offer: the prompt's generated cells, in notebook order."""
    steps = []
    for index in generated_by(cells, prompt_id):
        record = provenance(cells[index]) or {}
        steps.append(
            {
                "step": record["step"],
                "code": source_of(cells[index]),
                "status": record.get("status"),
            }
        )
    return steps


def with_tag(tags: object, tag: str) -> list[str]:
    listed = [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []
    return listed if tag in listed else [*listed, tag]


# --- outputs ---------------------------------------------------------------------------


def to_output(msg_type: str, content: Mapping[str, Any]) -> NotebookNode | None:
    """The nbformat output an IOPub message adds, or None for clear/update/other messages."""
    if msg_type == "stream":
        return nbformat.v4.new_output("stream", name=content.get("name"), text=content.get("text"))
    if msg_type == "display_data":
        return nbformat.v4.new_output(
            "display_data", data=content.get("data", {}), metadata=content.get("metadata", {})
        )
    if msg_type == "execute_result":
        return nbformat.v4.new_output(
            "execute_result",
            data=content.get("data", {}),
            metadata=content.get("metadata", {}),
            execution_count=content.get("execution_count"),
        )
    if msg_type == "error":
        return nbformat.v4.new_output(
            "error",
            ename=content.get("ename", ""),
            evalue=content.get("evalue", ""),
            traceback=content.get("traceback", []),
        )
    return None


def display_id(content: Mapping[str, Any]) -> str | None:
    value = (content.get("transient") or {}).get("display_id")
    return value if isinstance(value, str) and value else None


@dataclass
class OutputCollector:
    """Collects one cell's outputs from IOPub messages, as JupyterLab's output area does:
    streams, displays (tracked by display id for updates), `clear_output(wait=True)`."""

    outputs: list[Any]
    live: bool = False
    _displays: dict[str, list[int]] = field(default_factory=dict)
    _clear_next: bool = False

    def apply(self, msg_type: str, content: Mapping[str, Any]) -> bool:
        """Apply an output message; False when it is not one."""
        if msg_type == "clear_output":
            if content.get("wait"):
                self._clear_next = True
            else:
                self.outputs.clear()
                self._displays.clear()
            self.live = True
            return True
        if msg_type == "update_display_data":
            return self.update(content)
        output = to_output(msg_type, content)
        if output is None:
            return False
        if self._clear_next:
            self.outputs.clear()
            self._displays.clear()
            self._clear_next = False
        if output.output_type == "stream" and self.outputs:
            last = self.outputs[-1]
            if last.get("output_type") == "stream" and last.get("name") == output.name:
                # Consecutive stream messages are one output, as a notebook saves them.
                last["text"] = str(last.get("text", "")) + str(output.text)
                self.live = True
                return True
        self.outputs.append(output)
        identifier = display_id(content)
        if identifier is not None and msg_type == "display_data":
            self._displays.setdefault(identifier, []).append(len(self.outputs) - 1)
        self.live = True
        return True

    def has(self, identifier: str) -> bool:
        return identifier in self._displays

    def update(self, content: Mapping[str, Any]) -> bool:
        """Update every output of the message's display id here; False if none is here."""
        identifier = display_id(content)
        indices = self._displays.get(identifier) if identifier else None
        if not indices:
            return False
        for index in indices:
            if index < len(self.outputs):
                self.outputs[index] = nbformat.v4.new_output(
                    "display_data",
                    data=content.get("data", {}),
                    metadata=content.get("metadata", {}),
                )
        return True


# --- the notebook ----------------------------------------------------------------------


def new_notebook(language_info: Mapping[str, Any] | None = None) -> NotebookNode:
    """An empty notebook for the codeact kernel (nbformat 4.5: cells have ids)."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": KERNEL_NAME,
        "display_name": DISPLAY_NAME,
        "language": "python",
    }
    if language_info:
        notebook.metadata["language_info"] = dict(language_info)
    return notebook


def prompt_cell(request: str) -> NotebookNode:
    return nbformat.v4.new_code_cell(request)


def with_cell_ids(notebook: NotebookNode) -> NotebookNode:
    """The notebook as nbformat 4.5 with an id on every cell: the prompt cell's id is what
    its generated cells point to."""
    notebook.nbformat, notebook.nbformat_minor = 4, max(5, int(notebook.get("nbformat_minor", 0)))
    seen: set[str] = set()
    for cell in notebook.cells:
        identifier = cell.get("id")
        if not isinstance(identifier, str) or not identifier or identifier in seen:
            cell["id"] = nbformat.v4.new_code_cell().id
        seen.add(cell["id"])
    return notebook


@dataclass
class NotebookBuilder:
    """Applies a request's comm messages (docs/protocol.md) to a notebook, as the
    extension's controller does; the runner feeds it the messages in IOPub order."""

    notebook: NotebookNode
    collectors: dict[tuple[str, int], OutputCollector] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)
    """The model of each request, from its `request_start`."""
    replaced: set[str] = field(default_factory=set)
    """Requests that have replaced their prompt's earlier cells."""
    folded: set[tuple[str, int]] = field(default_factory=set)
    """Failed steps folded once (request id, step)."""

    @property
    def cells(self) -> list[NotebookNode]:
        return list(self.notebook.cells)

    def request_start(self, message: Mapping[str, Any]) -> None:
        self.models[message["request_id"]] = str(message.get("model") or "")

    def replace_earlier_runs(self, prompt_id: str, request_id: str) -> list[str]:
        """Delete the cells earlier runs of the prompt made (unless edited), once, when
        this run makes its first cell: a run that fails before that leaves them. Their ids."""
        if request_id in self.replaced:
            return []
        self.replaced.add(request_id)
        doomed = set(replacement(self.cells, prompt_id, request_id).remove)
        self.notebook.cells = [cell for cell in self.notebook.cells if cell.get("id") not in doomed]
        return sorted(doomed)

    def action_start(self, message: Mapping[str, Any]) -> NotebookNode | None:
        """Insert the action's cell (status `running`), or find the one already made."""
        self.replace_earlier_runs(message["cell_id"], message["request_id"])
        cell = self._upsert(message)
        if cell is not None and cell.cell_type == "code":
            key = (message["request_id"], int(message["step"]))
            self.collectors[key] = OutputCollector(cell.outputs)
        return cell

    def collector(self, request_id: str, step: int) -> OutputCollector | None:
        return self.collectors.get((request_id, step))

    def update_display(self, request_id: str, content: Mapping[str, Any]) -> bool:
        """An update of a display that one of the request's actions showed."""
        return any(
            collector.update(content)
            for (request, _), collector in self.collectors.items()
            if request == request_id
        )

    def approval_request(self, message: Mapping[str, Any]) -> None:
        self._set_status(message, "pending")

    def action_end(self, message: Mapping[str, Any]) -> NotebookNode | None:
        """Fill in the action's outputs, count, status and what the model saw."""
        cell = self._upsert(message)
        if cell is None:
            return None
        step = int(message["step"])
        collector = self.collectors.get((message["request_id"], step))
        if cell.cell_type == "code":
            if collector is None or not collector.live:
                # Nothing arrived live for this step: take the kernel's copy.
                cell.outputs = [nbformat.from_dict(dict(o)) for o in message.get("outputs", [])]
            cell.execution_count = message.get("execution_count")
        record = cell.metadata[METADATA_KEY]
        for name in ("answer", "observed"):
            if isinstance(message.get(name), str):
                record[name] = message[name]
        if source_of(cell) == message.get("code"):
            # What ran is what the cell shows (approved, maybe edited before approval).
            record["source_hash"] = source_hash(source_of(cell))
        self._set_status(message, str(message.get("status", "ok")), message.get("error_name"))
        if message.get("status") == "skipped":
            cell = self._to_raw(message)
        self.fold_fixed(message["request_id"])
        return cell

    def fold_fixed(self, request_id: str) -> None:
        """Fold each failed attempt that a later step of the same run fixed, as the
        extension does while a run goes on: the run then reads as what worked."""
        steps = [
            (record, cell)
            for cell in self.notebook.cells
            if (record := provenance(cell)) is not None and record["request_id"] == request_id
        ]
        fixed = [step for step, cell in steps if step.get("status") == "ok"]
        for record, cell in steps:
            if record.get("status") != "error" or (request_id, record["step"]) in self.folded:
                continue
            if any(later["step"] > record["step"] for later in fixed):
                self.folded.add((request_id, record["step"]))
                # What JupyterLab saves for a cell whose code and outputs are hidden.
                cell.metadata["collapsed"] = True
                cell.metadata["jupyter"] = {
                    **cell.metadata.get("jupyter", {}),
                    "outputs_hidden": True,
                    "source_hidden": True,
                }

    def request_end(self, message: Mapping[str, Any]) -> NotebookNode | None:
        """Mark the prompt cell, end what still runs, and add the answer cell if any."""
        prompt_id, request_id = message["cell_id"], message["request_id"]
        record = message.get("record")
        record = record if isinstance(record, Mapping) else None
        status = str(message.get("status") or "error")
        model = str((record or {}).get("model") or "") or self.models.get(request_id, "")
        answer = message.get("answer_cell")
        answered = isinstance(answer, str) and bool(answer.strip())
        if answered:
            self.replace_earlier_runs(prompt_id, request_id)
        self.mark_prompt(prompt_id, request_id, model=model, status=status, record=record)
        self.finish(request_id)
        if not answered:
            return None
        return self.add_answer(prompt_id, request_id, str(answer), model)

    def mark_prompt(
        self,
        prompt_id: str,
        request_id: str,
        *,
        model: str,
        status: str,
        record: Mapping[str, Any] | None,
    ) -> None:
        index = index_of(self.cells, prompt_id)
        if index < 0:
            return
        cell = self.notebook.cells[index]
        earlier = cell.metadata.get(METADATA_KEY)
        # Fields an earlier run's record has that this one does not set are kept.
        marked: dict[str, Any] = dict(earlier) if role(cell) == "prompt" else {}
        marked.update(
            version=VERSION, role="prompt", request_id=request_id, model=model, status=status
        )
        if record is not None:
            marked["trajectory"] = copy.deepcopy(dict(record))
        else:
            marked.pop("trajectory", None)
        cell.metadata[METADATA_KEY] = marked

    def add_answer(self, prompt_id: str, request_id: str, text: str, model: str) -> NotebookNode:
        """The final answer as a Markdown cell after the request's last step cell."""
        steps = [
            i
            for i, cell in enumerate(self.cells)
            if (provenance(cell) or {}).get("request_id") == request_id
        ]
        prompt = index_of(self.cells, prompt_id)
        at = (steps[-1] if steps else prompt) + 1
        cell = nbformat.v4.new_markdown_cell(text)
        cell.metadata[METADATA_KEY] = {
            "version": VERSION,
            "role": "answer",
            "prompt_cell_id": prompt_id,
            "request_id": request_id,
            "model": model,
        }
        self.notebook.cells.insert(at, cell)
        return cell

    def finish(self, request_id: str) -> list[NotebookNode]:
        """The request is over: its cells still running or pending were interrupted."""
        ended = []
        for cell in self.notebook.cells:
            record = provenance(cell)
            if record and record["request_id"] == request_id and record.get("status") in ACTIVE:
                cell.metadata[METADATA_KEY]["status"] = "interrupted"
                ended.append(cell)
        for key in [key for key in self.collectors if key[0] == request_id]:
            del self.collectors[key]
        return ended

    # --- cells -------------------------------------------------------------------------

    def _upsert(self, message: Mapping[str, Any]) -> NotebookNode | None:
        prompt_id, request_id = message["cell_id"], message["request_id"]
        step = int(message["step"])
        index = find_action(self.cells, prompt_id, request_id, step)
        if index < 0:
            at = insertion_index(self.cells, prompt_id, request_id, step)
            if at is None:
                return None
            code = str(message.get("code", ""))
            cell = nbformat.v4.new_code_cell(code)
            cell.metadata[METADATA_KEY] = {
                "version": VERSION,
                "prompt_cell_id": prompt_id,
                "request_id": request_id,
                "step": step,
                "model": str(message.get("model") or ""),
                "status": "running",
                "source_hash": source_hash(code),
            }
            explanation = message.get("explanation")
            if isinstance(explanation, str) and explanation:
                # The step's prose, which the extension shows in the cell's header.
                cell.metadata[METADATA_KEY]["explanation"] = explanation
            self.notebook.cells.insert(at, cell)
            return cell
        return self.notebook.cells[index]

    def record_execution(self, cell: NotebookNode, ok: bool, error_name: str | None) -> None:
        """A generated cell ran as a cell of its own (--replay): its status is the truth
        about that execution, as the extension records it."""
        record = provenance(cell)
        if record is None or record.get("status") in ACTIVE:
            return
        if ok:
            status, error_name = "ok", None
        else:
            status = "interrupted" if error_name == "KeyboardInterrupt" else "error"
        marked = cell.metadata[METADATA_KEY]
        marked["status"] = status
        if error_name:
            marked["error_name"] = error_name
        else:
            marked.pop("error_name", None)
        tags = cell.metadata.get("tags")
        if status == "error":
            cell.metadata["tags"] = with_tag(tags, RAISES_EXCEPTION)
        elif isinstance(tags, list) and RAISES_EXCEPTION in tags:
            kept = [tag for tag in tags if tag != RAISES_EXCEPTION]
            if kept:
                cell.metadata["tags"] = kept
            else:
                del cell.metadata["tags"]

    def _set_status(
        self, message: Mapping[str, Any], status: str, error_name: object = None
    ) -> None:
        index = find_action(self.cells, message["cell_id"], message["request_id"], message["step"])
        if index < 0:
            return
        cell = self.notebook.cells[index]
        record = cell.metadata[METADATA_KEY]
        record["status"] = status
        if isinstance(error_name, str) and error_name:
            record["error_name"] = error_name
        else:
            record.pop("error_name", None)
        if status == "error":
            cell.metadata["tags"] = with_tag(cell.metadata.get("tags"), RAISES_EXCEPTION)

    def _to_raw(self, message: Mapping[str, Any]) -> NotebookNode:
        """A declined action stays visible but cannot run: a raw cell."""
        index = find_action(self.cells, message["cell_id"], message["request_id"], message["step"])
        cell = self.notebook.cells[index]
        if cell.cell_type == "raw":
            return cell
        raw = nbformat.v4.new_raw_cell(source_of(cell))
        raw.id = cell.id
        raw.metadata = cell.metadata
        self.notebook.cells[index] = raw
        return raw


def strip_running(cells: Iterable[NotebookNode]) -> None:
    """Nothing runs once the notebook is written: no cell may claim it still does."""
    for cell in cells:
        record = provenance(cell)
        if record is not None and record.get("status") in ACTIVE:
            cell.metadata[METADATA_KEY]["status"] = "interrupted"
