"""tool_commands.py: `%codeact mcp add` read as a server config, and its bad inputs.

The commands run against real servers in test_mcp_kernel.py; `%codeact tools` is in
test_tools.py.
"""

from __future__ import annotations

import shlex

import pytest
from IPython.core.error import UsageError

from codeact_kernel.tool_commands import parse_add


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
