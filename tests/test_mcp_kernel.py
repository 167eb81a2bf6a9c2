"""MCP tools driven through jupyter_client: from code actions in a real `codeact` kernel
and from `%%codeact` in a stock `python3` kernel, with the scripted model server.

Both hosts read one MCP config file (CODEACT_MCP_CONFIG): the demo server over stdio,
`mcp-server-time`, the demo server over streamable HTTP (its header in the file, a
secret) and a server that cannot start. Each host starts its servers at its first
request.
"""

from __future__ import annotations

import json
import shlex
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from jupyter_client.manager import KernelManager
from kernel_harness import (
    HOSTS,
    Host,
    HostName,
    execute,
    interrupt_when,
    kernel_env,
    running_kernel,
    start_host,
    user_messages,
)
from mcp_harness import (
    HTTP_TOKEN,
    HttpDemo,
    children_of,
    demo_entry,
    time_entry,
    wait_gone,
    write_config,
)
from model_server import ScriptedModelServer, text

pytest_plugins = ("kernel_harness",)

FIRST_REQUEST = 120  # seconds: the first request of a host starts its servers

ACTION = """\
```python
total = 0
for x in [1, 2, 3]:
    total += double(mcp.demo.add(x, 10))
now = mcp.time.get_current_time("UTC")
print("total =", total, now["timezone"])
```"""

DOUBLE = '''\
from codeact_kernel import tool

@tool
def double(x: int) -> int:
    """Twice `x`.

    The model sees this second paragraph too."""
    return 2 * x
'''


@pytest.fixture(scope="module")
def http_demo() -> Iterator[HttpDemo]:
    with HttpDemo() as demo:
        yield demo


@pytest.fixture(scope="module")
def mcp_config(tmp_path_factory: pytest.TempPathFactory, http_demo: HttpDemo) -> Path:
    return write_config(
        tmp_path_factory.mktemp("mcp") / "mcp.json",
        {
            "demo": demo_entry(timeout=20),
            "time": time_entry(),
            "web": {"url": http_demo.url, "headers": {"X-Demo-Token": HTTP_TOKEN}},
            "broken": {"command": "no-such-mcp-server"},
        },
    )


def _mcp_host(
    name: HostName,
    jupyter_path: Path,
    ipython_dir: Path,
    server: ScriptedModelServer,
    config: Path,
) -> Iterator[Host]:
    env = kernel_env(server.url, IPYTHONDIR=str(ipython_dir), CODEACT_MCP_CONFIG=str(config))
    with start_host(name, jupyter_path, env) as host:
        yield host


@pytest.fixture(scope="module")
def mcp_kernel(
    jupyter_path: Path,
    ipython_dir: Path,
    _model_server_session: ScriptedModelServer,
    mcp_config: Path,
) -> Iterator[Host]:
    yield from _mcp_host("kernel", jupyter_path, ipython_dir, _model_server_session, mcp_config)


@pytest.fixture(scope="module")
def mcp_magic(
    jupyter_path: Path,
    ipython_dir: Path,
    _model_server_session: ScriptedModelServer,
    mcp_config: Path,
) -> Iterator[Host]:
    yield from _mcp_host("magic", jupyter_path, ipython_dir, _model_server_session, mcp_config)


@pytest.fixture(params=HOSTS)
def host(request: pytest.FixtureRequest) -> Host:
    """Each MCP-configured host in turn."""
    shared: Host = request.getfixturevalue(f"mcp_{request.param}")
    return shared


def test_an_action_composes_mcp_tools_and_a_python_tool(
    host: Host, model_server: ScriptedModelServer
) -> None:
    assert host.execute(DOUBLE).status == "ok"
    model_server.script(text(ACTION), text("The total is 72."))
    try:
        result = host.request("add up the tools' answers", timeout=FIRST_REQUEST)
        assert result.status == "ok", result.content
        assert "total = 72 UTC" in result.stdout
        first, second = model_server.requests
        system = first["body"]["messages"][0]["content"]
        assert "def double(x: int) -> int:" in system
        assert "The model sees this second paragraph too." in system
        assert "def mcp.demo.add(a: int, b: int = 2) -> int:" in system
        assert "def mcp.time.convert_time(source_timezone: str, time: str" in system
        assert "MCP server 'broken' (mcp.broken) is unavailable" in system
        observation = user_messages(second)[-1]
        assert "[mcp] demo.add(a=1, b=10) → ok in" in observation
        assert "[mcp] time.get_current_time(timezone='UTC') → ok in" in observation
        assert "total = 72 UTC" in observation
        history = host.execute("%codeact history").stdout
        assert "[mcp] demo.add(a=3, b=10) → ok" in history
    finally:
        host.execute("%codeact tools remove double")


