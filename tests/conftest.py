"""Isolation from the user's own set-up, and shared fixtures.

At import, before any test module, fixture or kernel: the session gets its own IPython,
Jupyter, cache and temp directories, in one directory removed when pytest exits, and
forgets the user's model settings. Kernels, jupyter lab and other subprocesses inherit
os.environ, so they see the same. Nothing then reads or writes the user's IPython
profile (`c.CodeAct.*` in ~/.ipython would change the tests' settings), Jupyter config,
kernelspecs, runtime files or caches. pytest's own tmp_path directories stay where
pytest keeps them (PYTEST_DEBUG_TEMPROOT), for looking at after a failure.

- `model_server`: the scripted model server of tests/model_server.py, reset per test.
- `ipython`: the process-wide IPython shell for in-process tests.

The provider tests' doubles (a model driven over `httpx.MockTransport`, each
provider's wire format) are in tests/provider_doubles.py.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell
from model_server import ScriptedModelServer

# Under pytest-xdist: module groups, the browser group, `timing` tests run alone.
pytest_plugins = ("machine_share",)

# The user's model settings: a test that wants one sets it.
_USER_SETTINGS = ("CODEACT_", "OPENAI_", "ANTHROPIC_", "OLLAMA_")
# How a developer runs the suite, not what it tests.
_RUN_OPTIONS = ("CODEACT_SKIP_BROWSER",)
# Where the user's configuration and startup files would come from.
_USER_FILES = ("JUPYTER_PATH", "JUPYTER_CONFIG_PATH", "PYTHONSTARTUP")


def _isolate() -> Path:
    """Point every per-user location at a fresh directory; return it."""
    root = Path(tempfile.mkdtemp(prefix="codeact-tests-"))
    os.environ.setdefault("PYTEST_DEBUG_TEMPROOT", tempfile.gettempdir())
    for name in list(os.environ):
        if (name.startswith(_USER_SETTINGS) and name not in _RUN_OPTIONS) or name in _USER_FILES:
            del os.environ[name]
    for name, directory in {
        "IPYTHONDIR": "ipython",
        "JUPYTER_CONFIG_DIR": "jupyter-config",
        "JUPYTER_DATA_DIR": "jupyter-data",
        "JUPYTER_RUNTIME_DIR": "jupyter-runtime",
        "XDG_CACHE_HOME": "cache",
        "XDG_CONFIG_HOME": "config",
        "XDG_DATA_HOME": "data",
        "MPLCONFIGDIR": "matplotlib",
        "npm_config_cache": "npm",
        # What libraries leave in the temp dir (ipykernel's kernelspec installs, IPython's
        # test history) goes with the rest.
        "TMPDIR": "tmp",
    }.items():
        (root / directory).mkdir()
        os.environ[name] = str(root / directory)
    tempfile.tempdir = None  # read TMPDIR again
    return root


_ISOLATED = _isolate()
atexit.register(shutil.rmtree, _ISOLATED, ignore_errors=True)


@pytest.fixture(scope="session")
def _model_server_session() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer() as server:
        yield server


@pytest.fixture
def model_server(_model_server_session: ScriptedModelServer) -> Iterator[ScriptedModelServer]:
    """A running scripted model server (see tests/model_server.py), fresh per test."""
    server = _model_server_session
    server.reset()
    server.models = ["test-model"]
    yield server
    server.reset()


@pytest.fixture(scope="session")
def ipython() -> InteractiveShell:
    """The process-wide IPython shell for in-process tests (IPython allows one singleton)."""
    from IPython.testing.globalipapp import start_ipython

    shell = start_ipython()
    assert shell is not None
    return shell
