"""CodeAct for Jupyter: natural-language cells run a self-debugging code-action loop."""

from __future__ import annotations

from typing import Any

from .version import __version__

__all__ = ["__version__", "load_ipython_extension", "unload_ipython_extension"]


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext codeact_kernel`: registers `%%codeact` and `%codeact`.

    The import is deferred so that loading the extension stays cheap.
    """
    from .magics import register_magics

    register_magics(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """`%unload_ext codeact_kernel`: removes the magics and stops their thread."""
    from .magics import unregister_magics

    unregister_magics(ipython)
