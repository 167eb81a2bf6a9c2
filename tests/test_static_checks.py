"""Lint, formatting, types and the extension's TypeScript unit tests, as part of the suite."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def check(*command: str, cwd: Path = ROOT) -> None:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"


def test_ruff_lint() -> None:
    check(str(BIN / "ruff"), "check", ".")


def test_ruff_format() -> None:
    check(str(BIN / "ruff"), "format", "--check", ".")


def test_mypy() -> None:
    check(str(BIN / "mypy"))


def test_labextension_unit_tests() -> None:
    npm = shutil.which("npm")
    if npm is None or not (ROOT / "labextension" / "node_modules").exists():
        pytest.fail("the extension's npm packages are missing: run scripts/test-setup")
    check(npm, "test", "--silent", cwd=ROOT / "labextension")
