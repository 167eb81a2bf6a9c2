"""mcp_client/config.py: the mcpServers JSON, ${VAR} expansion, what is secret."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codeact_kernel.errors import ConfigurationError
from codeact_kernel.mcp_client.config import (
    DEFAULT_TIMEOUT,
    expand_variables,
    parse_entry,
    parse_servers,
    read_config_file,
    servers_mapping,
)


def test_the_common_shape_stdio_and_http(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "time": {
                        "command": "uvx",
                        "args": ["mcp-server-time", 3],
                        "env": {"TZ": "UTC"},
                    },
                    "docs": {"url": "https://example.com/mcp", "headers": {"X-Key": "${KEY}"}},
                    "off": {"command": "x", "disabled": True},
                    "vscode": {"type": "stdio", "command": "y", "autoApprove": ["*"]},
                }
            }
        )
    )
    servers = parse_servers(read_config_file(str(path)), "file")
    assert list(servers) == ["time", "docs", "vscode"]
    time = servers["time"]
    assert (time.transport, time.command, time.args, dict(time.env)) == (
        "stdio",
        "uvx",
        ("mcp-server-time", "3"),
        {"TZ": "UTC"},
    )
    assert time.timeout == DEFAULT_TIMEOUT and time.source == "file"
    docs = servers["docs"]
    assert (docs.transport, docs.url, dict(docs.headers)) == (
        "http",
        "https://example.com/mcp",
        {"X-Key": "${KEY}"},
    )


def test_other_top_level_shapes() -> None:
    entry = {"command": "x"}
    assert servers_mapping({"mcpServers": {"a": entry}}, "w") == {"a": entry}
    assert servers_mapping({"servers": {"a": entry}}, "w") == {"a": entry}  # VS Code's
    assert servers_mapping({"a": entry}, "w") == {"a": entry}  # c.CodeAct.mcp_servers
    with pytest.raises(ConfigurationError, match="must be a JSON object"):
        servers_mapping(["a"], "w")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({}, "needs a command"),
        ({"command": "x", "url": "http://h"}, "both a command and a url"),
        ({"url": "ftp://h"}, "http:// or https://"),
        ({"type": "sse", "url": "http://h/sse"}, "SSE transport, which is not supported"),
        ({"type": "websocket", "url": "http://h"}, "unknown type"),
        ({"command": "x", "args": "a b"}, "args must be a list"),
        ({"command": "x", "timeout": -1}, "timeout must be a number"),
        ({"command": "x", "env": ["A"]}, "env must be an object"),
        ("npx", "must be an object"),
    ],
)
def test_entry_errors_say_what_is_wrong(entry: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_entry("s", entry, "test")


def test_a_broken_entry_is_kept_with_its_error_and_does_not_stop_the_others() -> None:
    servers = parse_servers({"bad": {"url": "ftp://x"}, "good": {"command": "x"}}, "test")
    assert "http://" in servers["bad"].error
    assert servers["good"].error == ""


def test_a_file_that_is_missing_or_not_json(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="Cannot read the MCP config file"):
        read_config_file(str(tmp_path / "nope.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ConfigurationError, match=f"The MCP config file {bad} is not valid JSON"):
        read_config_file(str(bad))
    for document, message in [
        ([], "must be a JSON object like"),
        ({"mcpServers": ["a"]}, "mcpServers must be an object of servers"),
        ({"servers": "a"}, "servers must be an object of servers"),
    ]:
        bad.write_text(json.dumps(document))
        with pytest.raises(ConfigurationError, match=f"^The MCP config file {bad}.* {message}"):
            read_config_file(str(bad))
    # An entry of the wrong shape fails alone, with its own error.
    bad.write_text(json.dumps({"mcpServers": {"a": "npx x", "b": {"command": "x"}}}))
    servers = parse_servers(read_config_file(str(bad)), "file")
    assert "must be an object" in servers["a"].error and servers["b"].error == ""


def test_variables_are_expanded_from_the_environment_at_start() -> None:
    env = {"TOKEN": "t0k", "HOME": "/home/u"}
    assert expand_variables("Bearer ${TOKEN}", env) == "Bearer t0k"
    assert expand_variables("${MISSING:-fallback}/x", env) == "fallback/x"
    assert expand_variables("$HOME stays", env) == "$HOME stays"
    with pytest.raises(ConfigurationError, match=r"\$\{MISSING\}, which is not set"):
        expand_variables("${MISSING}", env, server="docs")
    config = parse_entry(
        "docs",
        {"url": "https://h/${PATHPART}", "headers": {"Authorization": "Bearer ${TOKEN}"}},
        "t",
    )
    expanded = config.expanded({"TOKEN": "t0k", "PATHPART": "mcp"})
    assert expanded.url == "https://h/mcp"
    assert expanded.headers["Authorization"] == "Bearer t0k"
    assert config.headers["Authorization"] == "Bearer ${TOKEN}"  # the config is unchanged


def test_secret_values_and_what_people_are_shown() -> None:
    token = "ghp_" + "a1B2c3D4e5F6g7H8i9J0" * 2
    http = parse_entry(
        "docs",
        {
            "url": "https://user:pw123456@h/mcp",
            "headers": {"Authorization": "Bearer ${TOKEN}", "Accept": "text/plain"},
        },
        "t",
    )
    assert http.secret_values({"TOKEN": token}) == {f"Bearer {token}", token}
    shown = http.describe()
    assert "pw123456" not in shown and "Authorization" in shown and "TOKEN" not in shown
    stdio = parse_entry(
        "gh", {"command": "gh-mcp", "args": ["--token", token], "env": {"GH_TOKEN": token}}, "t"
    )
    assert token in stdio.secret_values({})
    assert token not in stdio.describe()
    assert "env: GH_TOKEN" in stdio.describe()
