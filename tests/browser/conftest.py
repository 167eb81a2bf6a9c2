"""A real JupyterLab in a real browser, with the codeact kernel and the extension.

- `lab`: `jupyter lab` on 127.0.0.1 (token-less, news off, a temp root dir), with the
  `codeact` kernelspec and the prebuilt extension installed into a temp prefix on
  JUPYTER_PATH and the kernel pointed at the scripted model server;
- `browser`: Debian's `chromium` driven by Python playwright;
- `page`: a fresh page per test; screenshots go to test-artifacts/.

Without chromium, playwright or a built extension (scripts/test-setup installs them) the
tests fail. CODEACT_SKIP_BROWSER=1 skips them all, for a quick local run; CI never sets it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from model_server import ScriptedModelServer

from .lab_driver import ARTIFACTS, ROOT, Lab

EXTENSION = ROOT / "codeact_kernel" / "labextension"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def _missing() -> str | None:
    if shutil.which("chromium") is None:
        return "Debian's chromium is not installed (apt-get install -y chromium)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "python playwright is not installed (pip install playwright)"
    if not (EXTENSION / "package.json").exists():
        return "the extension is not built (scripts/build_labextension.sh)"
    return None


@pytest.fixture(scope="session", autouse=True)
def _prerequisites() -> None:
    if os.environ.get("CODEACT_SKIP_BROWSER") == "1":
        pytest.skip("CODEACT_SKIP_BROWSER=1: browser tests skipped")
    missing = _missing()
    if missing is not None:
        # Required: scripts/test-setup installs all of it.
        pytest.fail(f"browser tests need what is missing: {missing} (run scripts/test-setup)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _install(prefix: Path) -> Path:
    """The kernelspec and the prebuilt extension, as setup.cfg would install them."""
    from codeact_kernel.install import install

    install(prefix=str(prefix))
    data = prefix / "share" / "jupyter"
    shutil.copytree(EXTENSION, data / "labextensions" / "codeact-kernel-lab")
    return data


@pytest.fixture(scope="session")
def lab(
    tmp_path_factory: pytest.TempPathFactory, _model_server_session: ScriptedModelServer
) -> Iterator[Lab]:
    base = tmp_path_factory.mktemp("lab")
    data = _install(base / "prefix")
    root = base / "root"
    config = base / "config"
    for directory in (root, config):
        directory.mkdir()
    (config / "jupyter_server_config.py").write_text(
        "c.IdentityProvider.token = ''\n"
        "c.ServerApp.password = ''\n"
        "c.ServerApp.allow_root = True\n"
        "c.ServerApp.open_browser = False\n"
        "c.ServerApp.disable_check_xsrf = True\n"
        "c.LabApp.news_url = None\n"
        "c.LabApp.check_for_updates_class = 'jupyterlab.NeverCheckForUpdate'\n"
        "c.LabApp.expose_app_in_browser = True\n"
        "c.LabApp.extension_manager = 'readonly'\n"
        f"c.LabApp.workspaces_dir = {str(base / 'workspaces')!r}\n"
        f"c.LabApp.user_settings_dir = {str(base / 'settings')!r}\n"
    )
    # No news or update pop-ups over the notebook in screenshots.
    notification = base / "settings" / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text(
        '{"fetchNews": "false", "checkForUpdates": false}'
    )
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CODEACT_", "OPENAI_", "ANTHROPIC_", "OLLAMA_", "JUPYTER"))
    }
    env.update(
        JUPYTER_PATH=str(data),
        JUPYTER_CONFIG_DIR=str(config),
        JUPYTER_DATA_DIR=str(base / "data"),
        JUPYTER_RUNTIME_DIR=str(base / "runtime"),
        IPYTHONDIR=str(base / "ipython"),
        CODEACT_MODEL="openai:test-model",
        CODEACT_BASE_URL=_model_server_session.url,
        CODEACT_API_KEY="sk-test-browser",
        # The kernel runs in the notebook's directory: let it import this source tree.
        PYTHONPATH=os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(ROOT)) if p),
    )
    log = base / "lab.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [
                sys.executable, "-m", "jupyter", "lab",
                "--ip=127.0.0.1", f"--port={port}", "--no-browser",
                f"--ServerApp.root_dir={root}",
            ],
            env=env, cwd=root, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{url}/api/status", server, log)
        yield Lab(url, root, log, data)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def _wait_for(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"jupyter lab exited:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.25)
    raise RuntimeError(f"jupyter lab did not start:\n{log.read_text()}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Module scope: playwright's sync API keeps an asyncio loop running in this thread
    # while it is open, and other test modules need asyncio.run().
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, lab: Lab, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda message: (
            errors.append(message.text)
            if message.type == "error" and "codeact" in message.text
            else None
        ),
    )
    yield page
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-end.png"))
    context.close()
    _shut_down_kernels(lab.url)
    assert not [e for e in errors if "codeact" in e], errors


def _shut_down_kernels(url: str) -> None:
    """Each test starts from no running kernel (the server is shared)."""
    with urllib.request.urlopen(f"{url}/api/sessions", timeout=10) as response:
        sessions = json.load(response)
    for session in sessions:
        request = urllib.request.Request(f"{url}/api/sessions/{session['id']}", method="DELETE")
        with contextlib.suppress(OSError):
            urllib.request.urlopen(request, timeout=20).close()