def test_tools_are_functions_in_user_cells_too_and_stay_quiet(host: Host) -> None:
    result = host.execute("mcp.demo.add(2)", timeout=FIRST_REQUEST)
    assert result.status == "ok", result.content
    assert result.of_type("execute_result")[0]["content"]["data"]["text/plain"] == "4"
    assert "[mcp]" not in result.stdout
    signature = host.execute("import inspect; print(inspect.signature(mcp.demo.stats))")
    assert "(values: list[float], unit: Literal['m', 's'] = 'm'" in signature.stdout
    failed = host.execute("mcp.demo.fail('no luck')")
    assert failed.content["ename"] == "McpToolError"
    assert "no luck" in failed.content["evalue"]


def test_calls_from_a_cell_whose_coroutine_holds_the_kernels_loop(host: Host) -> None:
    # The kernel's own loop is busy running this cell: the calls wait on the session's.
    code = (
        "import asyncio\n"
        "async def both():\n"
        "    return mcp.demo.add(1), await asyncio.to_thread(mcp.demo.add, 2, 3)\n"
        "await both()"
    )
    result = host.execute(code, timeout=FIRST_REQUEST)
    assert result.status == "ok", result.content
    assert result.of_type("execute_result")[0]["content"]["data"]["text/plain"] == "(3, 5)"


def test_the_commands_list_servers_and_tools_without_secrets(host: Host) -> None:
    host.execute("mcp.demo.add(1)", timeout=FIRST_REQUEST)
    report = host.execute("%codeact mcp")
    assert report.status == "ok", report.content
    assert "demo: stdio:" in report.stdout and "[config file" in report.stdout
    assert "running; tools: add, stats, fail" in report.stdout
    assert "cannot run 'no-such-mcp-server'" in report.stdout or "not started" in report.stdout
    assert HTTP_TOKEN not in report.everything()
    tools = host.execute("%codeact tools", timeout=FIRST_REQUEST)
    assert "mcp.demo.add(a: int, b: int = 2) -> int  # Add two integers." in tools.stdout
    assert HTTP_TOKEN not in tools.everything()
    help_text = host.execute("%codeact help").stdout
    assert "%codeact mcp add NAME URL [--header K=V]" in help_text


@pytest.mark.timing
def test_an_interrupt_stops_a_waiting_tool_call_within_a_second(
    host: Host, model_server: ScriptedModelServer
) -> None:
    host.execute("mcp.demo.add(1)", timeout=FIRST_REQUEST)
    model_server.script(text("```python\nprint('calling slow')\nmcp.demo.slow(30)\n```"))
    result, seconds = host.request_interrupted("wait for it", once_shown="calling slow")
    assert seconds is not None and seconds < 1.5, seconds
    assert result.content["ename"] == "KeyboardInterrupt", result.content
    started = time.monotonic()
    after = host.execute("mcp.demo.add(5)")
    assert after.of_type("execute_result")[0]["content"]["data"]["text/plain"] == "7"
    assert time.monotonic() - started < 5, "the server stayed up"


@pytest.mark.timing
def test_an_interrupt_stops_a_call_from_a_user_cell_within_a_second(host: Host) -> None:
    host.execute("mcp.demo.add(1)", timeout=FIRST_REQUEST)
    during, fired = interrupt_when(
        host.manager, lambda ms: any("calling" in m["content"].get("text", "") for m in ms)
    )
    result = host.execute("print('calling', flush=True)\nmcp.demo.slow(30)", during=during)
    assert fired and time.monotonic() - fired[0] < 1.5
    assert result.content["ename"] == "KeyboardInterrupt", result.content
    after = host.execute("mcp.demo.add(5)", timeout=10)
    assert after.of_type("execute_result")[0]["content"]["data"]["text/plain"] == "7"


def test_secrets_of_the_config_never_reach_the_model(
    mcp_kernel: Host, model_server: ScriptedModelServer, mcp_config: Path
) -> None:
    action = f"```python\nprint(mcp.web.add(1))\nprint(open({str(mcp_config)!r}).read())\n```"
    model_server.script(text(action), text("Done."))
    result = mcp_kernel.request("show me the config", timeout=FIRST_REQUEST)
    assert result.status == "ok", result.content
    assert HTTP_TOKEN in result.stdout, "the user sees their own file"
    observation = user_messages(model_server.requests[1])[-1]
    assert "[mcp] web.add(a=1) → ok" in observation
    assert HTTP_TOKEN not in str(model_server.requests)


