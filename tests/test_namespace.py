"""The namespace summary: informative, safe on hostile objects, never leaking secrets."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import types
from collections.abc import Iterator, Mapping
from typing import Any

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from IPython.core.interactiveshell import InteractiveShell
from test_secrets import KEY_SHAPED, SECRET_NAMES

from codeact_kernel.namespace import secret_values, summarize_namespace

OPENAI_KEY = "sk-proj-4fQz9LmX2vR7tK1pW8yB3nC6"


def lines_of(ns: Mapping[str, object], **kwargs: Any) -> dict[str, str]:
    """Summary lines keyed by the name they describe."""
    result = {}
    for line in summarize_namespace(ns, **kwargs).splitlines():
        for prefix in ("async def ", "def ", "class ", "import "):
            if line.startswith(prefix):
                rest = line.removeprefix(prefix)
                name = rest.split(" as ")[-1] if prefix == "import " else rest
                name = name.split("(")[0].split(" ")[0]
                break
        else:
            name = line.split(":")[0].split(" ")[0]
        result[name] = line
    return result


# --- content ---------------------------------------------------------------------


def test_scalars_show_their_values() -> None:
    lines = lines_of({"n": 42, "ratio": 0.25, "name": "Alice", "flag": True, "none": None})
    assert lines == {
        "n": "n: int = 42",
        "ratio": "ratio: float = 0.25",
        "name": "name: str = 'Alice'",
        "flag": "flag: bool = True",
        "none": "none = None",
    }


def test_long_strings_and_huge_ints_show_a_size() -> None:
    lines = lines_of({"text": "word " * 100, "big": 10**100})
    assert lines["text"] == "text: str  # len 500"
    assert lines["big"] == "big: int = <int of 333 bits>"


def test_containers() -> None:
    lines = lines_of(
        {
            "xs": [1, 2, 3],
            "records": [{"a": 1}] * 120,
            "config": {"model": "gpt", "steps": 10},
            "wide": {f"k{i}": i for i in range(20)},
            "pair": (1,),
            "tags": {"a"},
            "nested": [[1], [2]],
        }
    )
    assert lines["xs"] == "xs: list = [1, 2, 3]"
    assert lines["records"] == "records: list  # len 120, items dict"
    assert lines["config"] == "config: dict = {'model': 'gpt', 'steps': 10}"
    assert lines["wide"].startswith("wide: dict  # len 20, keys 'k0', 'k1',")
    assert lines["wide"].endswith(", …")
    assert lines["pair"] == "pair: tuple = (1,)"
    assert lines["tags"] == "tags: set = {'a'}"
    assert lines["nested"] == "nested: list  # len 2, items list"


def test_dataframe_shape_columns_and_dtypes() -> None:
    df = pd.DataFrame({"month": ["jan", "feb"], "revenue": [1.5, 2.5], "units": [3, 4]})
    line = lines_of({"df": df})["df"]
    assert line.startswith("df: pandas.DataFrame  # shape (2, 3); columns: month ")
    assert "revenue float64" in line
    assert "units int64" in line


def test_wide_dataframe_lists_the_first_columns() -> None:
    df = pd.DataFrame([[0] * 100], columns=[f"c{i}" for i in range(100)])
    line = lines_of({"df": df})["df"]
    assert "c29 int64" in line
    assert "c30" not in line
    assert line.endswith("… 70 more")


def test_series() -> None:
    line = lines_of({"s": pd.Series([1.0, 2.0], name="revenue")})["s"]
    assert line == "s: pandas.Series  # len 2, dtype float64, name 'revenue'"


def test_numpy_arrays_and_scalars() -> None:
    np = pytest.importorskip("numpy")
    lines = lines_of({"arr": np.zeros((3, 4), dtype="float32"), "x": np.float64(2.5)})
    assert lines["arr"] == "arr: numpy.ndarray  # shape (3, 4), dtype float32"
    assert lines["x"] == "x: numpy.float64 = 2.5"


class Report:
    """A report.

    Second paragraph."""

    __module__ = "__main__"  # as if the user defined it in the notebook


def load(path: str, n: int = 10, *, sep: str = ",", obj: object = Report()) -> pd.DataFrame:
    """Load the sales data.

    Details follow.
    """
    raise NotImplementedError


async def fetch(url, /, *args, timeout=None, **kwargs):  # type: ignore[no-untyped-def]
    pass


def test_functions_show_signature_and_first_doc_line() -> None:
    import math

    lines = lines_of({"load": load, "fetch": fetch, "sqrt": math.sqrt, "f": lambda x: x})
    assert lines["load"] == (
        # Annotations are strings here (`from __future__ import annotations`).
        "def load(path: str, n: int = 10, *, sep: str = ',', obj: object = <Report>)"
        " -> pd.DataFrame  # Load the sales data."
    )
    assert lines["fetch"] == "async def fetch(url, /, *args, timeout=None, **kwargs)"
    assert lines["sqrt"].startswith("def sqrt(x, /)  # Return the square root of x")
    # Builtins: the bound `$module` parameter and a lone `/` are dropped.
    assert lines_of({"print": print})["print"].startswith(
        "def print(*args, sep=' ', end='\\n', file=None, flush=False)  # "
    )
    assert lines["f"] == "def f(x)  # <lambda>"


def test_classes_and_instances() -> None:
    class Child(Report):
        __module__ = "__main__"
        __qualname__ = "Child"

    lines = lines_of({"Report": Report, "Child": Child, "r": Report()})
    assert lines["Report"] == "class Report  # A report."
    assert lines["Child"] == "class Child(Report)"
    assert lines["r"] == "r: Report"


def test_modules_as_imports_first() -> None:
    import os.path

    ns = {"x": 1, "pd": pd, "os": os, "osp": os.path}
    summary = summarize_namespace(ns).splitlines()
    assert summary[:3] == ["import pandas as pd", "import os", f"import {os.path.__name__} as osp"]
    assert summary[3] == "x: int = 1"


def test_container_subclasses_show_their_size() -> None:
    from collections import Counter, OrderedDict, namedtuple

    point = namedtuple("point", "x y")
    lines = lines_of({"c": Counter("aab"), "o": OrderedDict(a=1), "p": point(1, 2)})
    assert lines == {
        "c": "c: collections.Counter  # len 2",
        "o": "o: collections.OrderedDict  # len 1",
        "p": "p: test_namespace.point  # len 2",
    }


def test_library_types_are_named_by_their_public_module() -> None:
    assert lines_of({"ts": pd.Timestamp("2024-01-01")})["ts"] == "ts: pandas.Timestamp"


def test_empty_namespace() -> None:
    assert summarize_namespace({}) == ""


# --- what is skipped ---------------------------------------------------------------


def test_ipython_names_are_skipped() -> None:
    ns: dict[str, object] = dict.fromkeys(
        ["In", "Out", "_", "__", "___", "_i", "_ii", "_iii", "_i7", "_7", "_oh", "_ih", "_dh"],
        1,
    )
    ns.update({"exit": 1, "quit": 1, "get_ipython": 1, "__name__": "__main__", "__doc__": None})
    ns["_tmp"] = 2
    assert lines_of(ns) == {"_tmp": "_tmp: int = 2"}


def test_hidden_names_are_skipped_until_reassigned() -> None:
    marker = object()
    ns = {"helper": marker, "other": 1, "x": 2}
    assert set(lines_of(ns, hidden=["helper", "other"])) == {"x"}
    # IPython's user_ns_hidden is a dict: a name the user rebinds is theirs again.
    assert set(lines_of(ns, hidden={"helper": marker, "other": 99})) == {"other", "x"}


def test_real_ipython_namespace(ipython: InteractiveShell) -> None:
    shell = ipython
    shell.run_cell("data = [1, 2]\n!true")
    lines = lines_of(shell.user_ns, hidden=shell.user_ns_hidden)
    assert lines["data"] == "data: list = [1, 2]"
    assert "open" not in lines
    assert "_exit_code" not in lines


# --- secrets ----------------------------------------------------------------------
# What counts as secret is tested in test_secrets.py; here, that the summary hides it.


class SecretStr:
    """Like pydantic's: a wrapper whose value is an attribute."""

    __module__ = "__main__"

    def __init__(self, value: str) -> None:
        self._secret_value = value


