"""`python -m codeact_kernel`, run as a user and as Jupyter run it.

Help and version are this package's; a mistyped command or a stray word is refused
(status 2) before a kernel starts; the kernelspec that `install` writes starts a kernel
through jupyter_client; `install` says when JupyterLab will not find the extension.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

from codeact_kernel.install import LABEXTENSION, labextension_installed
from codeact_kernel.version import __version__

PACKAGE = Path(__file__).resolve().parent.parent / "codeact_kernel"


def run(*args: str, runtime: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m codeact_kernel ARGS` with its own runtime dir (where connection files go)."""
    return subprocess.run(
        [sys.executable, "-m", "codeact_kernel", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "JUPYTER_RUNTIME_DIR": str(runtime), **env},
    )


def test_help_says_what_it_is_how_to_install_and_configure(tmp_path: Path) -> None:
    for flag in ("--help", "-h", "help"):
        done = run(flag, runtime=tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"codeact-kernel {__version__}: the CodeAct (Python 3)")
        for needed in (
            "install [--user | --sys-prefix | --prefix PREFIX]",
            "-f CONNECTION_FILE",
            "CODEACT_MODEL",
            "CODEACT_BASE_URL",
            "CODEACT_API_KEY",
            "c.CodeAct.",
            "README",
        ):
            assert needed in done.stdout, needed
        assert "IPython: an enhanced interactive Python shell" not in done.stdout
    assert not any(tmp_path.iterdir()), "help started a kernel"


def test_help_names_only_variables_the_package_reads(tmp_path: Path) -> None:
    variable = r"\b(?:CODEACT|OPENAI|ANTHROPIC|OLLAMA)_[A-Z_]+\b"
    named = set(re.findall(variable, run("--help", runtime=tmp_path).stdout))
    assert named
    source = "".join(
        path.read_text() for path in PACKAGE.rglob("*.py") if path.name != "__main__.py"
    )
    assert {name for name in named if f'"{name}"' not in source} == set()


def test_version_is_this_packages(tmp_path: Path) -> None:
    for flag in ("--version", "-V"):
        done = run(flag, runtime=tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split()[:2] == ["codeact-kernel", __version__]
        assert f"ipykernel {metadata.version('ipykernel')}" in done.stdout
        assert f"IPython {metadata.version('ipython')}" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["instal"], "unknown command 'instal' (did you mean 'install'?)"),
        (["start"], "unknown command 'start'"),
        (["-f", "{runtime}/kernel-x.json", "extra"], "unexpected argument 'extra'"),
        (["--debug", "instal"], "unexpected argument 'instal'"),
    ],
)
def test_a_stray_word_is_refused_before_any_kernel_starts(
    tmp_path: Path, args: list[str], message: str
) -> None:
    runtime = tmp_path / "runtime"
    done = run(*(arg.format(runtime=runtime) for arg in args), runtime=runtime)
    assert done.returncode == 2
    assert done.stdout == ""
    assert f"python -m codeact_kernel: {message}" in done.stderr
    assert "usage: python -m codeact_kernel install" in done.stderr
    assert not runtime.exists() or not any(runtime.iterdir()), "a kernel started"


def test_an_unknown_option_is_refused(tmp_path: Path) -> None:
    done = run("--frobnicate", runtime=tmp_path)
    assert done.returncode == 2
    assert "--frobnicate" in done.stderr
    assert "python -m codeact_kernel --help" in done.stderr


def test_install_arguments_are_checked(tmp_path: Path) -> None:
    done = run("install", "--help", runtime=tmp_path)
    assert done.returncode == 0
    assert "--sys-prefix" in done.stdout
    done = run("install", "--usr", runtime=tmp_path)
    assert done.returncode == 2
    assert "unrecognized arguments: --usr" in done.stderr


def test_the_installed_kernelspec_starts_the_kernel_through_jupyter_client(
    tmp_path: Path,
) -> None:
    prefix = tmp_path / "prefix"
    done = run("install", "--prefix", str(prefix), runtime=tmp_path / "runtime")
    assert done.returncode == 0, done.stderr
    kernels = prefix / "share" / "jupyter" / "kernels"
    spec = json.loads((kernels / "codeact" / "kernel.json").read_text())
    assert spec["argv"] == [sys.executable, "-m", "codeact_kernel", "-f", "{connection_file}"]

    specs = KernelSpecManager(kernel_dirs=[str(kernels)])
    manager = KernelManager(kernel_name="codeact", kernel_spec_manager=specs)
    manager.start_kernel(env=dict(os.environ))
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        info = client.kernel_info(reply=True, timeout=30)["content"]
        assert info["implementation"] == "codeact_kernel"
        assert info["implementation_version"] == __version__
        reply = client.execute_interactive("print(6 * 7)", timeout=30, output_hook=lambda _: None)
        assert reply["content"]["status"] == "ok"
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def test_install_notes_when_jupyterlab_will_not_find_the_extension(tmp_path: Path) -> None:
    # This interpreter with sys.prefix elsewhere: an environment without the extension,
    # whatever `scripts/lab` linked into .venv.
    code = (
        "import sys; sys.prefix = sys.exec_prefix = '/nonexistent'; "
        "from codeact_kernel.install import main; main(sys.argv[1:])"
    )
    runtime = tmp_path / "runtime"
    without = subprocess.run(
        [sys.executable, "-c", code, "--prefix", str(tmp_path / "a")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "JUPYTER_RUNTIME_DIR": str(runtime)},
    )
    assert without.returncode == 0, without.stderr
    assert "Installed kernelspec codeact" in without.stdout
    assert f"the JupyterLab extension {LABEXTENSION} is not installed" in without.stderr
    assert "scripts/build_labextension.sh" in without.stderr

    extensions = tmp_path / "data" / "labextensions"
    (extensions / LABEXTENSION).mkdir(parents=True)
    (extensions / LABEXTENSION / "package.json").write_text('{"name": "codeact-kernel-lab"}')
    with_it = run(
        "install",
        "--prefix",
        str(tmp_path / "b"),
        runtime=runtime,
        JUPYTER_PATH=str(extensions.parent),
    )
    assert with_it.returncode == 0, with_it.stderr
    assert with_it.stderr == ""


def test_labextension_installed_looks_for_the_built_package(tmp_path: Path) -> None:
    assert not labextension_installed([str(tmp_path)])
    (tmp_path / LABEXTENSION).mkdir()
    assert not labextension_installed([str(tmp_path)]), "an empty directory is no extension"
    (tmp_path / LABEXTENSION / "package.json").write_text("{}")
    assert labextension_installed([str(tmp_path / "missing"), str(tmp_path)])
