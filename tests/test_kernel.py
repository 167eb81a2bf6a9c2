"""The `codeact` kernel, driven through jupyter_client as JupyterLab drives it.

What only this host does: code cells are plain IPython, prose is routed to the model,
consoles see prose as complete, settings come from its own config and environment,
`%codeact` manages the kernel's own session. What a request does through either host
is in test_hosts.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kernel_harness import (
    HOSTS,
    Host,
    HostName,
    execute,
    kernel_env,
    running_kernel,
    start_host,
)
from model_server import ScriptedModelServer, text

pytest_plugins = ("kernel_harness",)


# --- 1. code cells are plain IPython ----------------------------------------------


def test_kernelspec_is_installed(jupyter_path: Path) -> None:
    spec = json.loads((jupyter_path / "kernels" / "codeact" / "kernel.json").read_text())
    assert spec["display_name"] == "CodeAct (Python 3)"
    assert spec["argv"][1:4] == ["-m", "codeact_kernel", "-f"]


def test_code_cells_run_as_in_ipython(kernel_host: Host, model_server: ScriptedModelServer) -> None:
    host = kernel_host
    assert host.execute("x = 40 + 2\nprint(x)").stdout == "42\n"
    result = host.execute("x")
    assert result.of_type("execute_result")[0]["content"]["data"]["text/plain"] == "42"
    assert "hello" in host.execute("!echo hello").stdout
    assert host.execute("%time y = 1").status == "ok"
    assert host.execute("import asyncio\nawait asyncio.sleep(0.01)\nprint('awaited')").stdout == (
        "awaited\n"
    )
    html = host.execute("from IPython.display import HTML\nHTML('<b>bold</b>')")
    assert "text/html" in html.of_type("execute_result")[0]["content"]["data"]
    failure = host.execute("1 / 0")
    assert failure.status == "error" and failure.content["ename"] == "ZeroDivisionError"
    assert failure.of_type("error")
    syntax = host.execute("x = (1,")
    assert syntax.status == "error" and syntax.content["ename"] == "SyntaxError"
    assert model_server.requests == [], "no code cell may reach the model"


def test_help_completion_inspection_history(
    kernel_host: Host, model_server: ScriptedModelServer
) -> None:
    host, client = kernel_host, kernel_host.client
    host.execute("import os\nvalue = 3")
    help_reply = host.execute("os.path.join?")
    assert help_reply.status == "ok"
    assert "join" in json.dumps(help_reply.content["payload"])
    client.complete("os.pa", 5)
    complete = client.get_shell_msg(timeout=10)["content"]
    assert "path" in complete["matches"]
    client.inspect("value", 5)
    inspect = client.get_shell_msg(timeout=10)["content"]
    assert inspect["found"] and "int" in inspect["data"]["text/plain"]
    client.history(hist_access_type="tail", n=3)
    history = client.get_shell_msg(timeout=10)["content"]
    assert any("os.path.join?" in entry[2] for entry in history["history"])
    assert model_server.requests == []


def test_stdin_input(kernel_host: Host) -> None:
    result = kernel_host.execute(
        "name = input('who? ')\nprint('hi', name)", on_stdin=lambda _: "Ada"
    )
    assert result.stdout.endswith("hi Ada\n")


# --- 2. natural language goes to the model ------------------------------------------


def test_prose_that_ipython_would_swallow_goes_to_the_model(
    kernel_host: Host, model_server: ScriptedModelServer
) -> None:
    for prose in ("load the sales data", "run the analysis again", "what is the mean of data?"):
        model_server.script(text(f"Noted: {prose}."))
        result = kernel_host.execute(prose)
        assert result.status == "ok", (prose, result.content)
        assert f"Noted: {prose}." in result.markdown
    assert len(model_server.requests) == 3


def test_is_complete_treats_prose_as_complete(kernel_host: Host) -> None:
    client = kernel_host.client
    client.is_complete("plot the revenue by month")
    assert client.get_shell_msg(timeout=10)["content"]["status"] == "complete"
    client.is_complete("def f(x):")
    assert client.get_shell_msg(timeout=10)["content"]["status"] == "incomplete"


def test_action_payloads_do_not_reach_the_users_next_cell(
    kernel_host: Host, model_server: ScriptedModelServer
) -> None:
    # Through the magic the %%codeact cell's reply carries both payloads (reported).
    host = kernel_host
    action = "get_ipython().set_next_input('overwritten!', replace=True)\nlen?"
    model_server.script(text(f"```python\n{action}\n```"), text("Done."))
    result = host.request("set the next input and show help on len")
    assert result.status == "ok"
    assert result.content["payload"] == []
    assert "Return the number of items" in result.everything(), "the help page shows inline"
    assert host.execute("after = 1").content["payload"] == []


# --- 3. actions may await: they run on the kernel's own loop --------------------------


@pytest.mark.timing
def test_interrupt_during_an_awaiting_action(
    kernel_host: Host, model_server: ScriptedModelServer
) -> None:
    host = kernel_host
    host.execute("kept = 'intact'")
    code = "import asyncio\nprint('sleeping', flush=True)\nawait asyncio.sleep(30)"
    model_server.script(text(f"```python\n{code}\n```"))
    result, after = host.request_interrupted("sleep for a while", once_shown="sleeping")
    assert after is not None, "the action started"
    assert result.status == "error" and result.content["ename"] == "KeyboardInterrupt"
    assert after < 1.0
    assert len(model_server.requests) == 1, "an interrupt stops the loop"
    assert host.execute("print(kept)").stdout == "intact\n"


# --- 4. settings: config files, the environment, `%codeact` ---------------------------


def test_config_files_are_honoured_below_the_environment(
    jupyter_path: Path, model_server: ScriptedModelServer, tmp_path: Path
) -> None:
    profile = tmp_path / "ipython" / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_kernel_config.py").write_text(
        "c.CodeAct.max_steps = 1\nc.CodeAct.model = 'openai:from-config'\n"
    )
    env = kernel_env(model_server.url, IPYTHONDIR=str(tmp_path / "ipython"))
    with running_kernel(jupyter_path, env) as (_, client):
        model_server.script(text("```python\nprint('one')\n```"))
        result = execute(client, "print one, then keep going")
        assert result.content["ename"] == "StepBudgetExhausted", "max_steps came from config"
        assert model_server.requests[0]["body"]["model"] == "test-model", "environment wins"


def test_a_bad_setting_is_reported_at_the_first_request_not_at_start(
    jupyter_path: Path, model_server: ScriptedModelServer
) -> None:
    env = kernel_env(model_server.url, CODEACT_APPROVAL="never")
    with running_kernel(jupyter_path, env) as (_, client):
        assert execute(client, "print('started')").stdout == "started\n"
        result = execute(client, "summarize the data")
        assert result.content["ename"] == "ConfigurationError"
        assert "approval must be auto or ask" in result.content["evalue"]


def test_codeact_line_magic_shares_the_codeact_kernels_session(
    jupyter_path: Path, model_server: ScriptedModelServer
) -> None:
    with running_kernel(jupyter_path, kernel_env(model_server.url)) as (_, client):
        model_server.script(text("```python\nanswer = 42\n```"), text("The answer is 42."))
        assert execute(client, "compute the answer to everything").status == "ok"
        history = execute(client, "%codeact history").stdout
        assert "=== Request 1: compute the answer to everything" in history
        assert "answer = 42" in history
        assert "requests  1" in execute(client, "%codeact").stdout
        assert execute(client, "%codeact model openai:other-model").status == "ok"
        model_server.script(text("Switched."))
        assert execute(client, "and now?").status == "ok"
        assert model_server.requests[-1]["body"]["model"] == "other-model"
        assert "Forgot the conversation (2 requests)" in execute(client, "%codeact reset").stdout
        assert "No conversation yet" in execute(client, "%codeact history").stdout
        requests = len(model_server.requests)
        assert execute(client, "%codeact automagic on").status == "ok"
        assert execute(client, "pwd").status == "ok", "a bare magic name runs as a magic"
        assert len(model_server.requests) == requests
        # Unloading and loading the extension leaves the kernel's own session in charge.
        assert execute(client, "%unload_ext codeact_kernel").status == "ok"
        assert execute(client, "%load_ext codeact_kernel").status == "ok"
        assert execute(client, "%codeact model openai:third-model").status == "ok"
        model_server.script(text("Third."))
        assert execute(client, "which model now?").status == "ok"
        assert model_server.requests[-1]["body"]["model"] == "third-model"


@pytest.mark.parametrize("name", HOSTS)
def test_bad_values_in_the_environment_and_config_files_never_lock_the_session(
    jupyter_path: Path, model_server: ScriptedModelServer, tmp_path: Path, name: HostName
) -> None:
    """Each bad value fails requests by name, with what to do; the commands that show
    and override settings keep working, and an override wins without it being read."""
    profile = tmp_path / "ipython" / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_kernel_config.py").write_text(
        "c.CodeAct.approval = 'maybe'\nc.CodeAct.temperature = 'warm'\n"
    )
    env = kernel_env(
        model_server.url,
        IPYTHONDIR=str(tmp_path / "ipython"),
        CODEACT_IDLE_TIMEOUT="abc",
        CODEACT_MAX_STEPS="0",
    )
    with start_host(name, jupyter_path, env) as host:
        assert host.execute("print('started')").stdout == "started\n"
        failed = host.request("say hello")
        assert failed.content["ename"] == "ConfigurationError"
        assert sorted(
            line.split(" is not valid")[0] for line in failed.content["evalue"].splitlines()
        ) == [
            "The environment variable CODEACT_IDLE_TIMEOUT",
            "The environment variable CODEACT_MAX_STEPS",
            "c.CodeAct.approval in a Jupyter/IPython config file",
            "c.CodeAct.temperature in a Jupyter/IPython config file",
        ]
        assert model_server.requests == []
        for line in ("%codeact", "%codeact config", "%codeact unset idle_timeout"):
            shown = host.execute(line)
            assert shown.status == "ok", (line, shown.content)
            assert "The environment variable CODEACT_IDLE_TIMEOUT is not valid" in shown.stdout
        for line in (
            "%codeact idle_timeout 5",
            "%codeact max_steps 3",
            "%codeact approval auto",
            "%codeact temperature default",
        ):
            assert host.execute(line).stdout.endswith("(for this session)\n"), line
        model_server.script(text("Hello."))
        answered = host.request("say hello")
        assert answered.status == "ok" and "Hello." in answered.markdown
        assert "Problem" not in host.execute("%codeact").stdout


def test_a_cell_too_deep_for_the_parser_gets_its_error_reply(
    kernel_host: Host, model_server: ScriptedModelServer
) -> None:
    """IPython's own check of such a cell fails before it runs; ipykernel then never
    replied. The cell is code, and its error is the reply."""
    result = kernel_host.execute("a" + ".b" * 100_000, timeout=60)
    assert result.status == "error"
    assert result.content["ename"] in {"RecursionError", "SyntaxError"}, result.content
    assert model_server.requests == []
    assert kernel_host.execute("print('alive')").stdout == "alive\n"
