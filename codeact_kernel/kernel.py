"""The `codeact` kernel: IPython for code cells, the CodeAct agent for natural language.

The kernel only routes. Code goes to ipykernel unchanged; a natural-language cell
(routing.py) becomes a request to the agent, whose actions run in this same shell.
The reply keeps ipykernel's shape, so Run All, nbclient and papermill behave as usual:
done is `ok`; budgets, provider and configuration errors and interrupts are `error`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ipykernel.ipkernel import IPythonKernel
from IPython.core.error import UsageError

from .commands import cell_options
from .errors import CodeActError
from .labcomm import LabBridge, LabFrontend
from .magics import register_magics
from .options import CellOptions
from .routing import Route, route_cell
from .session import Session, interrupted_message
from .settings import CodeAct, Settings
from .version import __version__

if TYPE_CHECKING:
    from .executor import Executor
    from .frontend import Frontend
    from .interrupts import RequestInterrupts


class CodeActKernel(IPythonKernel):
    implementation = "codeact_kernel"
    implementation_version = __version__
    banner = (
        "CodeAct (Python 3): IPython, plus natural-language cells that an LLM answers "
        "by running code in this namespace."
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        assert self.shell is not None
        self.config_section = CodeAct(parent=self)
        # Bare words belong to the model, not to magics (DESIGN.md §4).
        # Read from the config only: a bad setting elsewhere must not stop the kernel
        # from starting; the first request reports it.
        self.shell.automagic = self.config_section.automagic
        self.codeact = Session(self.shell, self.config_section)
        self.codeact.watch_cells()
        register_magics(self.shell, self.codeact, pinned=True)
        self.lab = LabBridge(self)
        self._finished_requests: deque[str] = deque(maxlen=32)
        self.shell.should_run_async = _answering_too_deep(self.shell.should_run_async)

    async def execute_request(self, stream: Any, ident: Any, parent: Any) -> None:
        try:
            await super().execute_request(stream, ident, parent)
        finally:
            self._finished_requests.append(_msg_id(parent))

    def set_parent(self, ident: Any, parent: Any, channel: str = "shell") -> None:
        # ipykernel 7 handles a comm message that arrives while a cell runs at once and
        # then restores the parent it saw then. If the next cell started meanwhile (Run
        # All: the extension's replay offers arrive while the cells before run), that
        # restores the finished cell: the next cell's idle status would name it, and
        # JupyterLab would wait for the next cell forever. A finished request never
        # becomes the parent again.
        msg_id = _msg_id(parent)
        if channel == "shell" and msg_id and msg_id in self._finished_requests:
            return
        super().set_parent(ident, parent, channel)

    async def do_execute(
        self,
        code: str,
        silent: bool,
        store_history: bool = True,
        user_expressions: dict[str, Any] | None = None,
        allow_stdin: bool = False,
        *,
        cell_meta: dict[str, Any] | None = None,
        cell_id: str | None = None,
    ) -> dict[str, Any]:
        assert self.shell is not None
        route = self._route(code)
        if route.kind == "code":
            reply: dict[str, Any] = await super().do_execute(
                code,
                silent,
                store_history,
                user_expressions,
                allow_stdin,
                cell_meta=cell_meta,
                cell_id=cell_id,
            )
        else:
            reply = await self._answer(
                route.text, route.options, code, silent, store_history, allow_stdin, cell_id
            )
            if reply["status"] == "ok":
                reply["user_expressions"] = self.shell.user_expressions(user_expressions or {})
        return reply

    def _route(self, code: str) -> Route:
        """Code or request? With automagic on, this shell's own magics count too, and
        a name the user defined (`数据`) is code even where it reads like a request."""
        assert self.shell is not None
        return route_cell(
            code,
            automagic=bool(self.shell.automagic),
            line_magics=self.shell.magics_manager.magics["line"],
            namespace=self.shell.user_ns,
        )

    def do_shutdown(self, restart: bool) -> dict[str, Any]:  # type: ignore[override]
        """Stop what the session started (MCP servers, its background loop) with us."""
        self.codeact.close()
        return dict(super().do_shutdown(restart))

    def do_is_complete(self, code: str) -> dict[str, Any]:  # type: ignore[override]
        """A console asks whether to run the input: a request in prose is complete."""
        assert self.shell is not None
        if self._route(code).kind == "natural_language":
            return {"status": "complete"}
        return dict(super().do_is_complete(code))

    async def _answer(
        self,
        request: str,
        options_line: str,
        raw: str,
        silent: bool,
        store_history: bool,
        allow_stdin: bool,
        cell_id: str | None,
    ) -> dict[str, Any]:
        """Run a natural-language cell through the session and build the execute reply."""
        shell = self.shell
        assert shell is not None
        count = shell.execution_count
        if store_history and not silent:
            # The prompt takes this cell's execution count; its actions get the next ones.
            shell.history_manager.store_inputs(count, raw, raw)
            shell.execution_count += 1
        try:
            options = cell_options(options_line, request)
        except UsageError as error:
            return self._error_reply(error, count)

        from .interrupts import run_cancellable

        async def answer(interrupts: RequestInterrupts) -> bool:
            host = KernelHost(self, interrupts, allow_stdin=allow_stdin, cell_id=cell_id)
            if host.replayed(raw):
                self.codeact.remember_replay(request)
                return True
            try:
                outcome = await self.codeact.run(request, options, host)
            finally:
                # However the request ended (an interrupt included), the extension
                # learns that it did.
                host.end()
            if outcome.error is not None:
                raise outcome.error
            return True

        self._forward_input(allow_stdin)
        requests = self.codeact.requests
        try:
            await run_cancellable(answer)
        except (asyncio.CancelledError, KeyboardInterrupt):
            return self._interrupt_reply(count, options, started=self.codeact.requests > requests)
        except CodeActError as error:
            return self._error_reply(error, count)
        except Exception as error:
            # A bug of ours must not cost the user their kernel or the reply.
            shell.showtraceback()
            return self._error_reply(error, count, show=False)
        finally:
            self._restore_input()
        return self._ok_reply(count)

    def _ok_reply(self, count: int) -> dict[str, Any]:
        return {"status": "ok", "execution_count": count, "payload": [], "user_expressions": {}}

    def _error_reply(self, error: BaseException, count: int, show: bool = True) -> dict[str, Any]:
        ename, evalue = type(error).__name__, str(error)
        if show:
            self._show_error(type(error), error, [f"\x1b[0;31m{ename}\x1b[0m: {evalue}"])
        return {
            "status": "error",
            "execution_count": count,
            "ename": ename,
            "evalue": evalue,
            "traceback": [f"{ename}: {evalue}"],
            "payload": [],
            "user_expressions": {},
        }

    def _interrupt_reply(
        self, count: int, options: CellOptions, *, started: bool = True
    ) -> dict[str, Any]:
        message = interrupted_message(options, started=started)
        return self._error_reply(KeyboardInterrupt(message), count)

    def _show_error(self, etype: type, evalue: BaseException, stb: list[str]) -> None:
        assert self.shell is not None
        self.shell._showtraceback(etype, evalue, stb)


@dataclass
class KernelHost:
    """One natural-language cell of this kernel as a host: the Lab extension's frontend
    when the client that ran the cell has it, else inline displays; actions on the
    kernel's own loop; prompts through the kernel's stdin."""

    kernel: CodeActKernel
    interrupts: RequestInterrupts
    allow_stdin: bool
    cell_id: str | None
    lab: LabFrontend | None = field(default=None, init=False)

    def end(self) -> None:
        if self.lab is not None:
            self.lab.end()

    def _ask(self, prompt: str) -> str:
        with self.interrupts.blocking():
            return str(self.kernel.raw_input(prompt))

    def frontend(self, settings: Settings) -> Frontend:
        from .render_inline import InlineFrontend

        ask = self._ask if self.allow_stdin else None
        lab = self.kernel.lab.frontend(
            cell_id=self.cell_id,
            parent=self.kernel.get_parent("shell"),
            model=settings.model,
            ask=ask,
            approval=settings.approval,
        )
        self.lab = lab
        return lab if lab is not None else InlineFrontend(settings.model, ask=ask)

    def executor(self, settings: Settings) -> Executor:
        from .executor import ShellExecutor

        assert self.kernel.shell is not None
        # With the Lab extension a failed action's traceback is a real error output of
        # its generated cell; inline, it must not make papermill fail a request that
        # ended well, so it is shown as stderr text.
        parent = self.kernel.get_parent("shell")
        lab = bool(self.cell_id) and self.kernel.lab.link_for(parent) is not None
        return ShellExecutor(
            self.kernel.shell,
            observation_chars=settings.observation_chars,
            step_timeout=settings.step_timeout,
            watch=self.interrupts.action,
            hide=(settings.api_key,) if settings.api_key else (),
            errors_as_text=not lab,
        )

    def replayed(self, raw: str) -> bool:
        """Run All after a restart: the extension re-runs the generated cells instead
        of asking the model again."""
        if not self.allow_stdin:
            return False
        lab = self.kernel.lab.frontend(
            cell_id=self.cell_id, parent=self.kernel.get_parent("shell"), model="", ask=self._ask
        )
        return lab is not None and lab.replay(raw)


def _msg_id(message: Any) -> str:
    header = message.get("header") if isinstance(message, dict) else None
    return str(header.get("msg_id", "")) if isinstance(header, dict) else ""


def _answering_too_deep(should_run_async: Callable[..., bool]) -> Callable[..., bool]:
    """IPython's check whether a cell needs its loop lets a RecursionError out (a cell
    nested too deep for its parser), and ipykernel then never replies. Not async, then:
    running the cell raises the RecursionError as the cell's own error."""

    def checked(*args: Any, **kwargs: Any) -> bool:
        try:
            return should_run_async(*args, **kwargs)
        except RecursionError:
            return False

    return checked
