"""CodeAct for Jupyter: natural-language cells run a self-debugging code-action loop."""

from __future__ import annotations

from typing import Any

from .version import __version__

__all__ = [
    "McpServerError",
    "McpToolError",
    "__version__",
    "load_ipython_extension",
    "tool",
    "unload_ipython_extension",
]


def __getattr__(name: str) -> Any:
    """`tool` and the MCP errors, imported when asked for: `%load_ext` stays cheap."""
    if name == "tool":
        from .tools import tool

        return tool
    if name in ("McpToolError", "McpServerError"):
        from . import errors

        return getattr(errors, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