@pytest.mark.parametrize("name", SECRET_NAMES)
@pytest.mark.parametrize("value", ["hunter2", "letmein", "abc", "x1", "pw"])
def test_secret_names_hide_their_values_whatever_their_type(name: str, value: str) -> None:
    assert lines_of({name: value})[name] == f"{name}: str  # value hidden"
    assert lines_of({name: 12345})[name] == f"{name}: int  # value hidden"
    assert lines_of({name: 2.5})[name] == f"{name}: float  # value hidden"
    assert lines_of({name: True})[name] == f"{name}: bool  # value hidden"
    assert lines_of({name: value.encode()})[name] == f"{name}: bytes"
    assert lines_of({name: SecretStr(value)})[name] == f"{name}: SecretStr"
    for container in ([value], (value, "user"), {value}, {"user": "me", "value": value}):
        line = lines_of({name: container, "other": 1})[name]
        assert f"'{value}'" not in line and "'me'" not in line, line


@pytest.mark.parametrize("value", KEY_SHAPED)
def test_key_like_values_are_hidden_whatever_the_name(value: str) -> None:
    assert lines_of({"setting": value})["setting"] == "setting: str  # value hidden"
    assert value not in summarize_namespace({"cfg": {"a": value}, "xs": [value]})


@pytest.mark.parametrize("value", ["hunter2", "abc", "x1", "pw"])
@pytest.mark.parametrize("key", ["password", "db_password", "API_TOKEN", "secret", "WEATHER_KEY"])
def test_dict_entries_under_secret_keys_are_hidden(key: str, value: str) -> None:
    line = lines_of({"config": {key: value, "host": "db"}})["config"]
    assert line == f"config: dict  # len 2, keys {key!r}, 'host'"


