"""`%codeact tools` and `%codeact mcp`: the tools the model is told about, and the
session's MCP servers.

    %codeact tools                       the tools in the model's Tools section
    %codeact tools remove NAME           unmark a @tool, or hide mcp.SERVER.TOOL
    %codeact mcp                         servers: where from, state, tools, errors
    %codeact mcp add NAME [--env K=V] [--timeout S] -- COMMAND [ARGS...]
    %codeact mcp add NAME URL [--header K=V] [--timeout S]
    %codeact mcp remove NAME             stop it and drop it for this session
    %codeact mcp restart NAME            stop it if it runs, start it again

A server added here starts at once, so the cell shows whether it works. Values of
`--env` and `--header`, arguments and URLs that look like secrets must be written
`${VAR}` (read from the environment when the server starts): cells are saved with the
notebook.
"""

from __future__ import annotations

import contextlib
import shlex
import urllib.parse
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from .commands import LINE_USAGE, shown_briefly
from .errors import CodeActError, ConfigurationError, McpServerError
from .mcp_client.config import DEFAULT_TIMEOUT, ServerConfig, parse_entry

if TYPE_CHECKING:
    from .session import Session

# The tools and mcp lines of `%codeact help`.
TOOLS_USAGE = "\n".join(
    line for line in LINE_USAGE.splitlines() if line.startswith(("%codeact tools", "%codeact mcp"))
)

NO_SECRETS_IN_CELLS = (
    "{what} {name} looks like a secret: write it as ${{VAR}} and set VAR in the "
    "environment (it is read when the server starts). Cells are saved with the notebook."
)


def tools_command(session: Session, rest: str) -> None:
    """`%codeact tools [remove NAME]`."""
    words = rest.split()
    if not words:
        print(tools_listing(session))
        return
    if words[0] == "remove" and len(words) != 2:
        raise UsageError("%codeact tools remove takes one NAME (MCP tools as mcp.SERVER.TOOL).")
    if words[0] == "remove":
        try:
            print(session.tools.remove(words[1]))
        except KeyError:
            raise UsageError(
                f"No tool {words[1]!r}: `%codeact tools` lists them (MCP tools as mcp.SERVER.TOOL)."
            ) from None
        return
    raise UsageError(f"Unknown %codeact tools command {rest!r}.\n{TOOLS_USAGE}")


def tools_listing(session: Session) -> str:
    """What the model is told about: each tool's signature and first docstring line."""
    from .namespace import signature_text
    from .tools import callable_of, python_tools, tool_doc

    _configure(session)
    _start(session)
    lines: list[str] = []
    user_ns = session.shell.user_ns
    marked = python_tools(user_ns)
    if marked:
        lines.append(f"Python tools ({len(marked)}):")
        for tool in marked:
            if tool.bound_as is None:
                why = "redefined without @tool" if tool.name in user_ns else "not in the namespace"
                lines.append(f"  {tool.name}: {why}, so the model is not told")
                continue
            function = callable_of(tool, user_ns)
            line = f"  {tool.bound_as}{signature_text(function)}"
            lines.append(line + _first_line(tool_doc(function)))
    servers = session.tools.mcp
    for name in servers.configs:
        tools = servers.listed_tools(name)
        if tools is None:
            lines.append(f"MCP server {name!r}: unavailable (see %codeact mcp)")
            continue
        lines.append(f"MCP server {name!r} ({len(tools)} tools):")
        for spec in tools:
            hidden = "  (hidden from the model)" if spec.qualname in servers.hidden else ""
            doc = _first_line(spec.description)
            lines.append(f"  {spec.qualname}{spec.signature}{doc}{hidden}")
    if not lines:
        lines.append(
            "No tools. Mark your functions with @tool (from codeact_kernel import tool), or "
            "add MCP servers (%codeact mcp)."
        )
    else:
        lines.append("The model sees each signature with its whole docstring.")
    if servers.config_error:
        lines.append(f"The MCP configuration has a problem: {servers.config_error}")
    return "\n".join(lines)


def mcp_command(session: Session, rest: str) -> None:
    """`%codeact mcp [add|remove|restart ...]`."""
    try:
        words = shlex.split(rest)
    except ValueError as error:
        raise UsageError(f"%codeact mcp: {error}.\n{TOOLS_USAGE}") from None
    _configure(session)
    servers = session.tools.mcp
    if not words:
        print(servers.report())
        return
    command, args = words[0], words[1:]
    if command == "add":
        config = parse_add(args)
        from .mcp_client.servers import _connection_module

        try:
            _connection_module()
        except CodeActError as error:
            raise shown_briefly(session.shell, error) from None
        servers.add(config)
        _announce(session, config.name, "Added")
    elif command in ("remove", "restart") and len(args) == 1:
        name = args[0]
        if name not in servers.configs:
            known = ", ".join(servers.configs) or "none"
            raise UsageError(f"No MCP server {name!r} (servers: {known}).")
        if command == "remove":
            # Removed all the same when interrupted: the stop goes on in the background.
            with contextlib.suppress(KeyboardInterrupt):
                servers.stop(name)
            servers.remove(name)
            print(f"Removed MCP server {name!r} for this session.")
        else:
            _announce(session, name, "Restarted", restart=True)
    else:
        raise UsageError(f"Unknown %codeact mcp command {rest!r}.\n{TOOLS_USAGE}")


