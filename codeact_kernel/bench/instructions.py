"""What the model is told in json and text modes, and the instruction every task ends with.

The system prompts (`bench/prompts/system_json.md`, `system_text.md`) follow the code
mode's (`codeact_kernel/prompts/system_markdown.md`) section by section and sentence by
sentence, apart from the action format, and list the tools exactly as code mode's Tools
section does (`tools.python_stub`). The instruction appended to every task, in every
mode, makes all three end the same way: a last line `Answer: …` that
`checker.extract_answer` finds.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from importlib import resources
from typing import Literal

from ..tools import python_stub
from .tasks import Task, tool_functions

__all__ = ["INSTRUCTION", "system_prompt", "task_text"]

INSTRUCTION = (
    "When you know the answer, reply without an action and end with a line of its own:\n"
    "Answer: <the answer>\n"
    "Give only the value on that line: a number without units, a name or code, or a "
    "comma-separated list."
)


def task_text(task: Task) -> str:
    """The request that poses a task, in every mode: its prompt, then the instruction."""
    return f"{task.prompt}\n\n{INSTRUCTION}"


@functools.cache
def _template(name: str) -> str:
    return (resources.files(__package__) / "prompts" / name).read_text(encoding="utf-8")


def system_prompt(mode: Literal["json", "text"], toolsets: Sequence[str]) -> str:
    """The system prompt of json or text mode, with the tool sets' tools listed."""
    stubs = "\n\n".join(
        python_stub(name, function) for name, function in tool_functions(toolsets).items()
    )
    tools = _template("tools.md").replace("{{tools}}", f"```python\n{stubs}\n```")
    text = _template(f"system_{mode}.md").replace("{{tools}}", tools.strip())
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
