"""What the model is told about the user's variables, and which values are secret.

`summarize_namespace` writes one Python-stub-like line per name, a form models read
fluently::

    import numpy as np
    def load(path: str, n=10) -> DataFrame  # Load the sales data.
    df: DataFrame  # shape (1000, 3); columns: date datetime64[ns], revenue float64, region object
    n: int = 42
    OPENAI_API_KEY: str  # value hidden

It runs before every model call, on objects it knows nothing about, so it never calls
code the user's objects control: no `repr`, `len`, `str` or attribute access except on
exact builtin types, on the few library types it knows (pandas, numpy, already
imported by the user: it never imports them), and through the class, not the instance
(a lazy proxy's `__class__` or `__getattr__` could load data). Any failure is contained
to the line describing that name.

Secrets: values are shown only for short scalars (and short lists/dicts of them), and
never, whatever their type, under a name whose values are all secret (`db_password`,
`api_token`, `WEATHER_KEY` …), nor when the value is a secret for its name (`sk-…`, a
JWT, a URL with a password, a long random token, a hex key under `key`); a dict or a
default argument is judged entry by entry, by its own name. What counts as secret is
decided in `secrets.py`. `secret_values` collects the values to redact from everything
sent to the model.
"""

from __future__ import annotations

import inspect
import re
import sys
import types
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .secrets import find_secrets, is_secret_value, looks_like_key, looks_secret_name

__all__ = ["secret_values", "summarize_namespace"]

# IPython's own names (history, output cache, helpers); `hidden` adds the rest.
_IPYTHON_NAMES = frozenset(
    {"In", "Out", "_", "__", "___", "_i", "_ii", "_iii", "_oh", "_ih", "_dh", "_sh"}
    | {"exit", "quit", "get_ipython", "_exit_code"}
)

_MAX_VALUE_CHARS = 80
_MAX_LINE_CHARS = 400
_MAX_COLUMNS = 30
_MAX_KEYS = 8
_MAX_ITEMS_SHOWN = 10

_SCALARS: tuple[type, ...] = (bool, int, float, complex, type(None))
# `($module, x, /)` → `(x, /)`; `($module, /, *args)` → `(*args)`
_BOUND_PARAMETER = re.compile(r"^\(\$\w+(?:, /)?(?=[,)])(?:, )?")


def secret_values(
    user_ns: Mapping[str, object],
    hidden: Collection[str] = (),
    environ: Mapping[str, str] | None = None,
) -> frozenset[str]:
    """The values to redact from everything sent to the model: those `find_secrets`
    finds among the user's visible variables and the environment."""
    return find_secrets(_visible(user_ns, hidden), environ)


def summarize_namespace(
    user_ns: Mapping[str, object],
    hidden: Collection[str] = (),
    max_items: int = 60,
    max_chars: int = 3000,
) -> str:
    """A compact, safe description of the user's variables, one line each.

    Modules come first (as `import` lines), then everything else in the order it was
    defined. Past `max_items` names, the most recently defined are described and the
    rest only named; past `max_chars`, lines stop and the remaining names are counted.
    `hidden` is IPython's `user_ns_hidden`: when it is a mapping, a hidden name the
    user has since reassigned is shown again (as IPython's `%who` does).
    """
    names = list(_visible(user_ns, hidden))
    cut = max(len(names) - max(max_items, 0), 0)
    described, skipped = names[cut:], names[:cut]
    entries = [_Entry.of(name, value) for name, value in described]
    entries.sort(key=lambda entry: not entry.is_import)
    lines: list[str] = []
    used = 0
    omitted = [name for name, _ in skipped]
    for index, entry in enumerate(entries):
        line = _clip(entry.line, _MAX_LINE_CHARS)
        if used + len(line) + 1 > max_chars:
            omitted += [e.name for e in entries[index:]]
            break
        lines.append(line)
        used += len(line) + 1
    if omitted:
        lines.append(_clip(f"# … {len(omitted)} more: " + ", ".join(omitted), _MAX_LINE_CHARS))
    return "\n".join(lines)


def _visible(user_ns: Mapping[str, object], hidden: Collection[str]) -> Iterable[tuple[str, Any]]:
    hidden_values = hidden if isinstance(hidden, Mapping) else None
    for name in list(user_ns):
        if type(name) is not str or _is_ipython_name(name):
            continue
        try:
            value = user_ns[name]
        except Exception:
            continue
        if name in hidden and (hidden_values is None or hidden_values.get(name) is value):
            continue
        if name == "open" and _is_builtin_open(value):
            continue
        yield name, value


