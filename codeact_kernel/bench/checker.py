"""Is an answer right? The one place that decides, for every mode.

**Where the answer is.** Every mode ends with a line `Answer: …` (`extract_answer`):
the last such line of the model's final message, its label matched case-insensitively,
also as `Final answer:` and with Markdown emphasis around it (`**Answer:** 42`); a label
alone on its line takes the next non-empty line.

**Normalisation and tolerance** (`check`), by the type of the expected value:

- *number*: the first number in the answer, with thousands separators (`1,234.5`),
  currency signs and units around it ignored (`€ 59.20`, `6.83 km`); right when it is
  within 0.01 or 0.1 % of the expected value, whichever is larger (answers are asked for
  rounded to cents or to a few decimals).
- *string*: compared case-insensitively after trimming whitespace, surrounding quotes,
  backticks, Markdown emphasis and one trailing full stop, with runs of whitespace
  collapsed.
- *list*: the answer as a JSON or Python list literal, or else items separated by commas
  (or "and"); the same items in the same order (the tasks say which order), each item
  compared by the rule for its expected type.

A data task's namespace (`check_namespace`: expression -> the value it evaluated to in
the kernel) is compared structurally: numbers within the same tolerance, strings
exactly, sequences item by item (a tuple and a list are the same), mappings key by
key. The kernel reports the values as `repr`s (`values_from_reprs` reads them back).
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Mapping

from .tasks import Task

__all__ = ["MISSING", "check", "check_namespace", "extract_answer", "values_from_reprs"]

ABSOLUTE_TOLERANCE = 0.01
RELATIVE_TOLERANCE = 0.001

_ANSWER_LINE = re.compile(r"^[\s>*_#`-]*(?:final\s+)?answer[*_`]*\s*:[*_`]*\s*(.*)$", re.IGNORECASE)
_NUMBER = re.compile(r"[-+−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+−]?\.\d+")
_WRAPPING = "\"'`*_“”‘’ \t"


class _Missing:
    """An expression that did not evaluate (undefined name, error): never the right value."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()


def extract_answer(text: str) -> str | None:
    """What follows the last `Answer:` line of `text`, trimmed; None when there is none."""
    found = None
    lines = text.splitlines()
    for index, line in enumerate(lines):
        match = _ANSWER_LINE.match(line)
        if match is None:
            continue
        found = match.group(1).strip()
        if not found:
            found = next((rest.strip() for rest in lines[index + 1 :] if rest.strip()), "")
    return found


def check(task: Task, answer: str) -> bool:
    """Whether `answer` (the text after `Answer:`) is the task's expected answer."""
    return _matches(task.expected, answer)


def check_namespace(task: Task, values: Mapping[str, object]) -> bool:
    """Whether every expression of `task.namespace` evaluated to its value in `values`
    (expression -> value; an absent expression, or `MISSING`, fails)."""
    return all(
        _same_value(expected, values.get(expression, MISSING))
        for expression, expected in task.namespace.items()
    )


def values_from_reprs(reprs: Mapping[str, str | None]) -> dict[str, object]:
    """Values from the `repr`s a kernel returns for expressions (`user_expressions`'
    `text/plain`); one that is None (an error) or not a plain literal becomes `MISSING`."""
    values: dict[str, object] = {}
    for expression, text in reprs.items():
        try:
            values[expression] = MISSING if text is None else ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            values[expression] = MISSING
    return values


def _matches(expected: object, answer: str) -> bool:
    if isinstance(expected, bool):
        return _normal_text(answer) == str(expected).lower()
    if isinstance(expected, (int, float)):
        number = _first_number(answer)
        return number is not None and _close(number, float(expected))
    if isinstance(expected, (list, tuple)):
        items = _list_items(answer)
        return len(items) == len(expected) and all(
            _matches(want, item) for want, item in zip(expected, items, strict=True)
        )
    return _normal_text(answer) == _normal_text(str(expected))


def _first_number(text: str) -> float | None:
    match = _NUMBER.search(text)
    if match is None:
        return None
    return float(match.group().replace(",", "").replace("−", "-"))


def _close(actual: float, expected: float) -> bool:
    if not math.isfinite(actual):
        return False
    tolerance = max(ABSOLUTE_TOLERANCE, RELATIVE_TOLERANCE * abs(expected))
    return abs(actual - expected) <= tolerance + 1e-12


def _normal_text(text: str) -> str:
    text = " ".join(text.split()).strip(_WRAPPING)
    if text.endswith("."):
        text = text[:-1].strip(_WRAPPING)
    return text.casefold()


def _list_items(answer: str) -> list[str]:
    text = answer.strip().strip("`").strip()
    if text.startswith("[") and text.endswith("]"):
        for parse in (json.loads, ast.literal_eval):
            try:
                parsed = parse(text)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
            if isinstance(parsed, list):
                return [str(item) for item in parsed]
        text = text[1:-1]
    text = re.sub(r",?\s+and\s+", ", ", text.rstrip(". "))
    return [item for item in (part.strip() for part in text.split(",")) if item]


def _same_value(expected: object, actual: object) -> bool:
    if actual is MISSING:
        return False
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    if isinstance(expected, (int, float)):
        return isinstance(actual, (int, float)) and _close(float(actual), float(expected))
    if isinstance(expected, (list, tuple)):
        return (
            isinstance(actual, (list, tuple))
            and len(actual) == len(expected)
            and all(_same_value(want, got) for want, got in zip(expected, actual, strict=True))
        )
    if isinstance(expected, Mapping):
        return (
            isinstance(actual, Mapping)
            and set(actual) == set(expected)
            and all(_same_value(want, actual[key]) for key, want in expected.items())
        )
    return bool(expected == actual)
