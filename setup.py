"""Everything is declared in setup.cfg; this only warns when a wheel is built without the
JupyterLab extension, which pip would otherwise install silently without it."""

from __future__ import annotations

import warnings
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

EXTENSION = Path(__file__).resolve().parent / "codeact_kernel" / "labextension"


class BuildPy(build_py):
    def run(self) -> None:
        # Editable installs never carry data files (scripts/build_labextension.sh --develop).
        if not self.editable_mode and not (EXTENSION / "package.json").exists():
            warnings.warn(
                "codeact-kernel is built without its JupyterLab extension "
                "(codeact_kernel/labextension/ is missing): in JupyterLab, code actions will "
                "show inline in the prompt cell instead of as cells. To include it, run "
                "scripts/build_labextension.sh (needs Node >= 18) before building or installing.",
                stacklevel=1,
            )
        super().run()


setup(cmdclass={"build_py": BuildPy})