def _is_ipython_name(name: str) -> bool:
    if name[:1] != "_":
        return name in _IPYTHON_NAMES
    # `_12` and `_i12` pile up with every cell a session runs: checked without a regex.
    number = name[2:] if name[1:2] == "i" else name[1:]
    return (
        number.isdecimal()
        or name in _IPYTHON_NAMES
        or (name.startswith("__") and name.endswith("__"))
    )


def _is_builtin_open(value: object) -> bool:
    # IPython 9 puts its own `open` wrapper in the namespace.
    if type(value) in (types.FunctionType, types.BuiltinFunctionType):
        module = getattr(value, "__module__", None) or ""
        return module.startswith(("IPython", "io", "_io"))
    return False


@dataclass(frozen=True)
class _Entry:
    name: str
    line: str
    is_import: bool = False

    @classmethod
    def of(cls, name: str, value: object) -> _Entry:
        try:
            return _describe(name, value)
        except Exception:
            return cls(name, f"{name}: {_type_label(type(value))}")


def _describe(name: str, value: object) -> _Entry:
    kind = type(value)
    secret = looks_secret_name(name, strict=True)
    if issubclass(kind, types.ModuleType):
        module = _module_name(value) or name
        line = f"import {module}" if module == name else f"import {module} as {name}"
        return _Entry(name, line, is_import=True)
    if kind is str:
        return _Entry(name, _describe_str(name, value, secret))  # type: ignore[arg-type]
    if value is None:
        return _Entry(name, f"{name} = None")
    if kind in _SCALARS:
        if secret:
            return _Entry(name, f"{name}: {kind.__name__}  # value hidden")
        return _Entry(name, f"{name}: {kind.__name__} = {_scalar_repr(value)}")
    if kind in (list, tuple, set, frozenset, dict):
        return _Entry(name, _describe_container(name, value, secret))
    if kind in (types.FunctionType, types.BuiltinFunctionType, types.MethodType):
        return _Entry(name, _describe_function(name, value))
    if issubclass(kind, type):
        return _Entry(name, _describe_class(name, value))  # type: ignore[arg-type]
    for base in (dict, list, tuple, set, frozenset):
        if issubclass(kind, base):
            # The base class's size, not the subclass's `__len__`, which may be anything.
            size = base.__len__(value)  # type: ignore[arg-type]
            return _Entry(name, f"{name}: {_type_label(kind)}  # len {size}")
    detail = _describe_library_object(value, secret)
    if detail is not None:
        return _Entry(name, f"{name}: {detail}")
    return _Entry(name, f"{name}: {_type_label(kind)}")


def _describe_str(name: str, value: str, secret: bool) -> str:
    if secret:
        return f"{name}: str  # value hidden"
    if len(value) > _MAX_VALUE_CHARS:
        return f"{name}: str  # len {len(value)}"
    if is_secret_value(name, value):
        return f"{name}: str  # value hidden"
    return f"{name}: str = {value!r}"


def _scalar_repr(value: object) -> str:
    if type(value) is int and value.bit_length() > 64:
        # Huge ints are slow to print and say nothing at a glance.
        return f"<int of {value.bit_length()} bits>"
    return repr(value)


def _describe_container(name: str, value: Any, secret: bool) -> str:
    kind = type(value)
    size = len(value)
    if kind is dict:
        keys = list(_islice(value, _MAX_KEYS + 1))
        # A key that looks like a credential is itself a secret (`{token: user}`).
        shown = [
            _short_repr(key)
            for key in keys[:_MAX_KEYS]
            if not (type(key) is str and looks_like_key(key))
        ]
        key_list = ", ".join(k for k in shown if k is not None)
        if len(keys) > _MAX_KEYS:
            key_list += ", …"
        literal = None if secret else _literal(name, value)
        if literal is not None:
            return f"{name}: dict = {literal}"
        return f"{name}: dict  # len {size}" + (f", keys {key_list}" if key_list else "")
    literal = None if secret else _literal(name, value)
    if literal is not None:
        return f"{name}: {kind.__name__} = {literal}"
    items = list(_islice(value, 5))
    item_types = {type(item) for item in items}
    of = f", items {_type_label(item_types.pop())}" if len(item_types) == 1 else ""
    return f"{name}: {kind.__name__}  # len {size}{of}"


