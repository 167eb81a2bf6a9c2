"""MCP servers' tools as Python functions, in-process, against real servers: the demo
server (written with the SDK) over stdio and over streamable HTTP on 127.0.0.1, and
`mcp-server-time` from PyPI. Kernel and magic hosts are in test_mcp_kernel.py.

The servers are shared by the module (starting one costs seconds); tests that break a
server (a hang, a crash) use a server of their own.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import io
import os
import pydoc
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import redirect_stdout
from types import SimpleNamespace
from typing import Any

import pytest
from IPython.core.completer import provisionalcompleter
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from mcp_harness import (
    HTTP_TOKEN,
    HttpDemo,
    children_of,
    demo_entry,
    http_entry,
    time_entry,
    wait_gone,
)

from codeact_kernel.background import BackgroundLoop
from codeact_kernel.errors import McpServerError, McpToolError
from codeact_kernel.executor import acting
from codeact_kernel.mcp_client import servers as servers_module
from codeact_kernel.mcp_client.servers import McpServers, tool_stub

ENV = {**os.environ, "DEMO_TOKEN": HTTP_TOKEN}


@pytest.fixture(scope="module")
def http_demo() -> Iterator[HttpDemo]:
    with HttpDemo() as demo:
        yield demo


@pytest.fixture(scope="module")
def servers(ipython: InteractiveShell, http_demo: HttpDemo) -> Iterator[McpServers]:
    """demo (stdio), time (mcp-server-time), web (the demo over HTTP) and broken, started."""
    background = BackgroundLoop("mcp-test")
    servers = McpServers(ipython, background, lambda: ENV)
    servers.configure(
        "",
        "default",
        {
            "demo": demo_entry(),
            "time": time_entry(),
            "web": http_entry(http_demo.url),
            "broken": {"command": "no-such-mcp-server"},
        },
    )
    background.submit(servers.start_all(), timeout=90)
    yield servers
    servers.close()
    background.close()
    ipython.user_ns.pop("mcp", None)
    ipython.user_ns_hidden.pop("mcp", None)


@pytest.fixture
def mcp(servers: McpServers, ipython: InteractiveShell) -> Any:
    return ipython.user_ns["mcp"]


@pytest.fixture
def own_servers(ipython: InteractiveShell) -> Iterator[McpServers]:
    """A session's servers for one test, over a fake shell (so `mcp` stays the module's)."""
    background = BackgroundLoop("mcp-own")
    user_ns: dict[str, Any] = {}
    shell = SimpleNamespace(
        user_ns=user_ns, push=lambda values, interactive: user_ns.update(values)
    )
    servers = McpServers(shell, background, lambda: ENV)  # type: ignore[arg-type]
    yield servers
    servers.close()
    background.close()


def test_each_tool_is_a_plain_function_with_a_real_signature(mcp: Any, ipython: Any) -> None:
    add = mcp.demo.add
    assert inspect.isfunction(add)
    assert str(inspect.signature(add)) == "(a: int, b: int = 2) -> int"
    assert str(inspect.signature(mcp.demo.stats)) == (
        "(values: list[float], unit: Literal['m', 's'] = 'm', scale: float = 1.0) -> dict"
    )
    assert mcp.demo.add is add, "one function per tool, so `is` and caches hold"
    doc = pydoc.render_doc(mcp.demo.stats, renderer=pydoc.plaintext)
    assert "stats(values: list[float]" in doc
    assert "The total is scaled by `scale`." in doc
    assert "values: The numbers to sum." in doc
    assert "Returns a dict with keys: count (int), total (float), unit (str)." in doc
    assert dir(mcp) == ["broken", "demo", "time", "web"]
    assert {"add", "stats", "fail", "slow", "crash", "plot", "shout"} <= set(dir(mcp.demo))
    with provisionalcompleter():  # the API that Jupyter's completion requests use
        assert [c.text for c in ipython.Completer.completions("mcp.de", 6)] == ["demo"]
        assert "shout" in [c.text for c in ipython.Completer.completions("mcp.demo.sh", 11)]
    assert "mcp" in ipython.user_ns_hidden, "hidden from %who and the namespace summary"


def test_results_are_structured_content_or_text(mcp: Any) -> None:
    assert mcp.demo.add(1) == 3
    assert mcp.demo.add(a=1, b=5) == 6
    assert mcp.demo.stats([1, 2.5], unit="s") == {"count": 2, "total": 3.5, "unit": "s"}
    assert mcp.demo.shout("hi") == "HI"
    now = mcp.time.get_current_time("Europe/Paris")
    assert now["timezone"] == "Europe/Paris" and set(now) >= {"datetime", "is_dst"}
    converted = mcp.time.convert_time("UTC", "12:00", "Asia/Tokyo")
    assert converted["target"]["datetime"].endswith("T21:00:00+09:00")


def test_several_text_parts_and_an_is_error_result(mcp: Any) -> None:
    assert mcp.demo.parts() == "first\nsecond"
    with pytest.raises(McpToolError, match=r"mcp\.demo\.refuse\(\): not today$"):
        mcp.demo.refuse("not today")


def test_names_python_cannot_use_as_they_are(mcp: Any) -> None:
    # `get-item.v2` and `get_item_v2` become one identifier: the second gets another.
    assert (
        str(inspect.signature(mcp.demo.get_item_v2)) == "(from_: str, user_id: str = 'me') -> str"
    )
    assert mcp.demo.get_item_v2("here") == "here/me"
    assert mcp.demo.get_item_v2(from_="a", user_id="b") == "a/b"
    assert mcp.demo.get_item_v2(**{"from": "a", "user-id": "c"}) == "a/c"
    assert mcp.demo.get_item_v2_() == "plain"
    with pytest.raises(TypeError, match=r"get_item_v2\(\) got an unexpected keyword argument 'to'"):
        mcp.demo.get_item_v2("a", to="b")
    with pytest.raises(TypeError, match="too many positional arguments"):
        mcp.demo.get_item_v2("a", "b", "c")


def test_streamable_http_with_a_header_from_the_environment(mcp: Any) -> None:
    assert mcp.web.add(40) == 42
    assert mcp.web.stats([1]) == {"count": 1, "total": 1.0, "unit": "m"}


def test_bad_arguments_are_a_type_error_before_any_call(mcp: Any) -> None:
    with pytest.raises(TypeError, match=r"mcp\.demo\.add\(\) missing a required argument: 'a'"):
        mcp.demo.add()
    with pytest.raises(TypeError, match="argument 'a' must be int, not str"):
        mcp.demo.add("1")
    with pytest.raises(ValueError, match="argument 'scale'"):
        mcp.demo.stats([1], scale=0)


def test_a_failing_tool_raises_mcp_tool_error_with_the_servers_message(mcp: Any) -> None:
    with pytest.raises(McpToolError, match="boom") as raised:
        mcp.demo.fail("boom")
    assert not isinstance(raised.value, McpServerError)
    assert (raised.value.server, raised.value.tool) == ("demo", "fail")
    assert mcp.demo.add(1) == 3, "the server is fine"


def test_images_are_shown_as_displays(mcp: Any) -> None:
    with capture_output() as captured:
        caption = mcp.demo.plot()
    assert caption == "a one-pixel plot"
    assert [list(output.data) for output in captured.outputs] == [["image/png"]]


def test_a_server_that_cannot_start_does_not_stop_the_others(servers: McpServers, mcp: Any) -> None:
    assert servers.state_text("broken") == "failed"
    assert servers.state_text("demo").startswith("running")
    with pytest.raises(McpServerError, match="cannot run 'no-such-mcp-server'"):
        mcp.broken.anything  # noqa: B018
    assert mcp.demo.add(1) == 3


def test_what_the_model_is_told(servers: McpServers) -> None:
    section = servers.section()
    assert 'def mcp.demo.add(a: int, b: int = 2) -> int:\n    """Add two integers.' in section
    assert "def mcp.time.get_current_time(timezone: str) -> dict:" in section
    assert "raises McpToolError" in section
    assert "# MCP server 'broken' (mcp.broken) is unavailable (failed)." in section
    assert HTTP_TOKEN not in section


