"""`%codeact` line commands and what they print: status, settings, transcript.

The `codeact` kernel and the `%%codeact` magic both register `%codeact` with this one
implementation, over their session. Output is plain text, so it reads the same in a
notebook and in a terminal. The API key is never shown, only where it came from; a
password in a URL is masked.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from IPython.core.error import UsageError

from .errors import CodeActError, ConfigurationError
from .options import USAGE, CellOptions, parse_cell_options

if TYPE_CHECKING:
    from .events import Step, Turn, Usage
    from .export import ExportOptions
    from .session import Session
    from .settings import Settings

E = TypeVar("E", bound=BaseException)

LINE_USAGE = """\
%codeact                       status: model, endpoint, tokens used so far
%codeact model PROVIDER:MODEL  use this model for the rest of the session
%codeact models [PROVIDER]     list the models the endpoint serves
%codeact reset                 forget the conversation (the namespace is untouched)
%codeact history               the conversation: requests, actions, observations
%codeact config                effective settings, and where each one came from
%codeact export FILE [--format codeact|openai|sharegpt] [--only-successful]
                [--drop-failed-steps]
                               write this session's requests as JSONL trajectories
%codeact SETTING [VALUE]       show or set a setting for this session,
                               e.g. `%codeact approval ask`, `%codeact max_steps 5`
%codeact unset SETTING         drop a session setting
%codeact tools                 the tools the model is told about (Python and MCP)
%codeact tools remove NAME     unmark a @tool function, or hide mcp.SERVER.TOOL
%codeact mcp                   MCP servers: where they come from, state, tools
%codeact mcp add NAME [--env K=V] -- COMMAND [ARGS...]
                               add a stdio MCP server for this session
%codeact mcp add NAME URL [--header K=V]
                               add a streamable HTTP MCP server
%codeact mcp remove NAME       stop an MCP server and drop it for this session
%codeact mcp restart NAME      stop an MCP server if it runs and start it again
%codeact help                  this text"""

HELP = f"""Ask an LLM agent that answers by running Python code in this namespace.

{USAGE}
    The rest of the cell is the request. Options apply to this cell only;
    --no-history runs it as a fresh conversation that is not remembered.

{LINE_USAGE}

