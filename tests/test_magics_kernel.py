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
