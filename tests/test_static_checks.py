"""Checks on the repository as a whole, as part of the suite: lint, formatting, types and
the extension's TypeScript unit tests; the wheel that pip builds; the set-up scripts
skipping work that is already done; the suite's isolation from the user's own set-up."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from codeact_kernel.version import __version__

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
EXTENSION = ROOT / "codeact_kernel" / "labextension"


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


# --- the wheel ------------------------------------------------------------------------

# What a build must not see: local environments, caches, and earlier builds' leftovers.
_NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv", "node_modules", "build", "dist", "*.egg-info", "__pycache__",
    ".*_cache", ".hypothesis", "test-artifacts",
)  # fmt: skip


def build_wheel(source: Path, out: Path) -> tuple[zipfile.ZipFile, list[str]]:
    """`pip wheel SOURCE --no-deps`, as a user runs it: the wheel, and what pip printed."""
    # pip's index and wheel locations are the machine's, in the user's pip config.
    env = {k: v for k, v in os.environ.items() if k != "XDG_CONFIG_HOME"}
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "-w", str(out), "--no-deps"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    (wheel,) = out.glob("codeact_kernel-*.whl")
    return zipfile.ZipFile(wheel), output.splitlines()


def warnings_in(lines: list[str]) -> list[str]:
    return [line for line in lines if re.search(r"warn|would be ignored", line, re.IGNORECASE)]


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    """A copy of the source tree (an in-tree build would write build/ into the checkout)."""
    copy = tmp_path / "source"
    shutil.copytree(ROOT, copy, ignore=_NOT_SOURCES)
    return copy


def test_the_wheel_builds_without_warnings_and_holds_everything(
    sources: Path, tmp_path: Path
) -> None:
    if not (EXTENSION / "package.json").exists():
        pytest.fail("the extension is not built: run scripts/test-setup")
    wheel, output = build_wheel(sources, tmp_path / "wheel")
    assert warnings_in(output) == []
    names = set(wheel.namelist())
    package = ROOT / "codeact_kernel"
    for path in package.rglob("*.py"):
        assert path.relative_to(ROOT).as_posix() in names
    for path in [*package.glob("prompts/*.md"), package / "py.typed"]:
        assert path.relative_to(ROOT).as_posix() in names
    data = f"codeact_kernel-{__version__}.data/data/share/jupyter/labextensions/codeact-kernel-lab"
    built = {
        path.relative_to(EXTENSION).as_posix()
        for path in EXTENSION.rglob("*")
        if path.is_file() and path.name != ".build-hash"
    }
    assert {"package.json", "install.json"} < built
    assert {name.removeprefix(f"{data}/") for name in names if name.startswith(data)} == built
    assert not [name for name in names if name.startswith("codeact_kernel/labextension")], (
        "the extension is data files, not a second copy inside the package"
    )
    dist_info = f"codeact_kernel-{__version__}.dist-info"
    assert f"{dist_info}/licenses/LICENSE" in names
    metadata = wheel.read(f"{dist_info}/METADATA").decode()
    assert "License-File: LICENSE" in metadata
    assert re.search(r"^License(-Expression)?: BSD-3-Clause$", metadata, re.MULTILINE)


def test_a_wheel_without_the_built_extension_says_so(sources: Path, tmp_path: Path) -> None:
    shutil.rmtree(sources / "codeact_kernel" / "labextension", ignore_errors=True)
    wheel, output = build_wheel(sources, tmp_path / "wheel")
    (warning,) = warnings_in(output)
    assert "built without its JupyterLab extension" in warning
    assert "scripts/build_labextension.sh" in warning
    assert not [name for name in wheel.namelist() if "labextension" in name]


def test_the_license_is_bsd_3_clause() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith(
        "BSD 3-Clause License\n\nCopyright (c) 2026, the codeact-kernel developers"
    )
    assert "Neither the name of the copyright holder" in text


# --- the set-up scripts redo only what changed -----------------------------------------


def fake_tool(path: Path, log: Path, script: str = "") -> None:
    """An executable at `path` that logs its name and arguments (their first line) to `log`,
    then runs `script`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'#!/bin/sh\necho "{path.name} $*" | head -n 1 >> "{log}"\n{script}\n')
    path.chmod(0o755)


def calls(log: Path) -> list[str]:
    """The logged calls since the last look."""
    lines = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return lines