def test_past_a_budget_tools_are_listed_by_their_first_line(servers: McpServers) -> None:
    stats = next(s for s in servers.listed_tools("demo") or [] if s.name == "stats")
    assert tool_stub(stats, full=False) == (
        "def mcp.demo.stats(values: list[float], unit: Literal['m', 's'] = 'm', "
        'scale: float = 1.0) -> dict:\n    """Count and sum numbers."""'
    )
    assert "The total is scaled" in tool_stub(stats)


def test_the_report_masks_secrets_and_shows_states(servers: McpServers) -> None:
    report = servers.report()
    assert "web: http: http://127.0.0.1:" in report and "(headers: X-Demo-Token)" in report
    assert "running; tools: add, stats" in report
    assert "cannot run 'no-such-mcp-server'" in report
    assert HTTP_TOKEN not in report
    assert HTTP_TOKEN in servers.secret_values(), "redacted from everything the model sees"


def test_calls_made_by_an_action_are_logged_and_user_calls_are_not(mcp: Any) -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        mcp.demo.add(1)
    assert out.getvalue() == ""
    with redirect_stdout(out), acting():
        mcp.demo.add(1, b=10)
        with pytest.raises(McpToolError):
            mcp.demo.fail("x")
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[mcp] demo.add(a=1, b=10) → ok in ")
    assert lines[1].startswith("[mcp] demo.fail(message='x') → McpToolError in ")