def _islice(value: Iterable[Any], count: int) -> Iterable[Any]:
    # Exact builtin containers only reach here, so iterating them runs no user code.
    for index, item in enumerate(value):
        if index >= count:
            return
        yield item


def _literal(name: str, value: Any) -> str | None:
    """A short literal of a small builtin container of non-secret scalars, else None.

    An item is judged by its key and by the container's `name` (`keys = ["0a1b…"]`).
    """
    if len(value) > _MAX_ITEMS_SHOWN:
        return None
    parts: list[str] = []
    pairs = value.items() if type(value) is dict else ((None, item) for item in value)
    for key, item in pairs:
        if key is not None and (type(key) is not str or looks_secret_name(key, strict=True)):
            return None
        item_repr = _short_repr(item)
        if item_repr is None or (type(item) is str and _is_secret_item(name, key, item)):
            return None
        parts.append(item_repr if key is None else f"{key!r}: {item_repr}")
    if type(value) is dict:
        text = "{" + ", ".join(parts) + "}"
    elif type(value) is list:
        text = "[" + ", ".join(parts) + "]"
    elif type(value) is tuple:
        text = "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"
    elif not parts:
        text = f"{type(value).__name__}()"
    else:
        text = "{" + ", ".join(parts) + "}"
    return text if len(text) <= _MAX_VALUE_CHARS else None


def _is_secret_item(name: str, key: str | None, item: str) -> bool:
    return is_secret_value(name, item) or (key is not None and is_secret_value(key, item))


def _short_repr(value: object) -> str | None:
    """repr of a short builtin scalar, else None (anything else could run user code)."""
    kind = type(value)
    if kind is str:
        return repr(value) if len(value) <= _MAX_VALUE_CHARS else None  # type: ignore[arg-type]
    if kind in _SCALARS:
        return _scalar_repr(value)
    return None


def _describe_function(name: str, value: Any) -> str:
    func = value.__func__ if type(value) is types.MethodType else value
    prefix = "async def" if inspect.iscoroutinefunction(func) else "def"
    line = f"{prefix} {name}{signature_text(value)}"
    doc = _first_doc_line(func.__doc__ if type(func) is types.FunctionType else value.__doc__)
    if getattr(func, "__name__", name) != name:
        line += f"  # {func.__name__}" + (f": {doc}" if doc else "")
    elif doc:
        line += f"  # {doc}"
    return line


def signature_text(value: Any) -> str:
    """The signature with safe renderings of defaults and annotations.

    `str(inspect.signature(f))` would call `repr` on every default value, which can be
    any object.
    """
    if type(value) is types.BuiltinFunctionType:
        return _builtin_signature(value)
    try:
        signature = inspect.signature(value)
    except Exception:  # a broken `__signature__` or `__wrapped__`
        return "(...)"
    params: list[str] = []
    star_done = False
    previous = None
    for param in signature.parameters.values():
        kind = param.kind
        if previous is inspect.Parameter.POSITIONAL_ONLY and kind != previous:
            params.append("/")
        if kind is inspect.Parameter.KEYWORD_ONLY and not star_done:
            params.append("*")
            star_done = True
        text = param.name
        if kind is inspect.Parameter.VAR_POSITIONAL:
            text, star_done = "*" + text, True
        elif kind is inspect.Parameter.VAR_KEYWORD:
            text = "**" + text
        annotation = _annotation(param.annotation)
        if annotation:
            text += f": {annotation}"
        if param.default is not inspect.Parameter.empty:
            secret = _is_secret_default(param.name, param.default)
            default = None if secret else _short_repr(param.default)
            if default is None:
                default = "…" if param.default is ... else f"<{_type_label(type(param.default))}>"
            text += f" = {default}" if annotation else f"={default}"
        params.append(text)
        previous = kind
    if previous is inspect.Parameter.POSITIONAL_ONLY:
        params.append("/")
    result = "(" + ", ".join(params) + ")"
    returns = _annotation(signature.return_annotation)
    return f"{result} -> {returns}" if returns else result


def _is_secret_default(name: str, default: object) -> bool:
    if looks_secret_name(name, strict=True):
        return True
    return type(default) is str and is_secret_value(name, default)


def _builtin_signature(value: types.BuiltinFunctionType) -> str:
    # `inspect.signature` parses this text with `ast`, at ~0.5 ms a builtin; the text
    # itself is already what a reader wants, minus the bound first parameter.
    text = value.__text_signature__  # type: ignore[attr-defined]
    if type(text) is not str:
        return "(...)"
    return _BOUND_PARAMETER.sub("(", text)


