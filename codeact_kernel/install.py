"""`python -m codeact_kernel install`: install the `codeact` kernelspec, like ipykernel's.

It also says when JupyterLab will not find the extension (`pip install` of a source tree
in which it was not built installs the kernel alone), since that is the step users take
right after installing. A kernelspec it cannot write (no rights for the system-wide
default, a bad `--prefix` or `--name`) is one line on stderr, not a traceback.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import ipykernel
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_core.paths import jupyter_path

KERNEL_NAME = "codeact"
DISPLAY_NAME = "CodeAct (Python 3)"
LABEXTENSION = "codeact-kernel-lab"

NO_LABEXTENSION = f"""\
Note: the JupyterLab extension {LABEXTENSION} is not installed in this environment
(`jupyter labextension list` does not show it), so JupyterLab shows each code action inline
in the prompt cell instead of as a cell of its own. To add it, in the codeact-kernel sources:
scripts/build_labextension.sh (needs Node >= 18), then `pip install .` again."""


def kernel_json(python: str = sys.executable) -> dict[str, object]:
    return {
        "argv": [python, "-m", "codeact_kernel", "-f", "{connection_file}"],
        "display_name": DISPLAY_NAME,
        "language": "python",
        "interrupt_mode": "signal",
        "metadata": {"debugger": True},
    }


def install(*, user: bool = False, prefix: str | None = None, name: str = KERNEL_NAME) -> str:
    """Install the kernelspec and return the directory it went to."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "kernel.json").write_text(json.dumps(kernel_json(), indent=2))
        # The Python logos that ipykernel ships, so the launcher shows a familiar icon.
        for logo in Path(ipykernel.__file__).parent.joinpath("resources").glob("logo-*.png"):
            shutil.copy(logo, tmp)
        return str(
            KernelSpecManager().install_kernel_spec(tmp, kernel_name=name, user=user, prefix=prefix)
        )


def labextension_installed(paths: list[str] | None = None) -> bool:
    """Whether JupyterLab finds the prebuilt extension in `paths` (default: where it looks)."""
    paths = jupyter_path("labextensions") if paths is None else paths
    return any((Path(path) / LABEXTENSION / "package.json").is_file() for path in paths)


def main(argv: list[str] | None = None) -> int:
    """Install as the command line says; the exit status (argparse exits 2 itself)."""
    parser = argparse.ArgumentParser(
        prog="python -m codeact_kernel install",
        description=f"Install the {DISPLAY_NAME} kernelspec ({KERNEL_NAME!r}).",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="install for the current user")
    where.add_argument(
        "--sys-prefix", action="store_true", help=f"install into {sys.prefix} (venv/conda)"
    )
    where.add_argument("--prefix", help="install into this prefix")
    parser.add_argument("--name", default=KERNEL_NAME, help="kernelspec name")
    args = parser.parse_args(argv)
    prefix = sys.prefix if args.sys_prefix else args.prefix
    try:
        path = install(user=args.user, prefix=prefix, name=args.name)
    except ValueError as error:  # jupyter_client's word on a kernelspec name
        parser.error(str(error).replace("  ", " "))
    except OSError as error:
        # Without --user or a prefix the kernelspec goes system-wide, which needs rights
        # a user rarely has: one line, and what to do instead.
        target = error.filename or prefix or "the system-wide Jupyter directory"
        advice = ""
        if isinstance(error, PermissionError):
            advice = " Use --user (for you) or --sys-prefix (for this environment)."
        print(
            f"{parser.prog}: cannot install into {target}: {error.strerror or error}.{advice}",
            file=sys.stderr,
        )
        return 1
    print(f"Installed kernelspec {args.name} in {path}")
    if not labextension_installed():
        print(NO_LABEXTENSION, file=sys.stderr)
    return 0