def test_calls_from_many_threads_at_once(mcp: Any) -> None:
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda n: mcp.demo.add(n, 0), range(32)))
    assert results == list(range(32))


def test_an_interrupt_stops_a_waiting_call_within_a_second(mcp: Any) -> None:
    main = threading.main_thread().ident
    assert main is not None and threading.current_thread() is threading.main_thread()
    timer = threading.Timer(0.3, signal.pthread_kill, (main, signal.SIGINT))
    started = time.monotonic()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        mcp.demo.slow(30)
    assert time.monotonic() - started < 1.3
    started = time.monotonic()
    assert mcp.demo.add(1) == 3, "the server stays up"
    assert time.monotonic() - started < 2


def test_a_hung_server_is_reported_and_restarted_on_the_next_call(
    own_servers: McpServers,
) -> None:
    own_servers.configure("", "default", {"hangs": demo_entry(timeout=1)})
    tools = {s.name: own_servers.function(s) for s in own_servers.tools_of("hangs")}
    add, slow = tools["add"], tools["slow"]
    started = time.monotonic()
    with pytest.raises(McpServerError) as raised:
        slow(20)
    assert time.monotonic() - started < 3
    message = str(raised.value)
    assert "MCP server 'hangs' did not answer mcp.hangs.slow() within 1 s" in message
    assert '"timeout"' in message and "demo server starting" in message
    assert add(1) == 3
    assert own_servers.listed_tools("hangs") is not None


def test_a_crash_is_reported_with_the_stderr_tail_and_restarted(own_servers: McpServers) -> None:
    own_servers.configure("", "default", {"crashy": demo_entry()})
    tools = {s.name: own_servers.function(s) for s in own_servers.tools_of("crashy")}
    first_pid = tools["pid"]()
    with pytest.raises(McpServerError) as raised:
        tools["crash"]()
    message = str(raised.value)
    assert "MCP server 'crashy' stopped: its connection closed during mcp.crashy.crash()" in message
    assert "demo server: crashing on purpose" in message
    assert "It starts again on the next call." in message
    assert "crashed" in own_servers.report()
    assert tools["pid"]() != first_pid


def test_a_server_that_dies_while_idle_is_restarted_at_the_next_call(
    own_servers: McpServers,
) -> None:
    own_servers.configure("", "default", {"victim": demo_entry()})
    pid = {s.name: own_servers.function(s) for s in own_servers.tools_of("victim")}["pid"]
    first = pid()
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while own_servers.state_text("victim") != "crashed" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert own_servers.state_text("victim") == "crashed"
    assert pid() != first