def _annotation(annotation: object) -> str:
    if annotation is inspect.Parameter.empty:
        return ""
    if type(annotation) is str:
        return annotation
    if issubclass(type(annotation), type) and type(annotation) is not types.GenericAlias:
        return str(type.__dict__["__qualname__"].__get__(annotation))
    # typing constructs (list[int], Optional[x], X | Y) print themselves safely.
    if type(annotation).__module__ in ("typing", "types"):
        return repr(annotation).replace("typing.", "")
    return ""


def _describe_class(name: str, cls: type) -> str:
    namespace = type.__dict__["__dict__"].__get__(cls)
    bases = [base for base in type.__dict__["__bases__"].__get__(cls) if base is not object]
    base_list = ", ".join(_type_label(base) for base in bases)
    line = f"class {name}" + (f"({base_list})" if base_list else "")
    qualname = type.__dict__["__qualname__"].__get__(cls)
    doc = _first_doc_line(namespace.get("__doc__"))
    if qualname != name:
        line += f"  # {_type_label(cls)}" + (f": {doc}" if doc else "")
    elif doc:
        line += f"  # {doc}"
    return line


def _first_doc_line(doc: object) -> str:
    if type(doc) is not str:
        return ""
    for line in doc.strip().split("\n"):
        if line.strip():
            return _clip(line.strip(), 120)
    return ""


def _describe_library_object(value: object, secret: bool) -> str | None:
    """Shape and dtype of the array and table types of libraries the user imported."""
    kind = type(value)
    module = type.__dict__["__module__"].__get__(kind)
    if type(module) is not str:
        return None
    if module.startswith("pandas") and "pandas" in sys.modules:
        pandas = sys.modules["pandas"]
        if issubclass(kind, pandas.DataFrame):
            return _describe_dataframe(value)
        if issubclass(kind, pandas.Series):
            return _describe_series(value)
    if module.startswith("numpy") and "numpy" in sys.modules:
        numpy = sys.modules["numpy"]
        array: Any = value
        if issubclass(kind, numpy.ndarray):
            return f"{_type_label(kind)}  # shape {tuple(array.shape)}, dtype {array.dtype}"
        if issubclass(kind, numpy.generic):
            shown = None if secret else _short_repr(array.item())
            return f"{_type_label(kind)}" + (f" = {shown}" if shown is not None else "")
    return None


def _describe_dataframe(frame: Any) -> str:
    rows, width = frame.shape
    names = frame.columns[:_MAX_COLUMNS].tolist()
    # `dtypes.tolist()` skips building a Series slice, the slow part of `dtypes[:n]`.
    dtypes = frame.dtypes.tolist()[:_MAX_COLUMNS]
    columns = []
    for column, dtype in zip(names, dtypes, strict=True):
        label = _short_repr(column)
        if type(column) is str:
            label = column
        columns.append(f"{label if label is not None else '?'} {dtype}")
    more = f", … {width - _MAX_COLUMNS} more" if width > _MAX_COLUMNS else ""
    label = _type_label(type(frame))
    return f"{label}  # shape ({rows}, {width}); columns: {', '.join(columns)}{more}"


def _describe_series(series: Any) -> str:
    label = _type_label(type(series))
    name = _short_repr(series.name)
    named = f", name {name}" if name is not None and series.name is not None else ""
    return f"{label}  # len {len(series)}, dtype {series.dtype}{named}"


def _type_label(kind: type) -> str:
    """`module.Class`, with the module cut at its first private part
    (`pandas.core.frame` → `pandas`); builtins and `__main__` names stand alone."""
    qualname = type.__dict__["__qualname__"].__get__(kind)
    module = type.__dict__["__module__"].__get__(kind)
    if type(module) is not str or module in ("builtins", "__main__"):
        return str(qualname)
    public: list[str] = []
    for part in module.split("."):
        if part.startswith("_"):
            break
        public.append(part)
    if public and public[0] in ("pandas", "numpy"):
        # Their public API re-exports everything at the top level.
        public = public[:1]
    return ".".join([*public, qualname]) if public else str(qualname)


def _module_name(module: object) -> str | None:
    # Through the instance dict, not attribute access: a lazy module loads itself on
    # any attribute access.
    namespace = object.__getattribute__(module, "__dict__")
    name = namespace.get("__name__")
    return name if type(name) is str else None


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
