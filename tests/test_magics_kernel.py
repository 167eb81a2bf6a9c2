"""`%load_ext codeact_kernel` in the stock `python3` kernel, driven through jupyter_client.

The kernel is ipykernel's own kernelspec, installed into a temporary prefix; the model
is the scripted loopback server. What only this host does is here: a `%%codeact` cell
runs inside a cell the kernel is already running, so its actions cannot use the
kernel's event loop. What a request does through either host is in test_hosts.py.
"""

from __future__ import annotations

from kernel_harness import Host, user_messages
from model_server import ScriptedModelServer, text

pytest_plugins = ("kernel_harness",)


def test_top_level_await_in_an_action(magic_host: Host, model_server: ScriptedModelServer) -> None:
    model_server.script(
        text("```python\nimport asyncio\nawait asyncio.sleep(0)\n```"),
        text("```python\nprint('synchronous instead')\n```"),
        text("Done."),
    )
    result = magic_host.request("sleep asynchronously")
    assert result.status == "ok", result.content
    assert "top-level `await`" in result.everything()
    assert "synchronous instead" in result.stdout
    assert "worker thread" in user_messages(model_server.requests[1])[-1]


def test_an_actions_output_is_kept_in_the_cells_history_once(
    magic_host: Host, model_server: ScriptedModelServer
) -> None:
    """IPython records what a cell writes in its history; the action's lines are the
    `%%codeact` cell's, once (not also the next cell's)."""
    model_server.script(text("```python\nprint('only once')\n```"), text("Done."))
    result = magic_host.request("print it once")
    assert result.status == "ok", result.content
    count = result.content["execution_count"]
    check = magic_host.execute(
        "outputs = get_ipython().history_manager.outputs\n"
        "print(sorted(n for n, kept in outputs.items() for o in kept"
        " if o.output_type == 'out_stream' and 'only once' in o.bundle['stream']))"
    )
    assert check.stdout == f"[{count}]\n", check.content


def test_a_logging_handler_an_action_made_writes_into_the_cell_that_logs(
    magic_host: Host, model_server: ScriptedModelServer
) -> None:
    """The handler holds the action's stand-in for sys.stderr; what it writes later is
    the later cell's output, in its history, not the `%%codeact` cell's forever."""
    action = "import logging\nlogging.basicConfig(force=True)\nlog = logging.getLogger('late')"
    model_server.script(text(f"```python\n{action}\n```"), text("Done."))
    result = magic_host.request("set up logging")
    assert result.status == "ok", result.content
    asked = result.content["execution_count"]
    later = magic_host.execute("log.warning('logged later')")
    assert "logged later" in later.everything()
    check = magic_host.execute(
        "outputs = get_ipython().history_manager.outputs\n"
        "print(sorted(n for n, kept in outputs.items() for o in kept"
        " if 'logged later' in str(o.bundle)))"
    )
    assert check.stdout == f"[{later.content['execution_count']}]\n", (asked, check.stdout)
