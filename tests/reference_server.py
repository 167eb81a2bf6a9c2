"""A reference model server on 127.0.0.1: answers every benchmark task as its reference
solution does, however many episodes ask at once.

The scripted server (tests/model_server.py) answers from one queue, which parallel
episodes cannot share. This one reads each request instead: the task is the one whose
prompt is in the latest user message that poses a task (the longest prompt found, so
one task's prompt inside another's cannot mislead it); the turn is the number of
assistant messages since; the mode is told by the system prompt (json and text modes'
own, anything else code). It answers `reference_turns(task, mode)[turn]` over the
scripted server's HTTP and streaming code, in any of its dialects.

`misbehave(task_id, behaviour)` makes it fail chosen tasks on purpose: `wrong` (a wrong
final answer), `invalid` (an unusable action every turn), `endless` (the first action
again and again, never an answer) or `error` (HTTP 500 to every request). Every request
is logged in `requests`, as the scripted server logs them.
"""

from __future__ import annotations

from typing import Any, Literal

from model_server import Reply, ScriptedModelServer, error, text

from codeact_kernel.bench.instructions import system_prompt
from codeact_kernel.bench.reference import reference_turns
from codeact_kernel.bench.tasks import Task, all_tasks

Behaviour = Literal["wrong", "invalid", "endless", "error"]

WRONG_ANSWER = "I am fairly sure of it.\nAnswer: not the expected answer"
_INVALID = {
    "json": 'Calling a tool now.\n{"name": "read_message", "arguments": ',
    "text": "Calling a tool now.\nAction: this is not a call",
    "code": "I cannot tell what to do here.",
}
# Enough of each mode's prompt to tell it apart from the others'.
_MODE_MARKS = {mode: system_prompt(mode, ())[:160] for mode in ("json", "text")}


class ReferenceModelServer(ScriptedModelServer):
    """The server; a context manager, or `start()` and `stop()`, as the scripted one."""

    def __init__(self, models: tuple[str, ...] = ("reference",), *, port: int = 0) -> None:
        super().__init__(models, port=port)
        self.tasks = sorted(all_tasks(), key=lambda task: len(task.prompt), reverse=True)
        self.behaviours: dict[str, Behaviour] = {}

    def reset(self) -> None:
        """Forget logged requests and every `misbehave`."""
        super().reset()
        self.behaviours.clear()

    def misbehave(self, task_id: str, behaviour: Behaviour) -> None:
        """Answer `task_id` with `behaviour` from now on, in every mode."""
        self.behaviours[task_id] = behaviour

    def _next(self, request: dict[str, Any]) -> Reply | None:
        with self._lock:
            self.requests.append(request)
            self._lock.notify_all()
        body = request["body"] if isinstance(request["body"], dict) else {}
        system, messages = _conversation(body)
        found = self._task(messages)
        if found is None:
            return error(400, "reference_server: no benchmark task in the conversation")
        task, turn = found
        mode = next((m for m, mark in _MODE_MARKS.items() if system.startswith(mark)), "code")
        answer = self._answer(task, mode, turn)
        if answer is None:
            return error(500, f"reference_server: {task.id} answers with an error")
        prompt_chars = len(system) + sum(len(content) for _, content in messages)
        return text(answer, chunk_size=64, usage=(prompt_chars // 4, len(answer) // 4 + 1))

    def _task(self, messages: list[tuple[str, str]]) -> tuple[Task, int] | None:
        for index in range(len(messages) - 1, -1, -1):
            role, content = messages[index]
            if role != "user" or content.startswith("Observation:"):
                continue
            task = next((task for task in self.tasks if task.prompt in content), None)
            if task is not None:
                turn = sum(role == "assistant" for role, _ in messages[index + 1 :])
                return task, turn
        return None

    def _answer(self, task: Task, mode: str, turn: int) -> str | None:
        behaviour = self.behaviours.get(task.id)
        if behaviour == "error":
            return None
        if behaviour == "invalid":
            return _INVALID[mode]
        turns = reference_turns(task, mode)
        if behaviour == "endless":
            return turns[0]
        if behaviour == "wrong" and turn >= len(turns) - 1:
            return WRONG_ANSWER
        # Past the script (a conversation the reference would not have had): answer again.
        return turns[min(turn, len(turns) - 1)]


def _conversation(body: dict[str, Any]) -> tuple[str, list[tuple[str, str]]]:
    """The system prompt and the other messages as (role, text), in any dialect."""
    system = _text(body.get("system"))
    messages: list[tuple[str, str]] = []
    for message in body.get("messages") or []:
        role, content = str(message.get("role")), _text(message.get("content"))
        if role == "system":
            system = content
        else:
            messages.append((role, content))
    return system, messages


def _text(content: object) -> str:
    """A message's text: a string, or Anthropic/OpenAI content blocks joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(block.get("text", "")) for block in content if isinstance(block, dict))
    return ""