@pytest.fixture
def extension_checkout(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    """The extension's sources and build script in a scratch checkout, npm, npx and the
    Python builder faked (they log their calls; the builder writes package.json): the
    checkout, the calls' log, and the environment to run the script with."""
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "build_labextension.sh", checkout / "scripts")
    source = ROOT / "labextension"
    target = checkout / "labextension"
    for name in ("src", "style"):
        shutil.copytree(source / name, target / name)
    for name in ("package.json", "package-lock.json", "tsconfig.json", "install.json"):
        shutil.copy(source / name, target / name)
    log = tmp_path / "calls.log"
    fakes = tmp_path / "bin"
    fake_tool(fakes / "npm", log, '[ "$1" = ci ] && mkdir -p node_modules\nexit 0')
    fake_tool(fakes / "npx", log, 'exit "$(cat ../npx-status 2>/dev/null || echo 0)"')
    # Answers -c (versions, `import jupyter_builder`) for real; fakes the -m build.
    fake_tool(
        fakes / "python",
        log,
        'if [ "$1" = -m ]; then mkdir -p ../codeact_kernel/labextension && '
        "echo '{}' > ../codeact_kernel/labextension/package.json; exit 0; fi\n"
        f'exec "{sys.executable}" "$@"',
    )
    env = {**os.environ, "PATH": f"{fakes}{os.pathsep}{os.environ['PATH']}"}
    env["PYTHON"] = str(fakes / "python")
    return checkout, log, env


