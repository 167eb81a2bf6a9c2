"""mcp_client/schema.py: a tool's schemas as a Python signature, docstring and checks."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from codeact_kernel.mcp_client.names import attribute_name, parameter_name
from codeact_kernel.mcp_client.schema import ToolSpec

# What the SDK's MCPServer writes for `def stats(values: list[float], unit: Literal[...]
# = "m", scale: float = 1.0) -> Stats`, plus a few hand-written properties.
INPUT = {
    "type": "object",
    "properties": {
        "values": {"type": "array", "items": {"type": "number"}, "description": "Numbers."},
        "unit": {"enum": ["m", "s"], "type": "string", "default": "m"},
        "scale": {"type": "number", "exclusiveMinimum": 0, "default": 1.0},
        "from": {"type": "string"},
        "repo-path": {"type": "string"},
        "point": {"$ref": "#/$defs/Point"},
        "tags": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]},
    },
    "required": ["repo-path", "values"],
    "$defs": {
        "Point": {
            "type": "object",
            "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}},
            "required": ["x", "y"],
        }
    },
}
OUTPUT = {
    "type": "object",
    "properties": {"count": {"type": "integer"}, "total": {"type": "number"}},
    "required": ["count", "total"],
    "title": "Stats",
}


def spec(
    input_schema: dict[str, Any] | None = None,
    output_schema: dict[str, Any] | None = OUTPUT,
    name: str = "stats",
) -> ToolSpec:
    return ToolSpec.of(
        "demo",
        "demo",
        name,
        name,
        "Count and sum numbers.\n\n    More detail.",
        INPUT if input_schema is None else input_schema,
        output_schema,
    )


def test_the_signature_python_sees() -> None:
    signature = spec().signature
    assert str(signature) == (
        "(values: list[float], repo_path: str, unit: Literal['m', 's'] = 'm', "
        "scale: float = 1.0, from_: str | None = None, point: dict | None = None, "
        "tags: list[str] | None = None) -> dict"
    )
    parameters = signature.parameters
    assert parameters["unit"].annotation == Literal["m", "s"]
    assert all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in parameters.values())


def test_the_docstring_has_the_parameters_and_the_result() -> None:
    doc = spec().docstring()
    assert doc.startswith("Count and sum numbers.\n\nMore detail.")
    assert "    values: Numbers." in doc
    assert "Returns a dict with keys: count (int), total (float)." in doc
    assert spec(output_schema=None).docstring().endswith("Returns the tool's text.")


def test_a_wrapped_result_is_unwrapped() -> None:
    wrapped = {
        "type": "object",
        "properties": {"result": {"type": "integer"}},
        "required": ["result"],
        "title": "addOutput",
    }
    add = spec({"type": "object", "properties": {}}, wrapped, name="add")
    assert add.signature.return_annotation is int
    assert add.result({"result": 3}) == 3
    assert add.docstring().endswith("Returns int.")
    # A real one-key object of another tool stays as it is.
    other = spec({"type": "object", "properties": {}}, {**wrapped, "title": "Other"}, name="add")
    assert other.result({"result": 3}) == {"result": 3}


def test_arguments_become_json_under_their_wire_names() -> None:
    tool = spec()
    arguments = tool.arguments(
        (np.array([1.5, 2]),), {"repo_path": Path("/r"), "from_": "x", "point": {"x": 1, "y": 2}}
    )
    assert arguments == {
        "values": [1.5, 2.0],
        "repo-path": "/r",
        "from": "x",
        "point": {"x": 1, "y": 2},
    }
    # The original name works as a keyword too; None means "not given".
    assert tool.arguments(((1,),), {"repo-path": "/r", "tags": None}) == {
        "values": [1],
        "repo-path": "/r",
    }
    assert tool.arguments(([np.int64(3)],), {"repo_path": "r", "scale": np.float32(2)}) == {
        "values": [3],
        "repo-path": "r",
        "scale": 2.0,
    }


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        ((), {}, TypeError, r"mcp\.demo\.stats\(\) missing a required argument: 'values'"),
        (([1],), {}, TypeError, "missing a required argument: 'repo_path'"),
        (([1], "r", "m", 1.0, "f", None, None, 9), {}, TypeError, "too many positional"),
        (([1], "r"), {"colour": 1}, TypeError, "unexpected keyword argument 'colour'"),
        (("12",), {"repo_path": "r"}, TypeError, "argument 'values' must be list, not str"),
        (([1, "2"],), {"repo_path": "r"}, TypeError, r"argument 'values'\[1\] must be float"),
        (([True],), {"repo_path": "r"}, TypeError, r"'values'\[0\] must be float, not bool"),
        (([1],), {"repo_path": 5}, TypeError, "argument 'repo_path' must be str, not int"),
        (([1],), {"repo_path": "r", "point": {"x": 1}}, TypeError, "missing the key 'y'"),
        (([1],), {"repo_path": "r", "tags": [1]}, TypeError, r"'tags'\[0\] must be str"),
        (([1],), {"repo_path": "r", "unit": "km"}, ValueError, "'km' is not one of"),
        (([1],), {"repo_path": "r", "scale": 0}, ValueError, "argument 'scale'"),
        (([float("nan")],), {"repo_path": "r"}, ValueError, "finite number"),
        (([1],), {"repo_path": "r", "point": {"x": 1, "y": 2.5}}, TypeError, "must be int, not"),
    ],
)
def test_bad_arguments_fail_before_the_call_as_python_would(
    args: tuple[Any, ...], kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        spec().arguments(args, kwargs)


def test_names_become_identifiers() -> None:
    taken: set[str] = set()
    assert [parameter_name(n, taken) for n in ["class", "a-b", "1x", "a_b", ""]] == [
        "class_",
        "a_b",
        "_1x",
        "a_b_",
        "_",
    ]
    taken = set()
    assert [attribute_name(n, taken) for n in ["git-log", "_private", "2fa", "git_log"]] == [
        "git_log",
        "private",
        "t2fa",
        "git_log_",
    ]


@given(st.dictionaries(st.text(max_size=8), st.sampled_from(["string", "integer", "x"])))
def test_any_property_names_make_a_valid_signature(properties: dict[str, str]) -> None:
    schema = {"type": "object", "properties": {k: {"type": v} for k, v in properties.items()}}
    signature = spec(schema, None).signature
    assert len(signature.parameters) == len(properties)
    assert all(name.isidentifier() for name in signature.parameters)


def test_schemas_that_say_little_or_too_much_still_work() -> None:
    loose = spec({"type": "object"}, None)
    assert str(loose.signature) == "() -> str"
    odd = spec({"type": "object", "properties": {"a": True, "b": {"$ref": "#/nowhere"}}}, None)
    assert str(odd.signature) == "(a: Any = None, b: Any = None) -> str"
    assert odd.arguments((), {"a": {"k": (1, 2)}, "b": [np.bool_(True)]}) == {
        "a": {"k": [1, 2]},
        "b": [True],
    }
    with pytest.raises(TypeError, match=r"argument 'a'\[0\] must be JSON data"):
        odd.arguments(([object()],), {})
    undescribed = spec({"type": "object", "properties": {}, "required": ["q"]}, None)
    assert str(undescribed.signature) == "(q: Any) -> str"
    with pytest.raises(TypeError, match="missing a required argument: 'q'"):
        undescribed.arguments((), {})


def test_kinds_of_schemas_as_annotations_and_defaults() -> None:
    schema = {
        "type": "object",
        "properties": {
            "when": {"type": ["string", "null"]},
            "mode": {"allOf": [{"$ref": "#/definitions/Mode"}], "description": "How."},
            "count": {"type": "integer", "default": 0},
            "strict": {"type": "boolean", "default": False},
            "rows": {"type": "array", "items": {"type": "object", "properties": {}}},
            "limit": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None},
            "level": {"enum": [1, 2, 3]},
        },
        "required": ["when", "mode"],
        "definitions": {"Mode": {"type": "string", "enum": ["fast", "slow"]}},
    }
    tool = spec(schema, None)
    assert str(tool.signature) == (
        "(when: str | None, mode: Literal['fast', 'slow'], count: int = 0, strict: bool = False, "
        "rows: list[dict] | None = None, limit: int | None = None, "
        f"level: {inspect.formatannotation(Literal[1, 2, 3] | None)} = None) -> str"
    )
    # Falsy defaults and an explicit None for a nullable required one are sent.
    assert tool.arguments((None, "fast", 0, False), {}) == {
        "when": None,
        "mode": "fast",
        "count": 0,
        "strict": False,
    }
    with pytest.raises(TypeError, match="argument 'mode' must be str, not int"):
        tool.arguments((None, 1), {})
    with pytest.raises(ValueError, match="'medium' is not one of"):
        tool.arguments((None, "medium"), {})


def test_python_keywords_and_names_that_are_not_identifiers() -> None:
    schema = {
        "type": "object",
        "properties": {p: {"type": "string"} for p in ["from", "class", "user-id", "self"]},
        "required": ["from", "class", "user-id", "self"],
    }
    tool = spec(schema, None)
    assert str(tool.signature) == "(from_: str, class_: str, user_id: str, self: str) -> str"
    wire = {"from": "a", "class": "b", "user-id": "c", "self": "d"}
    assert tool.arguments(("a", "b", "c", "d"), {}) == wire
    assert tool.arguments((), {"from_": "a", "class_": "b", "user_id": "c", "self": "d"}) == wire
    assert tool.arguments((), wire) == wire
    with pytest.raises(TypeError, match="multiple values for argument 'from_'"):
        tool.arguments(("a",), {"from": "x", "class": "b", "user-id": "c", "self": "d"})
    with pytest.raises(TypeError, match="multiple values for argument 'from_'"):
        tool.arguments((), {**wire, "from_": "x"})


def test_names_that_become_the_same_identifier_stay_apart() -> None:
    schema = {
        "type": "object",
        "properties": {name: {"type": "integer"} for name in ["a-b", "a_b", "a.b"]},
        "required": ["a-b", "a_b", "a.b"],
    }
    tool = spec(schema, None)
    assert str(tool.signature) == "(a_b: int, a_b_: int, a_b__: int) -> str"
    assert tool.arguments((), {"a_b": 1, "a_b_": 2, "a_b__": 3}) == {"a-b": 1, "a_b": 2, "a.b": 3}
    assert tool.arguments((1, 2, 3), {}) == {"a-b": 1, "a_b": 2, "a.b": 3}
