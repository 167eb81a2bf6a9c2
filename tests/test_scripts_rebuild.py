"""scripts/build_labextension.sh (which scripts/lab runs on every start) builds again
exactly when something that goes into the build changed: each input in turn, and
nothing else. The checkout, fakes and helpers are test_static_checks.py's."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_static_checks import build, built, extension_checkout

__all__ = ["extension_checkout"]  # the fixture, used by name

INPUTS = [
    "package.json",
    "package-lock.json",
    "tsconfig.json",
    "install.json",
    "src/index.ts",
    "style/index.css",
    "style/index.js",
]


@pytest.mark.parametrize("name", INPUTS)
def test_each_input_of_the_build_makes_it_stale(
    extension_checkout: tuple[Path, Path, dict[str, str]], name: str
) -> None:
    checkout, log, env = extension_checkout
    assert build(checkout, env).returncode == 0
    built(log)
    changed = checkout / "labextension" / name
    changed.write_text(changed.read_text() + "\n")
    done = build(checkout, env)
    assert done.returncode == 0
    assert "npx tsc -b" in built(log), f"a change to {name} was not built"


def test_a_new_source_file_makes_it_stale_and_other_files_do_not(
    extension_checkout: tuple[Path, Path, dict[str, str]],
) -> None:
    checkout, log, env = extension_checkout
    assert build(checkout, env).returncode == 0
    built(log)
    extension = checkout / "labextension"
    for unrelated in ("test/answers.test.ts", "README.md", "lib/index.js", "tsconfig.test.json"):
        (extension / unrelated).parent.mkdir(parents=True, exist_ok=True)
        (extension / unrelated).write_text("// not part of the build\n")
    done = build(checkout, env)
    assert "up to date" in done.stdout and built(log) == []
    (extension / "src" / "extra.ts").write_text("export const extra = 1;\n")
    assert build(checkout, env).returncode == 0
    assert "npx tsc -b" in built(log)
