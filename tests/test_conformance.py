"""jupyter_kernel_test's conformance suite, run alike on stock `python3` and on `codeact`.

Both classes share every sample, so the suite passes for `codeact` exactly as it
does for the stock kernel (the `python3` run is the reference).
"""

# The suite reads its samples from class attributes, as jupyter_kernel_test designs it.
# ruff: noqa: RUF012

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import jupyter_kernel_test

# Both kernelspecs, installed for this module and removed after it with what it changed.
_prefix: tempfile.TemporaryDirectory[str] | None = None
_jupyter_path: str | None = None


def setUpModule() -> None:
    global _prefix, _jupyter_path
    _prefix = tempfile.TemporaryDirectory(prefix="codeact-conformance-")
    for module in ("ipykernel", "codeact_kernel"):
        subprocess.run(
            [sys.executable, "-m", module, "install", "--prefix", _prefix.name],
            check=True,
            capture_output=True,
            # ipykernel's install leaves its scratch directory behind: put it in ours.
            env={**os.environ, "TMPDIR": _prefix.name},
        )
    _jupyter_path = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = str(Path(_prefix.name) / "share" / "jupyter")


def tearDownModule() -> None:
    if _jupyter_path is None:
        os.environ.pop("JUPYTER_PATH", None)
    else:
        os.environ["JUPYTER_PATH"] = _jupyter_path
    if _prefix is not None:
        _prefix.cleanup()


class PythonSamples(jupyter_kernel_test.KernelTests):
    __test__ = False
    language_name = "python"
    file_extension = ".py"
    code_hello_world = "print('hello, world')"
    code_stderr = "import sys; print('test', file=sys.stderr)"
    completion_samples = [{"text": "zi", "matches": {"zip"}}]
    complete_code_samples = ["1", "print('hello, world')", "def f(x):\n  return x*2\n\n\n"]
    incomplete_code_samples = ["print('''hello", "def f(x):\n  x*2"]
    invalid_code_samples = ["import = 7q"]
    code_page_something = "zip?"
    code_generate_error = "raise"
    code_execute_result = [
        {"code": "1+2+3", "result": "6"},
        {"code": "[n*n for n in range(1, 4)]", "result": "[1, 4, 9]"},
    ]
    code_display_data = [
        {
            "code": "from IPython.display import HTML, display; display(HTML('<b>test</b>'))",
            "mime": "text/html",
        },
        {
            "code": "from IPython.display import Math, display; display(Math('\\\\frac{1}{2}'))",
            "mime": "text/latex",
        },
    ]
    code_history_pattern = "1?2*"
    supported_history_operations = ("tail", "search")
    code_inspect_sample = "zip"
    code_clear_output = "from IPython.display import clear_output; clear_output()"


class TestStockPython(PythonSamples):
    __test__ = True
    kernel_name = "python3"


class TestCodeAct(PythonSamples):
    __test__ = True
    kernel_name = "codeact"
