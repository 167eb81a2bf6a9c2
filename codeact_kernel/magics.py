"""`%%codeact` and `%codeact`: the CodeAct agent as IPython magics, in any kernel or terminal.

`%load_ext codeact_kernel` registers them with a session of their own; the `codeact`
kernel registers them with its session, so `%codeact` manages the same conversation
there (its `%%codeact` cells never reach IPython: the kernel routes them itself).

`%load_ext` imports this module, so it imports nothing heavy: the session, agent,
providers and httpx load when a magic is first used. How a request runs from inside
a cell (a background event loop, the main thread serving actions and displays) is
in magic_runner.py.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, TypeVar

from IPython.core.error import UsageError

from .errors import CodeActError, ConfigurationError
from .options import USAGE, parse_cell_options

if TYPE_CHECKING:
    from collections.abc import Callable

    from IPython.core.interactiveshell import ExecutionResult, InteractiveShell

    from .magic_runner import BackgroundLoop
    from .session import Session

    SessionSource = Session | Callable[[], Session] | None
    from .settings import Settings

E = TypeVar("E", bound=BaseException)

LINE_USAGE = """\
%codeact                       status: model, endpoint, tokens used so far
%codeact model PROVIDER:MODEL  use this model for the rest of the session
%codeact models [PROVIDER]     list the models the endpoint serves
%codeact reset                 forget the conversation (the namespace is untouched)
%codeact history               the conversation: requests, actions, observations
%codeact config                effective settings, and where each one came from
%codeact SETTING [VALUE]       show or set a setting for this session,
                               e.g. `%codeact approval ask`, `%codeact max_steps 5`
%codeact unset SETTING         drop a session setting
%codeact help                  this text"""

HELP = f"""Ask an LLM agent that answers by running Python code in this namespace.

{USAGE}
    The rest of the cell is the request. Options apply to this cell only;
    --no-history runs it as a fresh conversation that is not remembered.

{LINE_USAGE}