Settings come from `%codeact` and cell options, then CODEACT_* environment
variables, then `c.CodeAct.*` in IPython/Jupyter config files, then defaults."""

NO_KEY_IN_CELLS = (
    "API keys are read from the environment (CODEACT_API_KEY or the provider's own "
    "variable) or from config files, never from a cell: cells are saved with the notebook."
)

AUTOMAGIC_ELSEWHERE = (
    "automagic decides whether the codeact kernel sends bare words to the model; here "
    "IPython's own `%automagic` decides whether bare words call magics."
)

_ALIASES = {"format": "action_format", "steps": "max_steps", "retries": "max_retries"}
_NO_ARGUMENTS = ("status", "reset", "history", "config", "help")
_NO_LIMIT = (
    "step_timeout",
    "total_timeout",
    "connect_timeout",
    "idle_timeout",
    "first_token_timeout",
    "max_tokens",
)


def cell_options(line: str, request: str) -> CellOptions:
    """The options of a `%%codeact` cell, or a `UsageError` that shows the usage.

    Shared by the kernel and the magic, so that a bad cell fails the same way in both.
    """
    try:
        options = parse_cell_options(line)
    except ConfigurationError as error:
        raise UsageError(str(error)) from None
    if "model" in options.overrides:
        from .providers import parse_model_name

        try:
            parse_model_name(options.overrides["model"])
        except ConfigurationError as error:
            raise UsageError(f"{error}\n{USAGE}") from None
    if not request.strip():
        raise UsageError(f"The %%codeact cell has no request below its first line.\n{USAGE}")
    return options


def shown_briefly(shell: Any, error: E) -> E:
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
    # IPython prints a raw Python traceback, not this line, for an exception whose
    # context holds an exception group (an MCP server's task group leaves one): the
    # context is already suppressed, so it goes.
    error.__context__ = None
    return error


def check_model_name(name: str) -> None:
    """A `UsageError` that shows the form when `name` is not `provider:model`."""
    from .providers import parse_model_name

    try:
        parse_model_name(name)
    except ConfigurationError as error:
        raise UsageError(
            f"{error}\nName models as provider:model, e.g. openai:gpt-4o-mini."
        ) from None


class Commands:
    """`%codeact …` over one session.

    `routes_automagic`: in the `codeact` kernel the `automagic` setting also decides
    whether bare words go to the model, so setting it changes the shell at once.
    """

    def __init__(self, session: Session, *, routes_automagic: bool = False) -> None:
        self.session = session
        self.routes_automagic = routes_automagic

    @property
    def shell(self) -> Any:
        return self.session.shell

    def run(self, line: str) -> None:
        words = line.split()
        command = words[0].lower() if words else "status"
        rest = line.strip()[len(command) :].strip() if words else ""
        if command in _NO_ARGUMENTS and rest:
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
            print(history_text(self.session.turns))
        elif command == "config":
            print(config_text(self._settings(lenient=True)))
        elif command == "export":
            self._export(rest)
        elif command == "models":
            self._models(rest)
        elif command == "unset":
            self._unset(rest)
        elif command in ("tools", "mcp"):
            from .tool_commands import mcp_command, tools_command

            (tools_command if command == "tools" else mcp_command)(self.session, rest)
        elif (name := setting_name(command)) is not None:
            self._setting(name, rest)
        else:
            raise UsageError(
                f"Unknown %codeact command {words[0]!r}. To ask the model, start a cell with "
                f"%%codeact.\n{LINE_USAGE}"
            )

    # --- commands -------------------------------------------------------------------

    def _settings(self, *, lenient: bool = False, **overrides: Any) -> Settings:
        """The session's settings; `lenient`: an environment variable or config file value
        that is not valid is shown (`Settings.problems`), not raised, so that the user can
        still see and override it."""
        try:
            return self.session.settings(lenient=lenient, **overrides)
        except ConfigurationError as error:
            raise shown_briefly(self.shell, error) from None

    def _status(self) -> str:
        from .providers import endpoint_for

        settings = self._settings(lenient=True)
        session = self.session
        return status_text(
            settings,
            endpoint=endpoint_for(settings),
            requests=session.requests,
            remembered=len(session.turns),
            usage=session.usage,
        )

    def _setting(self, name: str, value: str) -> None:
        from .settings import Settings

        if name == "api_key":
            raise UsageError(NO_KEY_IN_CELLS)
        if name not in Settings().public():
            raise UsageError(unknown_setting(name))
        if not value:
            print(setting_text(self._settings(lenient=True), name))
            return
        if name == "model":
            check_model_name(value)
        if name == "automagic" and not self.routes_automagic:
            raise UsageError(AUTOMAGIC_ELSEWHERE)
        try:
            # Lenient: a bad environment variable or config value of another setting must
            # not stop this one from being set (its own bad value is never read).
            settings = self.session.settings(lenient=True, **{name: value})
        except ConfigurationError as error:
            raise UsageError(str(error)) from None
        chosen = getattr(settings, name)
        # None is "not set" to the session: the endpoint's default temperature is named.
        self.session.overrides[name] = "default" if chosen is None else chosen
        if name == "automagic" and self.routes_automagic:
            self.shell.automagic = settings.automagic
        print(f"{name} = {_value_text(name, chosen)} (for this session)")

    def _unset(self, rest: str) -> None:
        if not rest or " " in rest:
            raise UsageError(f"%codeact unset takes one setting name.\n{LINE_USAGE}")
        name = setting_name(rest)
        if name is None:
            raise UsageError(unknown_setting(rest))
        if name == "api_key":
            raise UsageError(NO_KEY_IN_CELLS)
        self.session.overrides.pop(name, None)
        settings = self._settings(lenient=True)
        if name == "automagic" and self.routes_automagic:
            self.shell.automagic = settings.automagic
        print(setting_text(settings, name))

    def _export(self, rest: str) -> None:
        from .export import export_redactor, records_from_session, unfit_target, write_jsonl

        path, options = export_arguments(rest)
        if problem := unfit_target(path):
            raise UsageError(f"%codeact export {path}: {problem}.")
        session = self.session
        if not session.records:
            raise UsageError("No CodeAct requests in this session yet: nothing to export.")
        # The session's own secrets too: the key, and what the namespace holds now.
        redact = export_redactor(session.secrets(self._settings(lenient=True)))
        try:
            count = write_jsonl(path, records_from_session(session.records), options, redact)
        except OSError as error:
            raise UsageError(f"Cannot write {path}: {error.strerror or error}") from None
        total = len(session.records)
        print(f"Wrote {count} of {total} request(s) to {path} ({options.format}).")

    def _models(self, rest: str) -> None:
        settings = self._settings()
        configured = settings.model.partition(":")[0] if settings.model else ""
        provider = rest or configured or "openai"
        if " " in provider or ":" in provider:
            raise UsageError(f"%codeact models takes at most a provider name.\n{LINE_USAGE}")
        if provider != configured:
            # The provider's own key and base URL come with a model of that provider.
            check_model_name(f"{provider}:list")
            settings = self._settings(model=f"{provider}:list")
        try:
            models = self.session.background.wait(self._list_models(settings))
        except KeyboardInterrupt:
            raise shown_briefly(self.shell, KeyboardInterrupt("Listing was interrupted.")) from None
        except CodeActError as error:
            raise shown_briefly(self.shell, error) from None
        current = settings.model.partition(":")[2]
        print(f"Models of {provider} ({len(models)}):")
        for name in models:
            marker = "*" if name == current else " "
            print(f" {marker} {provider}:{name}")

    async def _list_models(self, settings: Settings) -> list[str]:
        from .providers import create_model

        # The session's client of the background loop, where this coroutine runs.
        return list(await create_model(settings, self.session.client()).list_models())


def export_arguments(rest: str) -> tuple[str, ExportOptions]:
    """`%codeact export`'s file and options, or a `UsageError` that shows the usage."""
    import shlex

    from .export import FORMATS, ExportOptions

    usage = (
        "Usage: %codeact export FILE [--format codeact|openai|sharegpt] [--only-successful] "
        "[--drop-failed-steps]"
    )
    try:
        words = shlex.split(rest)
    except ValueError as error:
        raise UsageError(f"{error}.\n{usage}") from None
    paths: list[str] = []
    values: dict[str, Any] = {}
    while words:
        word = words.pop(0)
        name, _, value = word.partition("=")
        if name == "--format":
            if not value and words:
                value = words.pop(0)
            if value not in FORMATS:
                raise UsageError(f"--format takes one of {', '.join(FORMATS)}.\n{usage}")
            values["format"] = value
        elif word in ("--only-successful", "--drop-failed-steps"):
            values[word[2:].replace("-", "_")] = True
        elif word.startswith("-"):
            raise UsageError(f"Unknown option {word!r}.\n{usage}")
        else:
            paths.append(word)
    if len(paths) != 1:
        raise UsageError(f"%codeact export takes one file name.\n{usage}")
    return os.path.expanduser(paths[0]), ExportOptions(**values)


