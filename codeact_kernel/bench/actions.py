"""Reading one tool call from a model's answer in json and text modes, and running it.

json mode: the first JSON object of the answer, `{"name": <tool>, "arguments": {…}}`
(fenced or not). text mode: the first line that starts with `Action:`, then one call
`tool(arg=value, …)` whose arguments are Python literals (it may run over several
lines). Anything the model writes after the call is ignored, as the prompts say.

Every way an answer can miss is an `InvalidAction` whose `message` is the observation
the model gets back, saying what was wrong and what to write instead. A tool that
raises is not an invalid action: the call was well formed, and the error is its result.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from ..executor import cut_middle

__all__ = [
    "OBSERVATION_CHARS",
    "InvalidAction",
    "Mode",
    "ToolCall",
    "parse_action",
    "parse_json_action",
    "parse_text_action",
    "run_call",
]

Mode = Literal["json", "text"]

# As the code mode's observations are cut (the kernel's `observation_chars` default).
OBSERVATION_CHARS = 4000

# How many lines one Action's call may run over (a long list of arguments).
_MAX_ACTION_LINES = 40
_ACTION_LINE = re.compile(r"^\s*[*_`]*Action[*_`]*\s*:\s*(.*)$", re.IGNORECASE)


@dataclass(frozen=True)
class ToolCall:
    """One well-formed call: the tool's name, its arguments by position and by name."""

    name: str
    args: tuple[object, ...] = ()
    kwargs: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class InvalidAction:
    """An answer that should have held a call and did not hold a usable one."""

    message: str


def parse_action(text: str, mode: Mode) -> ToolCall | InvalidAction | None:
    """The mode's call in `text`; None when the answer does not try to make one."""
    return parse_json_action(text) if mode == "json" else parse_text_action(text)


def parse_json_action(text: str) -> ToolCall | InvalidAction | None:
    """The first JSON object in `text` as a call; None when `text` has no `{` at all."""
    if "{" not in text:
        return None
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(value, dict):
            return _json_call(value)
    return InvalidAction(
        "Invalid action: no valid JSON object found. Write exactly one tool call as JSON, "
        'for example {"name": "tool_name", "arguments": {"parameter": "value"}}, '
        "or give the final answer as `Answer: …` without a tool call."
    )


def _json_call(value: dict[str, object]) -> ToolCall | InvalidAction:
    name = value.get("name")
    arguments = value.get("arguments", {})
    if not isinstance(name, str) or not name:
        return InvalidAction(
            'Invalid action: the JSON object needs a "name" (the tool to call, a string) and '
            '"arguments" (an object of the parameters by name), e.g. '
            '{"name": "tool_name", "arguments": {"parameter": "value"}}.'
        )
    if not isinstance(arguments, dict):
        return InvalidAction(
            f'Invalid action: "arguments" must be a JSON object of parameters by name, not '
            f"{type(arguments).__name__} {json.dumps(arguments)[:200]}."
        )
    return ToolCall(name, (), arguments)


def parse_text_action(text: str) -> ToolCall | InvalidAction | None:
    """The call on the first `Action:` line of `text`; None when there is no such line."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        match = _ACTION_LINE.match(line)
        if match is None:
            continue
        # A call may continue over the next lines (a long list): take the shortest
        # stretch that parses.
        source = match.group(1).strip().strip("`")
        for end in range(index + 1, min(len(lines), index + _MAX_ACTION_LINES) + 1):
            if end > index + 1:
                source += "\n" + lines[end - 1]
            try:
                tree = ast.parse(source.strip().strip("`").strip(), mode="eval")
            except SyntaxError:
                continue
            return _text_call(tree.body)
        return InvalidAction(
            "Invalid action: the Action line is not a Python call. Write one call such as "
            'Action: tool_name(parameter="value"), with literal values only, or give the '
            "final answer as `Answer: …` without an Action line."
        )
    return None


def _text_call(node: ast.expr) -> ToolCall | InvalidAction:
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        return InvalidAction(
            "Invalid action: an Action is one call of a tool by its name, such as "
            'Action: tool_name(parameter="value"); nothing else can follow "Action:".'
        )
    try:
        args = tuple(ast.literal_eval(arg) for arg in node.args)
        kwargs = {}
        for keyword in node.keywords:
            if keyword.arg is None:
                raise ValueError("**")
            kwargs[keyword.arg] = ast.literal_eval(keyword.value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return InvalidAction(
            f"Invalid action: the arguments of {node.func.id}() must be literal values "
            "(numbers, quoted strings, lists, dicts, True/False/None), not variables, "
            "expressions or other calls: each call runs on its own, so put the values you "
            "got from earlier observations in as literals."
        )
    return ToolCall(node.func.id, args, kwargs)


def run_call(
    call: ToolCall, tools: Mapping[str, Callable[..., object]], mode: Mode
) -> tuple[str, bool]:
    """The observation of running `call`, and whether the call was valid (a known tool
    with arguments that fit its signature). A tool's own error is a valid call's result."""
    function = tools.get(call.name)
    if function is None:
        known = ", ".join(tools)
        return f"Invalid action: there is no tool {call.name!r}. The tools are: {known}.", False
    signature = inspect.signature(function)
    try:
        bound = signature.bind(*call.args, **call.kwargs)
    except TypeError as error:
        return f"Invalid action: {call.name}{signature}: {error}.", False
    try:
        result = function(*bound.args, **bound.kwargs)
    except Exception as error:  # the tool's error is what the model must see
        return f"Error: {type(error).__name__}: {error}", True
    return cut_middle(_render(result, mode), OBSERVATION_CHARS), True


def _render(result: object, mode: Mode) -> str:
    if mode == "json":
        try:
            return json.dumps(result, ensure_ascii=False)
        except (TypeError, ValueError):
            return json.dumps(repr(result), ensure_ascii=False)
    return repr(result)