def test_default_arguments_under_secret_names_are_hidden() -> None:
    def connect(host="db", password="letmein", key="id", api_token="x1"):  # type: ignore[no-untyped-def]
        pass

    line = lines_of({"connect": connect})["connect"]
    assert line == "def connect(host='db', password=<str>, key='id', api_token=<str>)"


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("key", "id", "key: str = 'id'"),
        ("primary_key", "id", "primary_key: str = 'id'"),
        ("sort_key", "date", "sort_key: str = 'date'"),
        ("keyboard", "us", "keyboard: str = 'us'"),
        ("monkey", "george", "monkey: str = 'george'"),
        ("max_tokens", 512, "max_tokens: int = 512"),
        ("token_count", 3, "token_count: int = 3"),
        ("tokens", ["the", "cat"], "tokens: list = ['the', 'cat']"),
        ("eos_token", "</s>", "eos_token: str = '</s>'"),
        ("lookup", {"key": "id"}, "lookup: dict = {'key': 'id'}"),
        ("password_file", "/run/secrets/db", "password_file: str = '/run/secrets/db'"),
    ],
)
def test_names_that_hold_no_secret_show_their_values(name: str, value: object, shown: str) -> None:
    assert lines_of({name: value})[name] == shown


@pytest.mark.parametrize("name", ["key", "weather_key", "keys"])
def test_a_key_like_value_under_a_key_name_is_hidden(name: str) -> None:
    hex_key = "0123456789abcdef0123456789abcdef"
    assert lines_of({name: hex_key})[name] == f"{name}: str  # value hidden"
    assert hex_key not in summarize_namespace({name: [hex_key]})
    assert hex_key not in summarize_namespace({"cfg": {name: hex_key}})


def test_dict_values_under_secret_keys_are_not_shown() -> None:
    line = lines_of({"config": {"api_key": "abc", "model": "gpt"}})["config"]
    assert line == "config: dict  # len 2, keys 'api_key', 'model'"


def test_secret_values_looks_at_the_visible_names_and_the_environment() -> None:
    ns = {
        "OPENAI_API_KEY": OPENAI_KEY,
        "settings": {"secret_key": "s3cr3t-value"},
        "db_password": "letmein",
        "_i3": "OPENAI_API_KEY = 'sk-typed-0123456789abcdefgh'",
        "old_token": "hidden-t0ken",
        "note": "hello",
    }
    environ = {"CODEACT_API_KEY": "env-secret-123", "WEATHER_KEY": "cafe" * 8, "HOME": "/root"}
    assert secret_values(ns, hidden={"old_token"}, environ=environ) == {
        OPENAI_KEY,
        "s3cr3t-value",
        "letmein",
        "env-secret-123",
        "cafe" * 8,
    }


# --- robustness ---------------------------------------------------------------------


