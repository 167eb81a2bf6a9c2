"""Shared fixtures.

- `model_server`: the scripted model server of tests/model_server.py, reset per test.
- `ipython`: the process-wide IPython shell for in-process tests.

The provider tests' doubles (a model driven over `httpx.MockTransport`, each
provider's wire format) are in tests/provider_doubles.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell
from model_server import ScriptedModelServer


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