Settings come from `%codeact` and cell options, then CODEACT_* environment
variables, then `c.CodeAct.*` in IPython/Jupyter config files, then defaults."""

INTERRUPTED = "The request was interrupted; what happened so far is kept in the conversation."
NOT_REMEMBERED = "The request was interrupted (--no-history: it is not remembered)."

_ALIASES = {"format": "action_format", "steps": "max_steps", "retries": "max_retries"}
_ABOUT_CODEACT = re.compile(r"\s*(%%?codeact\b|%(re)?load_ext\s+codeact_kernel\b)")

# Per shell. Shells live as long as the process; `%unload_ext` removes the entry.
_registered: dict[InteractiveShell, CodeActMagics] = {}


def register_magics(shell: InteractiveShell, session: SessionSource = None) -> None:
    """Register `%codeact`/`%%codeact` on `shell`, sharing `session` when given
    (a session, or a function that makes the shared one when first needed).

    Registering again (`%load_ext` in the `codeact` kernel) changes nothing; a given
    session replaces the magic's own.
    """
    magics = _registered.get(shell)
    if magics is None:
        magics = _registered[shell] = CodeActMagics(shell, session)
        shell.magics_manager.register_function(
            magics.codeact, magic_kind="line_cell", magic_name="codeact"
        )
        shell.events.register("post_run_cell", magics.record_cell)
    elif session is not None:
        magics.adopt(session() if callable(session) else session)


def unregister_magics(shell: InteractiveShell) -> None:
    """Undo `register_magics` (`%unload_ext`): remove the magics, stop their thread."""
    magics = _registered.pop(shell, None)
    if magics is None:
        return
    manager = shell.magics_manager
    for kind in ("line", "cell"):
        manager.magics[kind].pop("codeact", None)
    if hasattr(manager.user_magics, "codeact"):
        delattr(manager.user_magics, "codeact")
    shell.events.unregister("post_run_cell", magics.record_cell)
    magics.close()


def shown_briefly(shell: InteractiveShell, error: E) -> E:
    """`error`, made to display as one line (like the kernel's error replies).

    Our errors say what to do next; a traceback through the magic machinery would
    only bury that. IPython renders an exception's `_render_traceback_` instead.
    """
    name = type(error).__name__
    head = (
        name
        if str(getattr(shell, "colors", "")).lower() == "nocolor"
        else f"\x1b[0;31m{name}\x1b[0m"
    )
    line = f"{head}: {error}" if str(error) else head
    setattr(error, "_render_traceback_", lambda: [line])  # noqa: B010
    return error


class CodeActMagics:
    """The magics' state in one shell: the session (made on first use) and the loop."""

    def __init__(self, shell: InteractiveShell, session: SessionSource = None) -> None:
        self.shell = shell
        # The codeact kernel passes a callable: its session is made on first use.
        self._make_session = session if callable(session) else None
        self._session = None if callable(session) else session
        self.owns_session = session is None
        self._cells: list[str] = []
        self._loop: BackgroundLoop | None = None
        self.busy = False

    # --- lazily made parts ----------------------------------------------------------

    @property
    def session(self) -> Session:
        if self._session is None and self._make_session is not None:
            self._session = self._make_session()
        if self._session is None:
            from .session import Session
            from .settings import CodeAct

            # `parent=shell` picks up `c.CodeAct.*` from the IPython/kernel config.
            self._session = Session(self.shell, CodeAct(parent=self.shell))
            for cell in self._cells:
                self._session.record_user_cell(cell)
            self._cells.clear()
        return self._session

    @property
    def loop(self) -> BackgroundLoop:
        if self._loop is None:
            from .magic_runner import BackgroundLoop

            self._loop = BackgroundLoop()
        return self._loop

    def adopt(self, session: Session) -> None:
        self._session = session
        self.owns_session = False
        self._cells.clear()

    def close(self) -> None:
        if self._loop is None:
            return
        if self.owns_session and self._session is not None:
            # The session's HTTP client lives on this loop: close its connections there.
            self._loop.submit(_close_client(self._session))
        self._loop.close()
        self._loop = None

    # --- hooks ----------------------------------------------------------------------

    def record_cell(self, result: ExecutionResult) -> None:
        """Remember what the user ran, to tell the model at the next request.

        The `codeact` kernel records cells itself; actions are part of a request.
        """
        info = result.info
        if self.busy or not self.owns_session or info is None:
            return
        if info.silent or not info.store_history or not info.raw_cell:
            return
        if _ABOUT_CODEACT.match(info.raw_cell):
            return
        if self._session is None:
            # Keep `%load_ext` cheap: the session is made when first needed.
            if info.raw_cell.strip():
                self._cells.append(info.raw_cell)
        else:
            self._session.record_user_cell(info.raw_cell)

    # --- the magic ------------------------------------------------------------------

    def codeact(self, line: str, cell: str | None = None) -> None:
        if cell is None:
            self._command(line)
        else:
            self._request(line, cell)

    codeact.__doc__ = HELP

    def _request(self, line: str, cell: str) -> None:
        try:
            options = parse_cell_options(line)
        except ConfigurationError as error:
            raise UsageError(str(error)) from None
        if not cell.strip():
            raise UsageError(f"The %%codeact cell has no request below its first line.\n{USAGE}")
        if self.busy:
            raise UsageError("%%codeact cannot run inside an action of another %%codeact request.")
        if "model" in options.overrides:
            _check_model(options.overrides["model"])
        from .magic_runner import answer

        session = self.session
        try:
            settings = session.settings(**options.overrides)
        except ConfigurationError as error:
            raise shown_briefly(self.shell, error) from None
        self.busy = True
        try:
            outcome = answer(
                self.shell, session, self.loop, cell.strip("\n"), settings, remember=options.history
            )
        except KeyboardInterrupt:
            message = INTERRUPTED if options.history else NOT_REMEMBERED
            raise shown_briefly(self.shell, KeyboardInterrupt(message)) from None
        except CodeActError as error:
            raise shown_briefly(self.shell, error) from None
        finally:
            self.busy = False
        if outcome.error is not None:
            raise shown_briefly(self.shell, outcome.error) from None

    def _command(self, line: str) -> None:
        words = line.split()
        command = words[0].lower() if words else "status"
        rest = line.strip()[len(command) :].strip() if words else ""
        if command in ("status", "reset", "history", "config", "help") and rest:
            raise UsageError(f"%codeact {command} takes no arguments.\n{LINE_USAGE}")
        if command == "status":
            print(self._status())
        elif command == "help":
            print(HELP)
        elif command == "reset":
            remembered = len(self.session.turns)
            self.session.reset()
            noun = "request" if remembered == 1 else "requests"
            print(f"Forgot the conversation ({remembered} {noun}); the namespace is untouched.")
        elif command == "history":
            from .session_report import history_text

            print(history_text(self.session.turns))
        elif command == "config":
            from .session_report import config_text

            print(config_text(self._settings()))
        elif command == "models":
            self._models(rest)
        elif command == "unset":
            self._unset(rest)
        elif (name := _setting_name(command)) is not None:
            self._setting(name, rest)
        else:
            raise UsageError(
                f"Unknown %codeact command {words[0]!r}. To ask the model, start a cell with "
                f"%%codeact.\n{LINE_USAGE}"
            )

    # --- commands -------------------------------------------------------------------

    def _settings(self, **overrides: Any) -> Settings:
        try:
            return self.session.settings(**overrides)
        except ConfigurationError as error:
            raise shown_briefly(self.shell, error) from None

    def _status(self) -> str:
        from .session_report import status_text

        settings = self._settings()
        session = self.session
        return status_text(
            settings,
            endpoint=_endpoint(settings),
            requests=session.requests,
            remembered=len(session.turns),
            usage=session.usage,
        )

    def _setting(self, name: str, value: str) -> None:
        from .settings import Settings

        if name == "api_key":
            raise UsageError(
                "API keys are read from the environment (CODEACT_API_KEY or the provider's "
                "own variable) or from config files, never from a cell: cells are saved "
                "with the notebook."
            )
        if name not in Settings().public():
            raise UsageError(f"Unknown setting {name!r}.\n{LINE_USAGE}")
        if not value:
            settings = self._settings()
            source = settings.sources.get(name, "default")
            print(f"{name} = {getattr(settings, name)!s} ({source})")
            return
        if name == "model":
            _check_model(value)
        try:
            settings = self.session.settings(**{name: value})
        except ConfigurationError as error:
            raise UsageError(str(error)) from None
        self.session.overrides[name] = getattr(settings, name)
        if name == "automagic" and not self.owns_session:
            # In the `codeact` kernel this decides whether bare words go to the model.
            self.shell.automagic = settings.automagic
        print(f"{name} = {getattr(settings, name)!s} (for this session)")

    def _unset(self, rest: str) -> None:
        name = _setting_name(rest)
        if name is None or " " in rest:
            raise UsageError(f"%codeact unset takes one setting name.\n{LINE_USAGE}")
        self.session.overrides.pop(name, None)
        settings = self._settings()
        if name == "automagic" and not self.owns_session:
            self.shell.automagic = settings.automagic
        source = settings.sources.get(name, "default")
        print(f"{name} = {getattr(settings, name)!s} ({source})")

    def _models(self, rest: str) -> None:
        from .magic_runner import call

        settings = self._settings()
        configured = settings.model.partition(":")[0] if settings.model else ""
        provider = rest or configured or "openai"
        if " " in provider or ":" in provider:
            raise UsageError(f"%codeact models takes at most a provider name.\n{LINE_USAGE}")
        if provider != configured:
            # The provider's own key and base URL come with a model of that provider.
            _check_model(f"{provider}:list")
            settings = self._settings(model=f"{provider}:list")
        try:
            models = call(self.loop, _list_models(settings))
        except KeyboardInterrupt:
            raise shown_briefly(self.shell, KeyboardInterrupt("Listing was interrupted.")) from None
        except CodeActError as error:
            raise shown_briefly(self.shell, error) from None
        if models is None:
            print(f"The {provider} provider cannot list its models.")
            return
        current = settings.model.partition(":")[2]
        print(f"Models of {provider} ({len(models)}):")
        for name in models:
            marker = "*" if name == current else " "
            print(f" {marker} {provider}:{name}")


def _setting_name(word: str) -> str | None:
    from .settings import Settings

    name = word.strip().lower().replace("-", "_")
    name = _ALIASES.get(name, name)
    return name if name in Settings().public() or name == "api_key" else None


def _check_model(name: str) -> None:
    from .providers import parse_model_name

    try:
        parse_model_name(name)
    except ConfigurationError as error:
        raise UsageError(
            f"{error}\nName models as provider:model, e.g. openai:gpt-4o-mini."
        ) from None


def _endpoint(settings: Settings) -> str | None:
    """The base URL the configured model talks to, or None when none is configured."""
    import httpx

    from .providers import create_model

    def refuse(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("the status only reads the endpoint; it sends nothing")

    # The provider takes a client but its endpoint needs none: give it one that
    # cannot send, and skip the real client's TLS and proxy set-up.
    client = httpx.AsyncClient(transport=httpx.MockTransport(refuse), trust_env=False)
    try:
        return create_model(settings, client).endpoint
    except ConfigurationError:
        return None


async def _close_client(session: Session) -> None:
    await session.client().aclose()


async def _list_models(settings: Settings) -> list[str] | None:
    import httpx

    from .providers import create_model

    # A client of its own: the session's belongs to whichever loop made it (in the
    # `codeact` kernel, the kernel's).
    async with httpx.AsyncClient() as client:
        lister = getattr(create_model(settings, client), "list_models", None)
        if lister is None:
            return None
        return list(await lister())
