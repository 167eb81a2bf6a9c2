"""An MCP tool as Python sees it: an `inspect.Signature` and a docstring from its schemas,
and its arguments checked against the `inputSchema` before they are sent.

The signature: required properties first (positional or keyword), then the optional
ones with their schema `default`, or `None` (not sent); JSON types become annotations
(`string` → `str`, `integer` → `int`, `number` → `float`, arrays → `list[...]`, objects
→ `dict`, `enum` → `Literal[...]`, unions → `X | Y`). Property names that are not
identifiers (`repo-path`, `from`) are made into ones (`repo_path`, `from_`); the original
name is accepted as a keyword too.

The return: the tool's `structuredContent` when it declares an `outputSchema`, else its
text. The Python SDK wraps a result that is not an object in `{"result": ...}` (its
`outputSchema` is then `{function}Output` with the one required property `result`, as
FastMCP marks with `x-fastmcp-wrap-result`); such a result is unwrapped, so `add(1, 2)`
returns `3`.

Checking, as Python would report it: a missing, extra or doubled argument, or a value of
the wrong JSON type, is a `TypeError`; a value of the right type that breaks the
schema's other rules (`enum`, `minimum`, `pattern` …, checked with `jsonschema` when it
is installed, as it is with the SDK) is a `ValueError`. Values become JSON data on the
way: tuples and NumPy arrays become lists, NumPy scalars Python numbers, paths strings.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
import operator
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .names import parameter_name

_TYPES: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "array": list,
    "object": dict,
    "null": type(None),
}
_TYPE_NAMES = {
    "string": "str",
    "integer": "int",
    "number": "float",
    "boolean": "bool",
    "array": "list",
    "object": "dict",
    "null": "None",
}
_MAX_DEPTH = 64


@dataclass(frozen=True)
class Parameter:
    """One property of the input schema, under its Python name."""

    name: str
    wire: str
    schema: Mapping[str, Any]
    required: bool


@dataclass(eq=False)
class ToolSpec:
    """One tool of one server: what `mcp.<server>.<attribute>` is built from."""

    server: str
    server_attribute: str
    name: str
    attribute: str
    description: str
    input_schema: Mapping[str, Any]
    output_schema: Mapping[str, Any] | None
    parameters: tuple[Parameter, ...]
    signature: inspect.Signature
    unwrap: bool
    _aliases: dict[str, str] = field(default_factory=dict, repr=False)
    # [validator] once built (None without jsonschema).
    _validator: list[Any] = field(default_factory=list, repr=False)

    @classmethod
    def of(
        cls,
        server: str,
        server_attribute: str,
        name: str,
        attribute: str,
        description: str | None,
        input_schema: Mapping[str, Any] | None,
        output_schema: Mapping[str, Any] | None,
    ) -> ToolSpec:
        schema = input_schema if isinstance(input_schema, Mapping) else {}
        properties = schema.get("properties")
        properties = properties if isinstance(properties, Mapping) else {}
        required_names = schema.get("required")
        required_names = required_names if isinstance(required_names, list) else []
        required = set(required_names)
        # A required name the schema forgot to describe is still a parameter.
        missing = [n for n in required_names if isinstance(n, str) and n not in properties]
        properties = {**properties, **{name: {} for name in missing}}
        taken: set[str] = set()
        parameters = [
            Parameter(
                parameter_name(wire, taken),
                wire,
                spec if isinstance(spec, Mapping) else {},
                wire in required,
            )
            for wire, spec in properties.items()
        ]
        # Python wants the parameters without a default first.
        parameters.sort(key=lambda p: not p.required)
        unwrap = _wraps_result(output_schema)
        returns: Any = str
        if isinstance(output_schema, Mapping):
            result = output_schema["properties"]["result"] if unwrap else output_schema
            returns = annotation(result, output_schema)
        signature = inspect.Signature(
            [
                inspect.Parameter(
                    p.name,
                    inspect.Parameter.POSITIONAL_OR_KEYWORD,
                    default=inspect.Parameter.empty if p.required else p.schema.get("default"),
                    annotation=_parameter_annotation(p, schema),
                )
                for p in parameters
            ],
            return_annotation=returns,
        )
        return cls(
            server=server,
            server_attribute=server_attribute,
            name=name,
            attribute=attribute,
            description=inspect.cleandoc(description or ""),
            input_schema=schema,
            output_schema=output_schema if isinstance(output_schema, Mapping) else None,
            parameters=tuple(parameters),
            signature=signature,
            unwrap=unwrap,
            # A wire name that is also another parameter's Python name (`a_b` beside
            # `a-b`, which became `a_b` first) means that parameter, not an alias.
            _aliases={
                p.wire: p.name
                for p in parameters
                if p.wire != p.name and p.wire not in {q.name for q in parameters}
            },
        )

    @property
    def qualname(self) -> str:
        return f"mcp.{self.server_attribute}.{self.attribute}"

    def docstring(self) -> str:
        """The description, then the parameters' and the result's, as a docstring."""
        parts = [self.description] if self.description else []
        described = [p for p in self.parameters if isinstance(p.schema.get("description"), str)]
        if described:
            lines = ["Args:"]
            for p in described:
                text = " ".join(str(p.schema["description"]).split())
                lines.append(f"    {p.name}: {text}")
            parts.append("\n".join(lines))
        parts.append(self._returns())
        return "\n\n".join(parts)

    def _returns(self) -> str:
        schema = self.output_schema
        if schema is None:
            return "Returns the tool's text."
        if self.unwrap:
            return f"Returns {_type_text(schema['properties']['result'], schema)}."
        properties = schema.get("properties")
        if isinstance(properties, Mapping) and properties:
            keys = ", ".join(
                f"{key} ({_type_text(value, schema)})" for key, value in properties.items()
            )
            return f"Returns a dict with keys: {keys}."
        return f"Returns {_type_text(schema, schema)}."

    def arguments(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """The call's arguments as the tool's JSON arguments, checked (see the module)."""
        if self._aliases:
            renamed: dict[str, Any] = {}
            for key, value in kwargs.items():
                name = self._aliases.get(key, key)
                if name in renamed:
                    raise TypeError(f"{self.qualname}() got multiple values for argument {name!r}")
                renamed[name] = value
            kwargs = renamed
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as error:
            raise TypeError(f"{self.qualname}() {error}") from None
        by_name = {p.name: p for p in self.parameters}
        values: dict[str, Any] = {}
        for name, value in bound.arguments.items():
            parameter = by_name[name]
            if value is None and not parameter.required and parameter.schema.get("default") is None:
                continue  # None means "not given", as for keyword arguments in Python
            where = f"{self.qualname}() argument {name!r}"
            values[parameter.wire] = to_json(value, parameter.schema, where, self.input_schema)
        self._validate(values)
        return values

    def _validate(self, values: dict[str, Any]) -> None:
        if not self._validator:
            self._validator.append(_validator(self.input_schema))
        validator = self._validator[0]
        if validator is None:
            return
        try:
            error = next(iter(validator.iter_errors(values)), None)
        except Exception:  # a schema jsonschema cannot use (an unresolvable $ref …)
            return
        if error is None:
            return
        # A value of the wrong JSON type is a TypeError, as in Python; other rules a
        # ValueError.
        kind = TypeError if error.validator == "type" else ValueError
        path = list(error.absolute_path)
        if path and isinstance(path[0], str):
            wire = path[0]
            name = next((p.name for p in self.parameters if p.wire == wire), wire)
            rest = "".join(f"[{part!r}]" for part in path[1:])
            raise kind(f"{self.qualname}() argument {name!r}{rest}: {error.message}")
        raise kind(f"{self.qualname}(): {error.message}")

    def result(self, structured: Any) -> Any:
        """The structured result as the function returns it."""
        if self.unwrap and isinstance(structured, Mapping) and set(structured) == {"result"}:
            return structured["result"]
        return structured


def _validator(schema: Mapping[str, Any]) -> Any:
    """A jsonschema validator for an input schema (None without jsonschema)."""
    try:
        import jsonschema
        from jsonschema.validators import validator_for

        cls = validator_for(schema, default=jsonschema.Draft202012Validator)
        cls.check_schema(schema)
        return cls(schema)
    except Exception:  # no jsonschema, or a schema it rejects: the server checks
        return None


def _wraps_result(output_schema: Mapping[str, Any] | None) -> bool:
    if not isinstance(output_schema, Mapping):
        return False
    properties = output_schema.get("properties")
    if not isinstance(properties, Mapping) or set(properties) != {"result"}:
        return False
    # The SDK names the wrapper after the Python function, which need not be the tool's
    # name (`add_tool(fn, name="get-item")`).
    title = output_schema.get("title")
    return bool(output_schema.get("x-fastmcp-wrap-result")) or (
        isinstance(title, str)
        and title.endswith("Output")
        and output_schema.get("required") == ["result"]
    )


# --- types ------------------------------------------------------------------------


def annotation(schema: Mapping[str, Any], root: Mapping[str, Any] | None = None) -> Any:
    """The Python annotation for a JSON schema (`Any` when it says nothing usable);
    `root` is the document whose `$defs` a `$ref` points into."""
    return _annotation(schema, root, 0)


def _annotation(schema: object, root: Mapping[str, Any] | None, depth: int) -> Any:
    if not isinstance(schema, Mapping) or depth > 20:
        return Any
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return _annotation(_resolve(ref, root), root, depth + 1)
    merged = _merged_all_of(schema, root)
    if merged is not None:
        return _annotation(merged, root, depth + 1)
    if "const" in schema and _literal_value(schema["const"]):
        return Literal[schema["const"]]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum and all(_literal_value(v) for v in enum):
        return Literal[tuple(enum)]
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            return _union([_annotation(option, root, depth + 1) for option in options])
    kind = schema.get("type")
    if isinstance(kind, list):
        return _union([_annotation({**schema, "type": k}, root, depth + 1) for k in kind])
    if kind == "array":
        items = schema.get("items")
        # A type built at run time, which is the point here.
        if not isinstance(items, Mapping) or not items:
            return list
        return list[_annotation(items, root, depth + 1)]  # type: ignore[misc]
    if kind in _TYPES:
        return _TYPES[kind]
    if isinstance(schema.get("properties"), Mapping):
        return dict
    return Any


def _parameter_annotation(parameter: Parameter, root: Mapping[str, Any]) -> Any:
    kind = annotation(parameter.schema, root)
    if parameter.required or parameter.schema.get("default") is not None or kind is Any:
        return kind
    # Its default is None, which the function reads as "not given".
    return _union([kind, type(None)])


def _literal_value(value: object) -> bool:
    return value is None or type(value) in (str, int, float, bool)


def _union(options: list[Any]) -> Any:
    unique: list[Any] = []
    for option in options:
        if option not in unique:
            unique.append(option)
    if Any in unique:
        return Any
    return functools.reduce(operator.or_, unique)


def _resolve(ref: str, root: Mapping[str, Any] | None) -> object:
    """The schema a local `$ref` (`#/$defs/Point`) points to, or None."""
    if root is None or not ref.startswith("#/"):
        return None
    node: object = root
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _merged_all_of(
    schema: Mapping[str, Any], root: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """`schema` with its `allOf` parts (`$ref`s resolved) merged in, or None without
    one: pydantic writes `{"allOf": [{"$ref": ...}], "description": ...}`."""
    parts = schema.get("allOf")
    if not isinstance(parts, list) or not parts:
        return None
    merged = {k: v for k, v in schema.items() if k != "allOf"}
    for part in parts:
        if isinstance(part, Mapping) and isinstance(part.get("$ref"), str):
            part = _resolve(part["$ref"], root)
        if isinstance(part, Mapping):
            merged = {**part, **merged}
    return merged


def _type_text(schema: object, root: Mapping[str, Any] | None = None) -> str:
    text = inspect.formatannotation(_annotation(schema, root, 0))
    return "None" if text == "NoneType" else text


def _schema_types(schema: Mapping[str, Any]) -> list[str]:
    kind = schema.get("type")
    if isinstance(kind, str):
        return [kind]
    if isinstance(kind, list):
        return [k for k in kind if isinstance(k, str)]
    if isinstance(schema.get("properties"), Mapping):
        return ["object"]
    if "items" in schema:
        return ["array"]
    return []


def _allows_null(schema: Mapping[str, Any]) -> bool:
    if "null" in _schema_types(schema):
        return True
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and any(
            isinstance(o, Mapping) and _allows_null(o) for o in options
        ):
            return True
    return False


# --- values -----------------------------------------------------------------------


def to_json(
    value: Any,
    schema: Mapping[str, Any],
    where: str,
    root: Mapping[str, Any] | None = None,
    depth: int = 0,
) -> Any:
    """`value` as JSON data of the type `schema` asks for; `TypeError` when it is not.
    `root` is the document a `$ref` points into."""
    if depth > _MAX_DEPTH:
        raise ValueError(f"{where} is nested too deeply")
    if isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str):
        schema = _resolve(schema["$ref"], root)  # type: ignore[assignment]
    if not isinstance(schema, Mapping):
        return plain_json(value, where, depth)
    merged = _merged_all_of(schema, root)
    if merged is not None:
        return to_json(value, merged, where, root, depth + 1)
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            base = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
            nested: Exception | None = None
            for option in options:
                if not isinstance(option, Mapping):
                    continue
                try:
                    return to_json(value, {**base, **option}, where, root, depth)
                except (TypeError, ValueError) as error:
                    # An option whose type fits but whose inside does not says more.
                    if not str(error).startswith(f"{where} must be "):
                        nested = nested or error
            if nested is not None:
                raise nested
            raise TypeError(f"{where} must be {_type_text(schema, root)}, not {_type_of(value)}")
    kinds = _schema_types(schema)
    if not kinds:
        return plain_json(value, where, depth)
    for kind in kinds:
        converted = _as_kind(value, kind, schema, where, root, depth)
        if converted is not _NO:
            return converted
    expected = " or ".join(dict.fromkeys(_TYPE_NAMES.get(k, k) for k in kinds))
    raise TypeError(f"{where} must be {expected}, not {_type_of(value)}")


class _No:
    pass


_NO: Any = _No()


def _as_kind(
    value: Any,
    kind: str,
    schema: Mapping[str, Any],
    where: str,
    root: Mapping[str, Any] | None,
    depth: int,
) -> Any:
    """`value` as JSON of one `kind`, or `_NO`."""
    if kind == "null":
        return None if value is None else _NO
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        return bool(value) if _numpy_kind(value) == "b" else _NO
    if kind == "string":
        if isinstance(value, str):
            return value
        return os.fspath(value) if isinstance(value, os.PathLike) else _NO
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            return _NO
        return int(value)
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return _NO
        number = value if type(value) in (int, float) else float(value)
        if isinstance(number, float) and not math.isfinite(number):
            raise ValueError(f"{where} must be a finite number, not {number!r}")
        return number
    if kind == "array":
        items = _sequence(value)
        if items is None:
            return _NO
        item_schema = schema.get("items")
        return [
            to_json(item, item_schema, f"{where}[{index}]", root, depth + 1)
            if isinstance(item_schema, Mapping)
            else plain_json(item, f"{where}[{index}]", depth + 1)
            for index, item in enumerate(items)
        ]
    if kind == "object":
        if not isinstance(value, Mapping):
            return _NO
        properties = schema.get("properties")
        properties = properties if isinstance(properties, Mapping) else {}
        extra = schema.get("additionalProperties")
        result: dict[str, Any] = {}
        for key, item in value.items():
            name = _key(key, where)
            item_schema = properties.get(name, extra if isinstance(extra, Mapping) else None)
            inner = f"{where}[{name!r}]"
            result[name] = (
                to_json(item, item_schema, inner, root, depth + 1)
                if isinstance(item_schema, Mapping)
                else plain_json(item, inner, depth + 1)
            )
        required = schema.get("required")
        if isinstance(required, list):
            missing = [k for k in required if k not in result]
            if missing:
                raise TypeError(f"{where} is missing the key {missing[0]!r}")
        return result
    return plain_json(value, where, depth)


def plain_json(value: Any, where: str, depth: int = 0) -> Any:
    """Any value as JSON data, converting what JSON has no word for; `TypeError` else."""
    if depth > _MAX_DEPTH:
        raise ValueError(f"{where} is nested too deeply")
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return _as_kind(value, "number", {}, where, None, depth)
    if _numpy_kind(value) == "b":
        return bool(value)
    if isinstance(value, Mapping):
        return {
            _key(k, where): plain_json(v, f"{where}[{k!r}]", depth + 1) for k, v in value.items()
        }
    items = _sequence(value)
    if items is not None:
        return [plain_json(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(items)]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(
        f"{where} must be JSON data (str, int, float, bool, list, dict, None), "
        f"not {_type_of(value)}"
    )


def _sequence(value: Any) -> list[Any] | None:
    if isinstance(value, list | tuple | range):
        return list(value)
    if isinstance(value, str | bytes | bytearray | Mapping):
        return None
    tolist = getattr(type(value), "tolist", None)  # NumPy arrays, pandas Series
    if callable(tolist) and _numpy_kind(value) is not None:
        items = tolist(value)
        return items if isinstance(items, list) else None
    return None


def _numpy_kind(value: Any) -> str | None:
    """The NumPy dtype kind of a NumPy value (`b`, `i`, `f` …), else None."""
    module = type(value).__module__ or ""
    if not module.startswith(("numpy", "pandas")):
        return None
    dtype = getattr(value, "dtype", None)
    kind = getattr(dtype, "kind", None)
    return kind if isinstance(kind, str) else None


def _key(key: Any, where: str) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, int | float) and not isinstance(key, bool):
        return str(key)
    raise TypeError(f"{where} has a key of type {_type_of(key)}; JSON keys are strings")


def _type_of(value: object) -> str:
    return "None" if value is None else type(value).__name__
