"""`%%codeact` and `%codeact` (filled in by the magics work; the kernel registers them)."""

from __future__ import annotations

from typing import Any


def register_magics(shell: Any, session: Any = None) -> None:
    """Register the CodeAct magics on `shell`, sharing `session` when given."""