def setting_name(word: str) -> str | None:
    """The setting `word` names (aliases and dashes allowed), or None."""
    from .settings import Settings

    name = word.strip().lower().replace("-", "_")
    name = _ALIASES.get(name, name)
    return name if name in Settings().public() or name == "api_key" else None


def unknown_setting(word: str) -> str:
    """What an unknown setting name gets told: the names there are."""
    from .settings import Settings

    names = ", ".join(Settings().public())
    return f"Unknown setting {word.strip()!r}; the settings are: {names}."


# --- reports --------------------------------------------------------------------------


def setting_text(settings: Settings, name: str) -> str:
    """One setting, where it came from, and what is wrong with it if anything is."""
    problem = settings.problems.get(name)
    if problem is not None:
        return f"{name}: {problem.message}"
    source = settings.sources.get(name, "default")
    return f"{name} = {_value_text(name, getattr(settings, name))} ({source})"


def key_text(settings: Settings) -> str:
    if not settings.api_key:
        return "not set"
    return f"set (from {settings.api_key_source})" if settings.api_key_source else "set"


def tokens_text(usage: Usage) -> str:
    estimated = " (estimated)" if usage.estimated else ""
    return f"{usage.total:,}{estimated}: {usage.input_tokens:,} in, {usage.output_tokens:,} out"