def test_a_crash_in_an_action_reaches_the_model_and_the_server_restarts(
    mcp_kernel: Host, model_server: ScriptedModelServer
) -> None:
    model_server.script(text("```python\nmcp.demo.crash()\n```"), text("It crashed."))
    result = mcp_kernel.request("crash the demo server", timeout=FIRST_REQUEST)
    assert result.status == "ok", result.content
    observation = user_messages(model_server.requests[1])[-1]
    assert "McpServerError: MCP server 'demo' stopped" in observation
    assert "demo server: crashing on purpose" in observation
    assert "[mcp] demo.crash() → McpServerError" in observation
    after = mcp_kernel.execute("mcp.demo.add(1)", timeout=60)
    assert after.of_type("execute_result")[0]["content"]["data"]["text/plain"] == "3"


def test_a_server_added_for_the_session(mcp_magic: Host) -> None:
    command = shlex.join([sys.executable, "-m", "mcp_server_time", "--local-timezone", "UTC"])
    added = mcp_magic.execute(f"%codeact mcp add clock -- {command}", timeout=60)
    assert added.status == "ok", added.content
    assert "Added MCP server 'clock': 2 tools at mcp.clock: get_current_time, convert_time" in (
        added.stdout
    )
    now = mcp_magic.execute("mcp.clock.get_current_time('UTC')['timezone']")
    assert now.of_type("execute_result")[0]["content"]["data"]["text/plain"] == "'UTC'"
    refused = mcp_magic.execute(
        f"%codeact mcp add leaky http://127.0.0.1:1/mcp --header Authorization=Bearer-{HTTP_TOKEN}"
    )
    assert refused.status == "error"
    assert "write it as ${VAR}" in refused.content["evalue"]
    restarted = mcp_magic.execute("%codeact mcp restart clock", timeout=60)
    assert "Restarted MCP server 'clock': 2 tools" in restarted.stdout
    removed = mcp_magic.execute("%codeact mcp remove clock")
    assert "Removed MCP server 'clock'" in removed.stdout
    gone = mcp_magic.execute("mcp.clock")
    assert gone.content["ename"] == "AttributeError"


def test_a_config_file_that_is_not_json_stops_requests_clearly_not_the_kernel(
    jupyter_path: Path, tmp_path: Path, model_server: ScriptedModelServer
) -> None:
    config = tmp_path / "mcp.json"
    config.write_text('{"mcpServers": {"demo": ')
    env = kernel_env(model_server.url, CODEACT_MCP_CONFIG=str(config))
    with running_kernel(jupyter_path, env) as (_, client):
        refused = execute(client, "what time is it in Tokyo?")
        assert refused.content["ename"] == "ConfigurationError", refused.content
        assert f"The MCP config file {config} is not valid JSON" in refused.content["evalue"]
        assert model_server.requests == [], "no request without the tools the user configured"
        for command in ("%codeact mcp", "%codeact tools"):
            report = execute(client, command)
            assert report.status == "ok", report.content
            assert f"The MCP config file {config} is not valid JSON" in report.stdout
        config.write_text(json.dumps({"mcpServers": {"demo": demo_entry()}}))
        model_server.script(text("```python\nprint(mcp.demo.add(1))\n```"), text("3."))
        fixed = execute(client, "add one and two", timeout=FIRST_REQUEST)
        assert fixed.status == "ok", fixed.content
        assert "[mcp] demo.add(a=1) → ok" in fixed.stdout


@pytest.mark.parametrize("how", ["shutdown", "terminate", "kill"])
def test_stopping_the_kernel_stops_its_servers(
    how: str, jupyter_path: Path, mcp_config: Path, model_server: ScriptedModelServer
) -> None:
    env = kernel_env(model_server.url, CODEACT_MCP_CONFIG=str(mcp_config))
    with running_kernel(jupyter_path, env) as (manager, client):
        # `%codeact tools` starts every configured server, in parallel.
        started = execute(client, "%codeact tools", timeout=FIRST_REQUEST)
        assert "mcp.time.get_current_time" in started.stdout, started.stdout
        pid = execute(client, "import os; os.getpid()").of_type("execute_result")[0]["content"][
            "data"
        ]
        servers = children_of(int(pid["text/plain"]))
        assert len(servers) >= 2, servers
        _stop(manager, how)
        assert wait_gone(servers) == set(), f"orphans after {how}"


def _stop(manager: KernelManager, how: str) -> None:
    # `running_kernel` kills the kernel on the way out; stop it first, as asked.
    if how == "terminate":  # SIGTERM, as a service manager or `kill PID` sends
        manager.signal_kernel(signal.SIGTERM)
        return
    manager.shutdown_kernel(now=how == "kill")
