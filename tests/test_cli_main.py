"""`python -m codeact_kernel`, run as a user and as Jupyter run it.

Help and version are this package's; a mistyped command, a stray word or an option
ipykernel does not know is refused (status 2) before a kernel starts, while the options
Jupyter and ipykernel pass are not; the kernelspec that `install` writes starts a kernel
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


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--frobnicate"], "unknown option '--frobnicate'"),
        # traitlets would take it as configuration and start a kernel that waits.
        (["--frobnicate=1"], "unknown option '--frobnicate'"),
        (["--install"], "unknown option '--install' (did you mean 'install'?)"),
        (["--degub"], "unknown option '--degub' (did you mean '--debug'?)"),
        (["-f", "{runtime}/kernel-x.json", "--transprt=ipc"], "(did you mean '--transport'?)"),
        (["-x"], "unknown option '-x'"),
        (["-f"], "option '-f' needs a value"),
        (["--ip", "--debug"], "option '--ip' needs a value"),
    ],
)
def test_an_unknown_option_is_refused_in_our_words(
    tmp_path: Path, args: list[str], message: str
) -> None:
    runtime = tmp_path / "runtime"
    done = run(*(arg.format(runtime=runtime) for arg in args), runtime=runtime)
    assert done.returncode == 2
    assert message in done.stderr
    assert "usage: python -m codeact_kernel install" in done.stderr, "the valid commands"
    assert "__main__.py" not in done.stderr, "not ipykernel's 30-line usage"
    assert not runtime.exists() or not any(runtime.iterdir()), "a kernel started"


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


@pytest.mark.parametrize(
    "args",
    [
        ["-f", "kernel.json"],
        ["--f=kernel.json"],
        ["-f", "kernel.json", "--debug", "--log-level", "DEBUG"],
        ["--IPKernelApp.trio_loop=False", "--Session.key", "b''"],
        ["--matplotlib"],  # a flag and an alias at once
        ["--matplotlib=inline"],
        ["-f", "kernel.json", "--", "--anything"],
        # VS Code's launch line (the ports and key as options, the file last).
        [
            "--ip=127.0.0.1",
            "--stdin=9003",
            "--control=9001",
            "--hb=9000",
            '--Session.signature_scheme="hmac-sha256"',
            '--Session.key=b"k"',
            "--shell=9002",
            '--transport="tcp"',
            "--iopub=9004",
            "--f=/tmp/kernel.json",
        ],
    ],
)
def test_the_options_jupyter_and_ipykernel_pass_are_accepted(args: list[str]) -> None:
    from ipykernel.kernelapp import IPKernelApp

    from codeact_kernel.__main__ import _option_names, _option_problem

    app = IPKernelApp()
    assert _option_problem(args, _option_names(app.aliases), _option_names(app.flags)) == ""


def test_install_errors_are_one_line_not_a_traceback(tmp_path: Path) -> None:
    bad_name = run(
        "install", "--prefix", str(tmp_path / "p"), "--name", "my kernel!", runtime=tmp_path
    )
    assert bad_name.returncode == 2
    assert "install: error: Invalid kernel name 'my kernel!'" in bad_name.stderr
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    not_a_dir = run("install", "--prefix", str(blocker), runtime=tmp_path)
    assert not_a_dir.returncode == 1
    assert f"install: cannot install into {blocker}" in not_a_dir.stderr
    for done in (bad_name, not_a_dir):
        assert "Traceback" not in done.stderr and done.stdout == ""


def test_install_without_rights_says_what_to_do_instead(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # As a user who may not write the system-wide kernelspec directory (the default).
    import codeact_kernel.install as install

    def refused(**_: object) -> str:
        raise PermissionError(13, "Permission denied", "/usr/local/share/jupyter/kernels")

    monkeypatch.setattr(install, "install", refused)
    assert install.main([]) == 1
    error = capsys.readouterr().err
    assert error == (
        "python -m codeact_kernel install: cannot install into /usr/local/share/jupyter/kernels: "
        "Permission denied. Use --user (for you) or --sys-prefix (for this environment).\n"
    )