def build(checkout: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(checkout / "scripts" / "build_labextension.sh"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def built(log: Path) -> list[str]:
    """The build steps among the logged calls (not the version queries)."""
    return [call for call in calls(log) if not call.startswith("python -c")]


def test_the_extension_is_built_again_only_when_its_inputs_change(
    extension_checkout: tuple[Path, Path, dict[str, str]],
) -> None:
    checkout, log, env = extension_checkout
    steps = ["npx tsc -b", "python -m jupyter_builder.main build ."]
    if subprocess.run([sys.executable, "-c", "import jupyter_builder"]).returncode:
        steps[1] = "python -m jupyter labextension build ."
    npm_ci = "npm ci --no-audit --no-fund --loglevel=error"

    assert build(checkout, env).returncode == 0
    assert built(log) == [npm_ci, *steps]
    done = build(checkout, env)
    assert done.returncode == 0
    assert "up to date" in done.stdout
    assert built(log) == []

    source = checkout / "labextension" / "src" / "index.ts"
    source.write_text(source.read_text() + "\n// changed\n")
    assert build(checkout, env).returncode == 0
    assert built(log) == steps, "a source change needs no npm ci"

    lock = checkout / "labextension" / "package-lock.json"
    lock.write_text(lock.read_text().replace('"lockfileVersion"', '"lockfileVersion" ', 1))
    assert build(checkout, env).returncode == 0
    assert built(log) == [npm_ci, *steps]

    shutil.rmtree(checkout / "codeact_kernel" / "labextension")
    assert build(checkout, env).returncode == 0
    assert built(log) == steps, "a missing build is built"

    assert build(checkout, env, "--force").returncode == 0
    assert built(log) == [npm_ci, *steps]

    assert build(checkout, env, "--test").returncode == 0
    assert built(log) == ["npm test --silent"]


def test_a_failed_build_is_not_taken_for_a_current_one(
    extension_checkout: tuple[Path, Path, dict[str, str]],
) -> None:
    checkout, log, env = extension_checkout
    assert build(checkout, env).returncode == 0
    source = checkout / "labextension" / "src" / "index.ts"
    original = source.read_text()
    source.write_text(original + "\nthis does not compile\n")
    (checkout / "npx-status").write_text("1")
    assert build(checkout, env).returncode != 0
    source.write_text(original)
    (checkout / "npx-status").write_text("0")
    calls(log)
    assert build(checkout, env).returncode == 0
    assert "npx tsc -b" in built(log), "back to the sources of the last good build: built again"


def test_setup_env_installs_again_only_when_the_packaging_changed(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "setup-env", checkout / "scripts")
    for name in ("setup.cfg", "setup.py", "pyproject.toml", "codeact_kernel/version.py"):
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, checkout / name)
    log = tmp_path / "calls.log"
    # The venv's python: pip installs (marking the package installed) or fails as told;
    # the check for the installed package answers from that mark.
    fake_tool(
        checkout / ".venv" / "bin" / "python",
        log,
        'case "$*" in\n'
        '  "-m pip install"*) [ -f ../pip-fails ] && exit 1; touch ../installed; exit 0 ;;\n'
        '  "-I -c"*) [ -f ../installed ] ;;\n'
        "esac",
    )

    def setup_env(extras: str) -> int:
        done = subprocess.run(
            [str(checkout / "scripts" / "setup-env"), extras], capture_output=True, timeout=60
        )
        return done.returncode

    def installs() -> list[str]:
        return [call for call in calls(log) if "pip install" in call]

    install_lab = ["python -m pip install --quiet -e .[lab]"]
    assert setup_env("lab") == 0
    assert installs() == install_lab
    assert setup_env("lab") == 0
    assert installs() == []
    assert setup_env("test") == 0
    assert installs() == ["python -m pip install --quiet -e .[test]"], "other extras"
    assert setup_env("lab") == 0
    assert installs() == []

    setup_cfg = checkout / "setup.cfg"
    setup_cfg.write_text(setup_cfg.read_text() + "\n")
    assert setup_env("lab") == 0
    assert installs() == install_lab, "the packaging changed"

    (tmp_path / "installed").unlink()
    assert setup_env("lab") == 0
    assert installs() == install_lab, "uninstalled since"

    setup_cfg.write_text(setup_cfg.read_text() + "\n")
    (tmp_path / "pip-fails").touch()
    assert setup_env("lab") != 0
    (tmp_path / "pip-fails").unlink()
    calls(log)
    assert setup_env("lab") == 0
    assert installs() == install_lab, "a failed install is tried again"


# --- the suite ------------------------------------------------------------------------


def test_codeact_skip_browser_skips_every_browser_test() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-n",
            "0",
            "-rs",
            "-p",
            "no:cacheprovider",
            "tests/browser",
        ],
        cwd=ROOT,
        env={**os.environ, "CODEACT_SKIP_BROWSER": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    summary = done.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ skipped in .*", summary), summary
    assert "CODEACT_SKIP_BROWSER=1: browser tests skipped" in done.stdout


# Tests that fail when they read the README's config from the user's profile (a model is
# configured, approval asks), or that write into the profile or leave temp files behind
# when not isolated (7 tests).
_TOUCHING_THE_PROFILE = [
    "tests/test_hosts.py::test_no_model_gives_a_clear_error",
    "tests/test_nbclient.py::test_a_notebook_with_a_natural_language_cell_runs_headlessly",
    "tests/test_magics.py::test_load_ext_imports_nothing_heavy",
    "tests/test_magics.py::test_a_request_streams_and_acts_in_the_namespace",
    "tests/test_cli_main.py::test_the_installed_kernelspec_starts_the_kernel_through_jupyter_client",
    "tests/test_conformance.py::TestCodeAct::test_execute_stdout",
]


def readme_config() -> str:
    """The README's config file example."""
    readme = (ROOT / "README.md").read_text()
    (example,) = [
        b for b in re.findall(r"```python\n(.*?)```", readme, re.DOTALL) if "c.CodeAct" in b
    ]
    return example


def test_the_suite_ignores_the_users_profile_and_leaves_nothing_behind(tmp_path: Path) -> None:
    home = tmp_path / "home"
    profile = home / ".ipython" / "profile_default"
    (profile / "startup").mkdir(parents=True)
    config = readme_config()
    assert 'c.CodeAct.approval = "ask"' in config
    (profile / "ipython_kernel_config.py").write_text(config)
    (profile / "ipython_config.py").write_text(config)
    (profile / "startup" / "00-user.py").write_text("print('from the user startup file')\n")
    before = sorted(home.rglob("*"))

    # The user's environment: without this session's isolation, with that HOME and an
    # empty temp dir.
    isolation = ("IPYTHONDIR", "JUPYTER_", "XDG_", "MPLCONFIGDIR", "npm_config_", "PYTEST_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(isolation)}
    env["HOME"] = str(home)
    temp = tmp_path / "tmp"
    temp.mkdir()
    env["TMPDIR"] = str(temp)
    done = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider",
            f"--basetemp={tmp_path / 'basetemp'}", *_TOUCHING_THE_PROFILE,
        ],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    assert re.search(r"\b7 passed\b", done.stdout), done.stdout[-2000:]
    assert sorted(home.rglob("*")) == before, "the tests wrote into HOME"
    assert list(temp.iterdir()) == [], "the tests left temp files behind"
