"""tool_commands.py: `%codeact mcp add` read as a server config, and its bad inputs; a
server that cannot start, on both hosts.

The commands run against real servers in test_mcp_kernel.py; `%codeact tools` is in
test_tools.py.
"""

from __future__ import annotations

import shlex

import pytest
from IPython.core.error import UsageError
from kernel_harness import Host

from codeact_kernel.tool_commands import parse_add

pytest_plugins = ("kernel_harness",)


def test_a_stdio_server_and_an_http_server() -> None:
    stdio = parse_add(shlex.split("time --env TZ=UTC --timeout 5 -- uvx mcp-server-time --x 'a b'"))
    assert (stdio.name, stdio.command, stdio.args, dict(stdio.env), stdio.timeout) == (
        "time",
        "uvx",
        ("mcp-server-time", "--x", "a b"),
        {"TZ": "UTC"},
        5.0,
    )
    http = parse_add(
        shlex.split("docs https://h/mcp --header 'Authorization=Bearer ${DOCS_TOKEN}'")
    )
    assert (http.transport, http.url, dict(http.headers)) == (
        "http",
        "https://h/mcp",
        {"Authorization": "Bearer ${DOCS_TOKEN}"},
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", "needs a server name"),
        ("--env A=1 -- cmd", "needs a server name"),
        ("x", "give a URL or -- COMMAND"),
        ("x --", "the command is missing"),
        ("x ftp://h", "url must be an http:// or https:// URL"),
        ("x http://h -- cmd", "Give a URL or a command after --, not both"),
        ("x -- cmd http://h", None),  # an argument of the command, not a URL of ours
        ("x --env A -- cmd", "--env takes NAME=VALUE, not 'A'"),
        ("x --env", "--env needs a value"),
        ("x --timeout soon -- cmd", "--timeout needs seconds, not 'soon'"),
        ("x --timeout -1 -- cmd", "timeout must be a number of seconds"),
        ("x --header K=V -- cmd", "--env is for stdio servers"),
        ("x http://h --env A=1", "--env is for stdio servers"),
        ("x http://h http://g", "unexpected 'http://g'"),
        ("x --frob -- cmd", "unexpected '--frob'"),
        ("x http://h --header Authorization=sk-abcdefghijklmnopqrstu123", "write it as ${VAR}"),
        ("x -- cmd --api-key sk-abcdefghijklmnopqrstu123", "An argument of x looks like a secret"),
        ("x -- cmd --api-key ${API_KEY}", None),
        ("x http://u:hunter22@h/mcp", "The URL of x looks like a secret"),
        ("token -- cmd --verbose /home/u/token.txt", None),
        ("x -- cmd --password=hunter2hunter2", "An argument of x looks like a secret"),
        ("x -- cmd --token letmein", "An argument of x looks like a secret"),
        ("x -- cmd --token=${TOKEN} --port 8080 --name repo", None),
        ("x http://h/mcp?api_key=q8Zr2LmX7pW4tY1bN6vC", "The URL of x looks like a secret"),
        ("x http://h/mcp?limit=10&format=json", None),
    ],
)
def test_bad_input_is_a_usage_error_that_says_what_to_fix(line: str, message: str | None) -> None:
    if message is None:
        parse_add(shlex.split(line))
        return
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace("$", r"\$")):
        parse_add(shlex.split(line))


@pytest.mark.parametrize(
    ("command", "stderr"),
    [
        ("/bin/false", None),
        ("sh -c 'echo no config here >&2; exit 3'", "no config here"),
        ("/nonexistent/server", "cannot run '/nonexistent/server'"),
    ],
)
def test_a_server_that_cannot_start_is_one_error_that_says_what_to_check(
    host: Host, command: str, stderr: str | None
) -> None:
    """IPython shows a raw traceback for an error whose context holds an exception
    group (the MCP SDK's task group leaves one): one line of ours instead, both hosts."""
    try:
        result = host.execute(f"%codeact mcp add broken -- {command}", timeout=60)
    finally:
        host.execute("%codeact mcp remove broken")
    assert result.status == "error" and result.content["ename"] == "McpServerError"
    [error] = result.of_type("error")
    assert len(error["content"]["traceback"]) == 1, "one line, no internal traceback"
    streams = "".join(m["content"]["text"] for m in result.of_type("stream"))
    assert "Traceback" not in streams and "codeact_kernel/" not in result.everything()
    message = result.content["evalue"]
    assert message.startswith("MCP server 'broken' could not start: ")
    if stderr is not None:
        assert f"Its stderr ended with:\n    {stderr}" in message
    assert message.endswith(
        "Check that its command runs in a terminal and stays up, waiting for MCP on stdin "
        f"(stdio: {command.replace(chr(39), chr(34))}), then run `%codeact mcp restart broken`."
    )
