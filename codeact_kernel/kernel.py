"""The `codeact` kernel: IPython for code cells, the CodeAct agent for natural language.

The kernel only routes. Code goes to ipykernel unchanged; a natural-language cell
(routing.py) becomes a request to the agent, whose actions run in this same shell.
The reply keeps ipykernel's shape, so Run All, nbclient and papermill behave as usual:
done is `ok`; budgets, provider and configuration errors and interrupts are `error`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ipykernel.ipkernel import IPythonKernel

from . import __version__
from .errors import CodeActError
from .labcomm import LabBridge, LabFrontend
from .magics import register_magics
from .options import USAGE, parse_cell_options
from .routing import Route, route_cell
from .settings import CodeAct, Settings

if TYPE_CHECKING:
    from .frontend import Frontend
    from .interrupts import SigintRouter
    from .session import Session

REPLAYED = "[Answered earlier in this notebook; its code cells were re-run without the model.]"
INTERRUPTED = "The request was interrupted; what happened so far is kept in the conversation."


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
        self._session: Session | None = None
        self._cells_before_session: list[str] = []
        # Bare words belong to the model, not to magics (DESIGN.md §4).
        # Read from the config only: a bad setting elsewhere must not stop the kernel
        # from starting; the first request reports it.
        self.shell.automagic = self.config_section.automagic
        register_magics(self.shell, lambda: self.codeact)
        self.lab = LabBridge(self)

    @property
    def codeact(self) -> Session:
        """The CodeAct session, made on first use: the agent's modules and httpx load
        with the first request, which keeps kernel start close to ipykernel's."""
        if self._session is None:
            from .session import Session

            assert self.shell is not None
            self._session = Session(self.shell, self.config_section)
            for cell in self._cells_before_session:
                self._session.record_user_cell(cell)
            self._cells_before_session.clear()
        return self._session

    def _record_user_cell(self, code: str) -> None:
        if self._session is None:
            self._cells_before_session.append(code)
        else:
            self._session.record_user_cell(code)

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
            if not silent and code.strip():
                self._record_user_cell(code)
            return reply
        reply = await self._answer(
            route.text, route.options, code, silent, store_history, allow_stdin, cell_id
        )
        if reply["status"] == "ok":
            reply["user_expressions"] = self.shell.user_expressions(user_expressions or {})
        return reply

    def _route(self, code: str) -> Route:
        """Code or request? With automagic on, this shell's own magics count too."""
        assert self.shell is not None
        return route_cell(
            code,
            automagic=bool(self.shell.automagic),
            line_magics=self.shell.magics_manager.magics["line"],
        )

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
        """Run a natural-language cell through the agent and build the execute reply."""
        shell = self.shell
        assert shell is not None
        count = shell.execution_count
        if store_history and not silent:
            # The prompt takes this cell's execution count; its actions get the next ones.
            shell.history_manager.store_inputs(count, raw, raw)
            shell.execution_count += 1
        try:
            options = parse_cell_options(options_line)
            settings = self.codeact.settings(**options.overrides)
            if not request.strip():
                raise _empty_request()
        except CodeActError as error:
            return self._error_reply(error, count)

        from .executor import ShellExecutor
        from .interrupts import SigintRouter

        loop = asyncio.get_running_loop()
        self._forward_input(allow_stdin)
        try:
            with SigintRouter(loop) as router:
                frontend = self._frontend(settings, router, allow_stdin, cell_id)
                if self._replayed(frontend, raw, request):
                    return self._ok_reply(count)
                executor = ShellExecutor(
                    shell,
                    observation_chars=settings.observation_chars,
                    step_timeout=settings.step_timeout,
                    router=router,
                )
                task = asyncio.ensure_future(
                    self.codeact.run(
                        request,
                        settings=settings,
                        frontend=frontend,
                        executor=executor,
                        remember=options.history,
                    )
                )
                router.task = task
                if router.interrupted:
                    task.cancel()
                outcome = await task
        except (asyncio.CancelledError, KeyboardInterrupt):
            return self._interrupt_reply(count)
        except CodeActError as error:
            return self._error_reply(error, count)
        except Exception as error:
            # A bug of ours must not cost the user their kernel or the reply.
            shell.showtraceback()
            return self._error_reply(error, count, show=False)
        finally:
            self._restore_input()
        if outcome.error is not None:
            return self._error_reply(outcome.error, count)
        return self._ok_reply(count)

    def _frontend(
        self, settings: Settings, router: SigintRouter, allow_stdin: bool, cell_id: str | None
    ) -> Frontend:
        """The lab extension's frontend when the client that ran the cell has it, else inline."""
        from .render_inline import InlineFrontend

        def ask(prompt: str) -> str:
            with router.blocking():
                return str(self.raw_input(prompt))

        asker = ask if allow_stdin else None
        lab = self.lab.frontend(
            cell_id=cell_id, parent=self.get_parent("shell"), model=settings.model, ask=asker
        )
        return lab if lab is not None else InlineFrontend(settings.model, ask=asker)

    def _replayed(self, frontend: Frontend, raw: str, request: str) -> bool:
        """Run All after a restart: the extension re-runs the generated cells, not the model.

        The request is remembered, so follow-ups know it; its actions reach the model as
        the cells the user ran, since that is what re-running them is.
        """
        if not isinstance(frontend, LabFrontend) or frontend.replay(raw) is None:
            return False
        from .events import Turn

        self.codeact.turns.append(Turn(request=request, final=REPLAYED))
        return True

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

    def _interrupt_reply(self, count: int) -> dict[str, Any]:
        return self._error_reply(KeyboardInterrupt(INTERRUPTED), count)

    def _show_error(self, etype: type, evalue: BaseException, stb: list[str]) -> None:
        assert self.shell is not None
        self.shell._showtraceback(etype, evalue, stb)


def _empty_request() -> CodeActError:
    return CodeActError(f"The %%codeact cell has no request below its first line.\n{USAGE}")
