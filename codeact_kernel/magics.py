"""`%%codeact` and `%codeact`: the CodeAct agent as IPython magics, in any kernel or terminal.

`%load_ext codeact_kernel` registers them with a session of their own; the `codeact`
kernel registers them with its session, so `%codeact` manages the same conversation
there (its `%%codeact` cells never reach IPython: the kernel routes them itself, and
one written by the model inside an action is refused like here). Inside an action the
`%codeact` commands are refused too: the settings and the conversation are the user's,
and a model that could run them would switch off its own review (`approval auto`) or
forget the request it is answering (`reset`). So is unloading or reloading the
extension, whose session runs the very request the action belongs to.

`%reload_ext codeact_kernel` keeps the session (the conversation, the settings made
with `%codeact`), as reloading any extension keeps the user's state; `%unload_ext`
closes it, and a later `%load_ext` starts a new one.

`%load_ext` imports this module, so it imports nothing heavy: the session is cheap to
make, and the agent, providers and httpx load when a magic is first used. How a request
runs from inside a cell is in magic_runner.py; the `%codeact` commands in commands.py.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from IPython.core.error import UsageError
from IPython.core.extensions import ExtensionManager
from IPython.core.magic import no_var_expand

from .commands import HELP, Commands, cell_options, shown_briefly
from .errors import CodeActError
from .executor import in_action
from .session import Session, interrupted_message
from .settings import CodeAct

if TYPE_CHECKING:
    from types import FrameType

    from IPython.core.interactiveshell import InteractiveShell

NESTED = (
    "%%codeact cannot run inside an action of another CodeAct request: the request "
    "already running is the agent. Write the code itself instead."
)
COMMAND_IN_ACTION = (
    "%codeact cannot run inside a code action: its settings and conversation are the "
    "user's to change. Leave them as they are; ask the user if one should change."
)
EXTENSION_IN_ACTION = (
    "codeact_kernel cannot be unloaded or reloaded inside a code action, which its "
    "request is running; leave it loaded, and ask the user to reload it if needed."
)

# An interrupted request that is slow to unwind (a server that will not hang up)
# keeps the session busy; the next request waits this long for it.
STILL_STOPPING_SECONDS = 5.0
STILL_STOPPING = "The previous CodeAct request is still stopping; run this cell again in a moment."

# Per shell. Shells live as long as the process; `%unload_ext` removes the entry.
_registered: dict[InteractiveShell, CodeActMagics] = {}
# The sessions of magics being reloaded, between the unload and the load.
_reloading: dict[InteractiveShell, Session] = {}


def register_magics(
    shell: InteractiveShell, session: Session | None = None, *, pinned: bool = False
) -> None:
    """Register `%codeact`/`%%codeact` on `shell`, over `session` when given.

    Registering again (`%load_ext` in the `codeact` kernel) changes nothing; a given
    session replaces the magic's own. `pinned` magics (the `codeact` kernel's) stay
    through `%unload_ext`, so that `%codeact` always manages the kernel's session.
    """
    magics = _registered.get(shell)
    if magics is None:
        kept = _reloading.pop(shell, None)
        if kept is not None and session is None:
            # Settings from config files are read again, as a new session would.
            kept.configurable = CodeAct(parent=shell)
        elif kept is not None:
            kept.close()
            kept = None
        magics = _registered[shell] = CodeActMagics(shell, session, kept=kept)
        magics.pinned = pinned
        if pinned:
            # The extension is part of the `codeact` kernel: loaded, as IPython sees it,
            # so that `%unload_ext` reaches `unregister_magics` (refused in an action).
            extensions = shell.extension_manager
            if extensions is not None:
                extensions.loaded.add("codeact_kernel")
        shell.magics_manager.register_function(
            magics.codeact, magic_kind="line_cell", magic_name="codeact"
        )
    elif session is not None:
        magics.adopt(session)


def unregister_magics(shell: InteractiveShell) -> None:
    """Undo `register_magics` (`%unload_ext`): remove the magics, close their session,
    or keep it for the load that follows (`%reload_ext`)."""
    if in_action():
        # Closing the session would end the request that runs this action.
        raise UsageError(EXTENSION_IN_ACTION)
    magics = _registered.get(shell)
    if magics is None or magics.pinned:
        # The `codeact` kernel's own `%codeact` stays: it is part of the kernel.
        return
    del _registered[shell]
    manager = shell.magics_manager
    for kind in ("line", "cell"):
        manager.magics[kind].pop("codeact", None)
    if hasattr(manager.user_magics, "codeact"):
        delattr(manager.user_magics, "codeact")
    if magics.owns_session and _in_reload():
        _reloading[shell] = magics.session
    else:
        magics.close()


def _in_reload() -> bool:
    """Whether IPython is reloading extensions (`%reload_ext`): it unloads, then loads."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_code is _RELOAD_CODE:
            return True
        frame = frame.f_back
    return False


_RELOAD_CODE = ExtensionManager.reload_extension.__code__


class CodeActMagics:
    """The magics of one shell, over one session (their own, or the kernel's)."""

    def __init__(
        self,
        shell: InteractiveShell,
        session: Session | None = None,
        *,
        kept: Session | None = None,
    ) -> None:
        """`kept` is the magics' own session from before a reload."""
        self.shell = shell
        self.pinned = False
        self.owns_session = session is None
        if session is None:
            session = kept or Session(shell)
            session.watch_cells()
        self.session = session
        self.commands = Commands(session, routes_automagic=not self.owns_session)

    def adopt(self, session: Session) -> None:
        if self.owns_session:
            self.session.close()
        self.session = session
        self.owns_session = False
        self.commands = Commands(session, routes_automagic=True)

    def close(self) -> None:
        if self.owns_session:
            self.session.close()

    # `${VAR}` in `%codeact mcp add` is for the server's environment, not IPython's `$x`.
    @no_var_expand
    def codeact(self, line: str, cell: str | None = None) -> None:
        if cell is None:
            if in_action():
                raise UsageError(COMMAND_IN_ACTION)
            self.commands.run(line)
        else:
            self._request(line, cell)

    codeact.__doc__ = HELP

    def _request(self, line: str, cell: str) -> None:
        options = cell_options(line, cell)
        if in_action():
            raise UsageError(NESTED)
        if not self.session.wait_idle(STILL_STOPPING_SECONDS):
            raise UsageError(STILL_STOPPING)
        from .magic_runner import answer

        requests = self.session.requests
        try:
            outcome = answer(self.shell, self.session, cell.strip("\n"), options)
        except KeyboardInterrupt:
            message = interrupted_message(options, started=self.session.requests > requests)
            raise shown_briefly(self.shell, KeyboardInterrupt(message)) from None
        except CodeActError as error:
            raise shown_briefly(self.shell, error) from None
        if outcome.error is not None:
            raise shown_briefly(self.shell, outcome.error) from None
