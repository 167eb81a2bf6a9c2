"""Which MCP servers a session has: the common `mcpServers` JSON, as other MCP clients
read it.

    {"mcpServers": {
        "time": {"command": "uvx", "args": ["mcp-server-time"], "env": {"TZ": "UTC"}},
        "docs": {"url": "https://example.com/mcp",
                 "headers": {"Authorization": "Bearer ${DOCS_TOKEN}"}}}}

An entry with `command` runs the server as a subprocess over stdio; one with `url` talks
streamable HTTP. `${VAR}` and `${VAR:-default}` in the command, arguments, `env`, `cwd`,
`url` and `headers` are read from the environment when the server starts, so secrets stay
out of files and notebooks. Also read: `disabled`, `type` (`stdio`, `http`; SSE is not
supported), `cwd`, and two of ours, `timeout` (seconds a tool call may take, default 60,
0 for no limit) and `startup_timeout` (default 30). Other clients' own keys
(`autoApprove` …) are ignored.

Sources, later ones winning for a name they share: `c.CodeAct.mcp_servers` and the file
named by `c.CodeAct.mcp_config` (config files; the mapping, being more specific, wins),
the file named by `CODEACT_MCP_CONFIG` (the environment outranks config files), then
`%codeact mcp add` for the session. A broken entry is kept as a server that fails with
its error, so it never stops the others.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import ConfigurationError
from ..secrets import is_secret_value, looks_secret_name, mask, mask_url

DEFAULT_TIMEOUT = 60.0
DEFAULT_STARTUP_TIMEOUT = 30.0

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_HTTP_TYPES = ("http", "streamable-http", "streamable_http", "streamablehttp")


@dataclass(frozen=True)
class ServerConfig:
    """One configured server, as written (`${VAR}` not yet expanded).

    `error` marks an entry that cannot work (it says why); the server then fails at
    start with that message.
    """

    name: str
    command: str = ""
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str = ""
    url: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT
    source: str = ""
    error: str = ""

    @property
    def transport(self) -> str:
        return "http" if self.url else "stdio"

    def expanded(self, environ: Mapping[str, str]) -> ServerConfig:
        """This entry with `${VAR}` replaced; `ConfigurationError` names a missing one."""

        def expand(text: str) -> str:
            return expand_variables(text, environ, server=self.name)

        return replace(
            self,
            command=expand(self.command),
            args=tuple(expand(arg) for arg in self.args),
            env={key: expand(value) for key, value in self.env.items()},
            cwd=os.path.expanduser(expand(self.cwd)) if self.cwd else "",
            url=expand(self.url),
            headers={key: expand(value) for key, value in self.headers.items()},
        )

    def secret_values(self, environ: Mapping[str, str]) -> set[str]:
        """The values in `env`, `headers` and arguments that must never reach the model."""
        try:
            config = self.expanded(environ)
        except ConfigurationError:
            config = self
        found: set[str] = set()
        for name, value in [*config.env.items(), *config.headers.items()]:
            if value and (looks_secret_name(name) or is_secret_value(name, value)):
                found.add(value)
                # "Bearer <token>": the token is the secret wherever it shows up alone.
                scheme, _, token = value.partition(" ")
                if token and scheme.isalpha():
                    found.add(token)
        found.update(arg for arg in config.args if is_secret_value("arg", arg))
        return found

    def describe(self) -> str:
        """How the server is reached, for people: secrets masked, env and header values
        left out."""
        if self.url:
            text = f"http: {mask_url(self.url)}"
            if self.headers:
                text += " (headers: " + ", ".join(self.headers) + ")"
            return text
        command = " ".join([self.command, *(_quoted(arg) for arg in self.args)])
        text = "stdio: " + mask(command, self.secret_values({}))
        if self.env:
            text += " (env: " + ", ".join(self.env) + ")"
        return text


def expand_variables(text: str, environ: Mapping[str, str], *, server: str = "") -> str:
    """`${VAR}` and `${VAR:-default}` from `environ`; an unset one without a default is
    a `ConfigurationError`."""

    def value(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = environ.get(name)
        if found:
            return found
        if default is not None:
            return default
        where = f"MCP server {server!r} uses" if server else "The MCP configuration uses"
        raise ConfigurationError(
            f"{where} ${{{name}}}, which is not set in the environment. Set it before the "
            f"server starts (e.g. os.environ[{name!r}] = ...), or write ${{{name}:-default}}."
        )

    return _VARIABLE.sub(value, text) if "${" in text else text


def read_config_file(path: str) -> Mapping[str, Any]:
    """The servers mapping of a JSON config file."""
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as file:
            document = json.load(file)
    except OSError as error:
        raise ConfigurationError(
            f"Cannot read the MCP config file {path}: {error.strerror or error}."
        ) from None
    except ValueError as error:
        raise ConfigurationError(
            f"The MCP config file {path} is not valid JSON: {error}."
        ) from None
    return servers_mapping(document, f"The MCP config file {path}")


def servers_mapping(document: object, where: str) -> Mapping[str, Any]:
    """The name → entry mapping of `{"mcpServers": {...}}` (or VS Code's `servers`),
    or of a bare mapping of entries."""
    if not isinstance(document, Mapping):
        raise ConfigurationError(f'{where} must be a JSON object like {{"mcpServers": {{...}}}}.')
    for key in ("mcpServers", "servers"):
        if key in document:
            servers = document[key]
            if not isinstance(servers, Mapping):
                raise ConfigurationError(f"{where}: {key} must be an object of servers.")
            return servers
    return document


def parse_servers(servers: Mapping[str, Any], source: str) -> dict[str, ServerConfig]:
    """Every entry as a `ServerConfig`; a broken one carries its `error`. Disabled
    entries are left out."""
    parsed: dict[str, ServerConfig] = {}
    for name, entry in servers.items():
        if isinstance(entry, Mapping) and entry.get("disabled") is True:
            continue
        try:
            parsed[str(name)] = parse_entry(str(name), entry, source)
        except ConfigurationError as error:
            parsed[str(name)] = ServerConfig(name=str(name), source=source, error=str(error))
    return parsed


def parse_entry(name: str, entry: object, source: str) -> ServerConfig:
    """One `mcpServers` entry; `ConfigurationError` says what is wrong with it."""
    where = f"MCP server {name!r} ({source})"
    if not name.strip():
        raise ConfigurationError(f"An MCP server in {source} has an empty name.")
    if not isinstance(entry, Mapping):
        raise ConfigurationError(f"{where} must be an object with a command or a url.")
    kind = str(entry.get("type") or entry.get("transport") or "").lower()
    command = entry.get("command")
    url = entry.get("url") or entry.get("serverUrl")
    if kind == "sse":
        raise ConfigurationError(
            f"{where} uses the SSE transport, which is not supported: use its streamable "
            "HTTP endpoint (usually the URL ending in /mcp)."
        )
    if kind and kind != "stdio" and kind not in _HTTP_TYPES:
        raise ConfigurationError(f"{where} has an unknown type {kind!r}: use stdio or http.")
    if command and url:
        raise ConfigurationError(f"{where} has both a command and a url: give one.")
    if not command and not url:
        raise ConfigurationError(f"{where} needs a command (stdio) or a url (streamable HTTP).")
    timeout = _seconds(entry, "timeout", DEFAULT_TIMEOUT, where)
    startup = _seconds(entry, "startup_timeout", DEFAULT_STARTUP_TIMEOUT, where)
    if url:
        if not isinstance(url, str) or not (url.startswith(("http://", "https://", "${"))):
            raise ConfigurationError(f"{where}: url must be an http:// or https:// URL.")
        return ServerConfig(
            name=name,
            url=url,
            headers=_strings(entry.get("headers"), "headers", where),
            timeout=timeout,
            startup_timeout=startup,
            source=source,
        )
    if not isinstance(command, str) or not command.strip():
        raise ConfigurationError(f"{where}: command must be a non-empty string.")
    args = entry.get("args") or []
    if not isinstance(args, list) or not all(isinstance(a, str | int | float) for a in args):
        raise ConfigurationError(f"{where}: args must be a list of strings.")
    cwd = entry.get("cwd") or ""
    if not isinstance(cwd, str):
        raise ConfigurationError(f"{where}: cwd must be a string.")
    return ServerConfig(
        name=name,
        command=command,
        args=tuple(str(a) for a in args),
        env=_strings(entry.get("env"), "env", where),
        cwd=cwd,
        timeout=timeout,
        startup_timeout=startup,
        source=source,
    )


def _strings(value: object, key: str, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{where}: {key} must be an object of names to strings.")
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in value.items()}


def _seconds(entry: Mapping[str, Any], key: str, default: float, where: str) -> float:
    value = entry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigurationError(f"{where}: {key} must be a number of seconds (0: no limit).")
    return float(value)


def _quoted(arg: str) -> str:
    return arg if arg and not re.search(r"[\s'\"]", arg) else json.dumps(arg)