def status_text(
    settings: Settings,
    *,
    endpoint: str | None,
    requests: int,
    remembered: int,
    usage: Usage,
) -> str:
    """`%codeact`: which model, where, and how much of it this session used."""
    from .secrets import mask_url

    if settings.model:
        model = f"{settings.model} ({settings.sources.get('model', 'default')})"
    else:
        model = (
            "not set: the first request detects one (or set CODEACT_MODEL, or run "
            "%codeact model PROVIDER:MODEL)"
        )
    rows = [
        ("model", model),
        ("endpoint", mask_url(endpoint) if endpoint else "-"),
        ("api key", key_text(settings)),
        ("requests", f"{requests} ({remembered} remembered in the conversation)"),
        ("tokens", tokens_text(usage)),
        (
            "budgets",
            f"max_steps {settings.max_steps}, max_retries {settings.max_retries}, "
            f"approval {settings.approval}",
        ),
    ]
    lines = ["CodeAct session", *_table(rows, indent=2)]
    lines += [f"Problem: {problem.message}" for problem in settings.problems.values()]
    lines.append("`%codeact config` shows every setting, `%codeact help` the commands.")
    return "\n".join(lines)


def config_text(settings: Settings) -> str:
    """`%codeact config`: every effective setting and where it came from."""
    rows = [("setting", "value", "source")]
    for name, value in settings.public().items():
        shown = "(not valid, see below)" if name in settings.problems else _value_text(name, value)
        rows.append((name, shown, settings.sources.get(name, "default")))
    rows.append(("api_key", key_text(settings), settings.sources.get("api_key", "default")))
    lines = _table(rows)
    lines.append(
        "Precedence: session (%codeact, cell options) > environment > config files > default."
    )
    lines += [f"Problem: {problem.message}" for problem in settings.problems.values()]
    return "\n".join(lines)


def history_text(turns: Sequence[Turn]) -> str:
    """`%codeact history`: every remembered request, its actions and their observations."""
    if not turns:
        return "No conversation yet (cells run with --no-history are not remembered)."
    parts: list[str] = []
    for number, turn in enumerate(turns, 1):
        parts.append(f"=== Request {number}: {_first_line(turn.request)}")
        if "\n" in turn.request.strip():
            parts.append(_indent(turn.request.strip(), 4))
        for step in turn.steps:
            parts.extend(_step_lines(step))
        if turn.final is not None:
            parts.append("  Done.")
        elif turn.error:
            parts.append(f"  Ended: {turn.error}")
    return "\n".join(parts)


def _step_lines(step: Step) -> list[str]:
    from .actions import split_answer

    lines = [f"  --- step {step.number}"]
    narrative = split_answer(step.model_text)[0].strip() if step.model_text else ""
    if narrative:
        lines += ["    model:", _indent(narrative, 6)]
    if step.code is not None:
        lines += [f"    action ({_action_status(step)}):", _indent(step.code, 6)]
    if step.observation is not None and not step.skipped:
        lines += ["    observation:", _indent(step.observation.text, 6)]
    if step.error:
        lines.append(f"    error: {step.error}")
    return lines


def _action_status(step: Step) -> str:
    observation = step.observation
    if step.skipped:
        return "skipped by the user"
    if observation is None:
        return "not run"
    if observation.timed_out:
        return "stopped by step_timeout"
    if observation.interrupted:
        return "interrupted"
    return "ok" if observation.ok else f"failed: {observation.error_name}"


def _value_text(name: str, value: object) -> str:
    from .secrets import mask_url

    if name == "base_url":
        return mask_url(str(value)) if value else "(provider default)"
    if name in _NO_LIMIT and not value:
        return "0 (no limit)"
    if name == "temperature" and value is None:
        return "(endpoint default)"
    if value == "":
        return "(not set)"
    return str(value)


def _table(rows: Sequence[tuple[str, ...]], indent: int = 0) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        " " * indent
        + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        + "  "
        + row[-1]
        for row in rows
    ]


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= 80 else line[:77] + "..."


def _indent(text: str, spaces: int) -> str:
    return textwrap.indent(text.rstrip("\n"), " " * spaces, lambda _: True)