def parse_add(args: list[str]) -> ServerConfig:
    """`NAME [options] -- COMMAND ARGS...` or `NAME URL [options]` as a server config."""
    if not args or args[0].startswith("-"):
        raise UsageError(f"%codeact mcp add needs a server name.\n{TOOLS_USAGE}")
    name, rest = args[0], args[1:]
    command: list[str] = []
    if "--" in rest:
        split = rest.index("--")
        rest, command = rest[:split], rest[split + 1 :]
        if not command:
            raise UsageError(f"%codeact mcp add {name} --: the command is missing.")
    env: dict[str, str] = {}
    headers: dict[str, str] = {}
    url = ""
    timeout = DEFAULT_TIMEOUT
    words = iter(rest)
    for word in words:
        if word in ("--env", "--header", "--timeout"):
            value = next(words, None)
            if value is None:
                raise UsageError(f"{word} needs a value.\n{TOOLS_USAGE}")
            if word == "--timeout":
                try:
                    timeout = float(value)
                except ValueError:
                    raise UsageError(f"--timeout needs seconds, not {value!r}.") from None
                continue
            key, sep, text = value.partition("=")
            if not sep or not key:
                raise UsageError(f"{word} takes NAME=VALUE, not {value!r}.")
            _no_literal_secret("Header" if word == "--header" else "Variable", key, text)
            (headers if word == "--header" else env)[key] = text
        elif not url and not command and not word.startswith("-"):
            url = word
        elif command and word.startswith(("http://", "https://")):
            raise UsageError("Give a URL or a command after --, not both.")
        else:
            raise UsageError(f"%codeact mcp add: unexpected {word!r}.\n{TOOLS_USAGE}")
    if command and url:
        raise UsageError("Give a URL or a command after --, not both.")
    if not command and not url:
        raise UsageError(f"%codeact mcp add {name}: give a URL or -- COMMAND.\n{TOOLS_USAGE}")
    if (url and env) or (command and headers):
        raise UsageError("--env is for stdio servers (a command), --header for URLs.")
    entry: dict[str, Any] = {"timeout": timeout}
    if url:
        _no_literal_secret("The URL of", name, url, key="url")
        for key, value in urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query):
            _no_literal_secret("The URL of", name, value, key=key)
        entry.update(url=url, headers=headers)
    else:
        for key, value in _named_arguments(command[1:]):
            _no_literal_secret("An argument of", name, value, key=key)
        entry.update(command=command[0], args=command[1:], env=env)
    try:
        return parse_entry(name, entry, "%codeact mcp add")
    except ConfigurationError as error:
        raise UsageError(str(error)) from None


def _named_arguments(args: list[str]) -> list[tuple[str, str]]:
    """Each argument with the name it is given under: `--token=X` and `--token X` are
    X under `token`; any other argument is judged by itself (under `arg`)."""
    named = []
    for index, arg in enumerate(args):
        flag, equals, value = arg.partition("=")
        if arg.startswith("-") and equals:
            named.append((flag.lstrip("-"), value))
        elif index and args[index - 1].startswith("-") and "=" not in args[index - 1]:
            named.append((args[index - 1].lstrip("-"), arg))
        else:
            named.append(("arg", arg))
    return named


def _no_literal_secret(what: str, name: str, value: str, key: str = "") -> None:
    """Refuse `value` (held under `key`, default `name`) if it looks like a secret."""
    from .secrets import URL_PASSWORD, is_secret_value

    if "${" in value:
        return
    if is_secret_value(key or name, value) or URL_PASSWORD.search(value):
        raise UsageError(NO_SECRETS_IN_CELLS.format(what=what, name=name))


def _configure(session: Session) -> None:
    try:
        # Lenient: a bad timeout in the environment must not lock the MCP commands.
        settings = session.settings(lenient=True)
    except ConfigurationError as error:
        raise shown_briefly(session.shell, error) from None
    # A broken MCP config file: the listings say so, and `mcp add` still works.
    with contextlib.suppress(ConfigurationError):
        session.tools.configure(settings)


def _start(session: Session) -> None:
    if not session.tools.needs_start():
        return
    try:
        session.background.wait(session.tools.start())
    except KeyboardInterrupt:
        message = "Starting the MCP servers was interrupted; they start at first use."
        raise shown_briefly(session.shell, KeyboardInterrupt(message)) from None


def _announce(session: Session, name: str, done: str, *, restart: bool = False) -> None:
    servers = session.tools.mcp
    try:
        tools = servers.restart(name) if restart else servers.tools_of(name)
    except KeyboardInterrupt:
        message = f"Starting MCP server {name!r} was interrupted; it starts at first use."
        raise shown_briefly(session.shell, KeyboardInterrupt(message)) from None
    except McpServerError as error:
        raise shown_briefly(session.shell, _with_advice(error, servers.configs[name])) from None
    except CodeActError as error:
        raise shown_briefly(session.shell, error) from None
    names = ", ".join(spec.attribute for spec in tools) or "none"
    attribute = servers.attribute_of(name)
    print(f"{done} MCP server {name!r}: {len(tools)} tools at mcp.{attribute}: {names}")


def _with_advice(error: McpServerError, config: ServerConfig) -> McpServerError:
    """`error`, told what to check when the server itself failed to start (a problem
    with its configuration says what to do already)."""
    if not str(error).startswith(f"MCP server {config.name!r} could not start:"):
        return error
    if config.url:
        check = "that the server is running and serves MCP over streamable HTTP"
    else:
        check = "that its command runs in a terminal and stays up, waiting for MCP on stdin"
    # describe(): secrets in the command or URL masked.
    advice = f"Check {check} ({config.describe()}), then run `%codeact mcp restart {config.name}`."
    # The same error, not a new one raised from it: IPython would show the raw traceback
    # of the exception group the MCP SDK leaves in the context (see `shown_briefly`).
    error.args = (f"{error}\n{advice}",)
    return error


def _first_line(doc: object) -> str:
    if not isinstance(doc, str) or not doc.strip():
        return ""
    line = doc.strip().splitlines()[0].strip()
    return "  # " + (line if len(line) <= 100 else line[:99] + "…")