def test_an_http_server_that_goes_away_and_comes_back(own_servers: McpServers) -> None:
    with HttpDemo() as demo:
        own_servers.configure("", "default", {"web": http_entry(demo.url)})
        add = own_servers.function(own_servers.tools_of("web")[0])
        assert add(1) == 3
        demo.stop()
        with pytest.raises(McpServerError, match="MCP server 'web' stopped"):
            add(1)
        demo.start()
        assert add(2) == 4


def test_a_wrong_header_fails_the_start_clearly(own_servers: McpServers) -> None:
    with HttpDemo() as demo:
        own_servers.configure("", "default", {"web": http_entry(demo.url, "NOT_THE_TOKEN")})
        with pytest.raises(McpServerError, match=r"\$\{NOT_THE_TOKEN\}, which is not set"):
            own_servers.tools_of("web")
        entry = {"url": demo.url, "headers": {"X-Demo-Token": "wrong"}}
        own_servers.configure("", "default", {"web": entry})
        with pytest.raises(McpServerError, match=r"answered HTTP 401 Unauthorized\)\.$"):
            own_servers.tools_of("web")


def test_a_variable_of_the_users_named_mcp_is_left_alone(own_servers: McpServers) -> None:
    own_servers.shell.user_ns["mcp"] = "mine"
    own_servers.configure("", "default", {"demo": demo_entry()})
    assert own_servers.shell.user_ns["mcp"] == "mine"
    assert "not available" in own_servers.section()
    assert "`del mcp`" in own_servers.report()


def test_without_the_sdk_the_user_is_told_what_to_install(
    own_servers: McpServers, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(servers_module, "_module", None)
    monkeypatch.setattr(importlib.metadata, "version", missing)
    own_servers.configure("", "default", {"demo": demo_entry()})
    with pytest.raises(McpServerError, match=r'pip install "codeact-kernel\[mcp\]"'):
        own_servers.tools_of("demo")
    assert 'pip install "codeact-kernel[mcp]"' in own_servers.report()
    assert "the MCP SDK is not installed" in own_servers.section()


def test_closing_stops_the_servers(own_servers: McpServers) -> None:
    own_servers.configure("", "default", {"a": demo_entry(), "b": demo_entry()})
    pids = set()
    for name in ("a", "b"):
        pid = next(s for s in own_servers.tools_of(name) if s.name == "pid")
        pids.add(own_servers.function(pid)())
    started = time.monotonic()
    own_servers.close()
    assert wait_gone(pids, timeout=5) == set()
    assert time.monotonic() - started < 5


def test_hiding_a_tool_of_a_server_not_started_yet_starts_it(own_servers: McpServers) -> None:
    own_servers.configure("", "default", {"my-demo": demo_entry()})
    assert own_servers.state_text("my_demo") == "not started"
    assert own_servers.is_tool("mcp.my_demo.shout")
    assert own_servers.state_text("my_demo").startswith("running")
    assert not own_servers.is_tool("mcp.my_demo.whisper")
    assert not own_servers.is_tool("mcp.other.shout") and not own_servers.is_tool("my_demo.shout")


def test_a_server_that_never_answers_fails_at_its_startup_timeout(
    own_servers: McpServers,
) -> None:
    silent = {"command": sys.executable, "args": ["-c", "import time; time.sleep(60)"]}
    own_servers.configure("", "default", {"silent": {**silent, "startup_timeout": 1}})
    before = children_of(os.getpid())
    started = time.monotonic()
    with pytest.raises(
        McpServerError, match=r"'silent' could not start: it did not start within 1 s"
    ):
        own_servers.tools_of("silent")
    # The timeout, then the SDK's grace for a server that ignores its closed stdin.
    assert time.monotonic() - started < 4.5
    assert wait_gone(children_of(os.getpid()) - before, timeout=3) == set()