class Hostile:
    """Every protocol a summary might be tempted to call raises."""

    __module__ = "__main__"

    def __len__(self) -> int:
        raise RuntimeError("len")

    def __repr__(self) -> str:
        raise RuntimeError("repr")

    def __str__(self) -> str:
        raise RuntimeError("str")

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(name)

    def __iter__(self) -> Iterator[Any]:
        raise RuntimeError("iter")

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        raise RuntimeError("__class__")


class HostileMeta(type):
    def __repr__(cls) -> str:
        raise RuntimeError("repr")

    def __getattribute__(cls, name: str) -> Any:
        if name in ("__doc__", "__name__", "__module__", "__qualname__", "__mro__"):
            raise RuntimeError(name)
        return super().__getattribute__(name)


class HostileClass(metaclass=HostileMeta):
    pass


class HostileList(list[int]):
    __module__ = "__main__"

    def __len__(self) -> int:
        raise RuntimeError("len")

    def __repr__(self) -> str:
        raise RuntimeError("repr")


class HostileFrame(pd.DataFrame):
    @property
    def shape(self) -> tuple[int, int]:
        raise RuntimeError("shape")


class FailingMapping(Mapping[str, object]):
    def __getitem__(self, key: str) -> object:
        if key == "bad":
            raise KeyError(key)
        return 1

    def __iter__(self) -> Iterator[str]:
        return iter(["bad", "good"])

    def __len__(self) -> int:
        return 2


def hostile_function() -> None:
    pass


hostile_function.__signature__ = Hostile()  # type: ignore[attr-defined]


def test_hostile_objects_do_not_break_the_summary() -> None:
    ns = {
        "h": Hostile(),
        "HC": HostileClass,
        "hl": HostileList([1, 2]),
        "hf": HostileFrame({"a": [1]}),
        "fn": hostile_function,
        "after": 1,
    }
    lines = lines_of(ns)
    assert lines["h"] == "h: Hostile"
    assert lines["HC"].startswith("HC: ") or lines["HC"].startswith("class HC")
    assert lines["hl"] == "hl: HostileList  # len 2"
    assert lines["hf"].startswith("hf: ")
    assert lines["fn"].startswith("def fn(")
    assert lines["after"] == "after: int = 1"


def test_a_failing_mapping_skips_the_name() -> None:
    assert lines_of(FailingMapping()) == {"good": "good: int = 1"}


def test_lazy_modules_are_not_loaded() -> None:
    spec = importlib.util.find_spec("json.tool")
    assert spec is not None and spec.loader is not None
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    assert type(module) is not types.ModuleType  # still the lazy proxy
    assert lines_of({"tool": module})["tool"] == "import json.tool as tool"
    assert "main" not in object.__getattribute__(module, "__dict__")


def test_pandas_and_numpy_are_never_imported() -> None:
    script = (
        "import sys\n"
        "from codeact_kernel.namespace import summarize_namespace\n"
        "summarize_namespace({'x': 1, 'xs': [1], 'f': print, 'o': object()})\n"
        "assert 'pandas' not in sys.modules and 'numpy' not in sys.modules, 'imported'\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)


# --- limits -------------------------------------------------------------------------


def test_max_items_describes_the_most_recent_and_names_the_rest() -> None:
    ns = {f"v{i}": i for i in range(10)}
    summary = summarize_namespace(ns, max_items=3).splitlines()
    assert summary == [
        "v7: int = 7",
        "v8: int = 8",
        "v9: int = 9",
        "# … 7 more: " + ", ".join(f"v{i}" for i in range(7)),
    ]


def test_max_chars_caps_the_summary() -> None:
    ns = {f"variable_{i}": "x" * 60 for i in range(100)}
    summary = summarize_namespace(ns, max_items=100, max_chars=1000)
    lines = summary.splitlines()
    assert sum(len(line) + 1 for line in lines[:-1]) <= 1000
    assert lines[-1].startswith("# … ")
    assert len(lines[-1]) <= 400


_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary(),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=10,
)


@given(st.dictionaries(st.text(min_size=1, max_size=12), _VALUES, max_size=20))
def test_summary_never_raises_and_respects_its_limits(ns: dict[str, object]) -> None:
    summary = summarize_namespace(ns, max_chars=800)
    lines = summary.splitlines() if summary else []
    assert all(len(line) <= 400 for line in lines)
    assert len(summary) <= 800 + 401
