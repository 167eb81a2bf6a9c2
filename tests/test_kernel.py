"""The `codeact` kernel, driven through jupyter_client as JupyterLab drives it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager
from kernel_harness import (
    TEST_KEY,
    execute,
    install_kernelspec,
    interrupt_when,
    kernel_env,
    running_kernel,
    user_messages,
)
from model_server import ScriptedModelServer, cut, error, hang, text

Kernel = tuple[KernelManager, BlockingKernelClient]


@pytest.fixture(scope="module")
def jupyter_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_kernelspec(tmp_path_factory.mktemp("prefix"))


@pytest.fixture(scope="module")
def kernel(jupyter_path: Path, _model_server_session: ScriptedModelServer) -> Iterator[Kernel]:
    with running_kernel(jupyter_path, kernel_env(_model_server_session.url)) as running:
        yield running


def all_text(request: dict[str, Any]) -> str:
    return json.dumps(request["body"]["messages"])


# --- 1. code cells are plain IPython ----------------------------------------------


def test_kernelspec_is_installed(jupyter_path: Path) -> None:
    spec = json.loads((jupyter_path / "kernels" / "codeact" / "kernel.json").read_text())
    assert spec["display_name"] == "CodeAct (Python 3)"
    assert spec["argv"][1:4] == ["-m", "codeact_kernel", "-f"]


def test_code_cells_run_as_in_ipython(kernel: Kernel, model_server: ScriptedModelServer) -> None:
    _, client = kernel
    assert execute(client, "x = 40 + 2\nprint(x)").stdout == "42\n"
    result = execute(client, "x")
    assert result.of_type("execute_result")[0]["content"]["data"]["text/plain"] == "42"
    assert "hello" in execute(client, "!echo hello").stdout
    assert execute(client, "%time y = 1").status == "ok"
    assert execute(
        client, "import asyncio\nawait asyncio.sleep(0.01)\nprint('awaited')"
    ).stdout == ("awaited\n")
    html = execute(client, "from IPython.display import HTML\nHTML('<b>bold</b>')")
    assert "text/html" in html.of_type("execute_result")[0]["content"]["data"]
    failure = execute(client, "1 / 0")
    assert failure.status == "error" and failure.content["ename"] == "ZeroDivisionError"
    assert failure.of_type("error")
    syntax = execute(client, "x = (1,")
    assert syntax.status == "error" and syntax.content["ename"] == "SyntaxError"
    assert model_server.requests == [], "no code cell may reach the model"


def test_help_completion_inspection_history(
    kernel: Kernel, model_server: ScriptedModelServer
) -> None:
    _, client = kernel
    execute(client, "import os\nvalue = 3")
    help_reply = execute(client, "os.path.join?")
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


def test_stdin_input(kernel: Kernel) -> None:
    _, client = kernel
    result = execute(client, "name = input('who? ')\nprint('hi', name)", on_stdin=lambda _: "Ada")
    assert result.stdout.endswith("hi Ada\n")


# --- 2-4. natural language runs the CodeAct loop ------------------------------------


def test_natural_language_cell_runs_actions_in_the_namespace(
    kernel: Kernel, model_server: ScriptedModelServer
) -> None:
    _, client = kernel
    execute(client, "data = [1, 2, 3, 6]")
    model_server.script(
        text("I'll compute the mean.\n```python\nmean = sum(data) / len(data)\nprint(mean)\n```"),
        text("The mean of `data` is **3.0**."),
    )
    result = execute(client, "compute the mean of data")
    assert result.status == "ok", result.content
    assert result.stdout == "3.0\n"
    assert "I'll compute the mean." in result.markdown
    assert "The mean of `data` is **3.0**." in result.markdown
    assert "CodeAct · 2 steps" in result.everything()
    first, second = model_server.requests
    assert "data" in all_text(first), "the namespace summary names the user's variables"
    assert "compute the mean of data" in user_messages(first)[-1]
    assert any("3.0" in m and "Observation" in m for m in user_messages(second))
    check = execute(client, "print(mean)")
    assert check.stdout == "3.0\n", "the action ran in the user's namespace"


def test_key_never_leaves_the_kernel(kernel: Kernel, model_server: ScriptedModelServer) -> None:
    _, client = kernel
    model_server.script(
        text("```python\nimport os\nprint(sorted(os.environ)[:0])\n```"), text("ok")
    )
    result = execute(client, "show me nothing much")
    assert result.status == "ok"
    assert TEST_KEY not in result.everything()
    assert model_server.requests[0]["headers"]["authorization"] == f"Bearer {TEST_KEY}"
    assert TEST_KEY not in all_text(model_server.requests[0])
    status = execute(client, "%codeact")
    assert TEST_KEY not in status.everything()


def test_secret_values_never_reach_the_model(
    kernel: Kernel, model_server: ScriptedModelServer
) -> None:
    _, client = kernel
    execute(client, "db_password = 'hunter2-correct-horse'")
    model_server.script(text("```python\nprint(db_password)\n```"), text("Printed it."))
    result = execute(client, "print the database password")
    assert result.status == "ok"
    assert "hunter2-correct-horse" in result.stdout, "the user still sees their own output"
    for request in model_server.requests:
        assert "hunter2-correct-horse" not in all_text(request)
        assert TEST_KEY not in all_text(request)


def test_prose_that_ipython_would_swallow_goes_to_the_model(
    kernel: Kernel, model_server: ScriptedModelServer
) -> None:
    _, client = kernel
    for prose in ("load the sales data", "run the analysis again", "what is the mean of data?"):
        model_server.script(text(f"Noted: {prose}."))
        result = execute(client, prose)
        assert result.status == "ok", (prose, result.content)
        assert f"Noted: {prose}." in result.markdown
    assert len(model_server.requests) == 3


def test_model_fixes_its_own_error(kernel: Kernel, model_server: ScriptedModelServer) -> None:
    _, client = kernel
    model_server.script(
        text("```python\nprint(undefined_name)\n```"),
        text(
            "Oops, I'll define it first.\n```python\nundefined_name = 7\nprint(undefined_name)\n```"
        ),
        text("Fixed: it prints 7."),
    )
    result = execute(client, "print the undefined name, defining it if needed")
    assert result.status == "ok", result.content
    assert result.stdout == "7\n"
    retry = model_server.requests[1]
    assert "NameError" in user_messages(retry)[-1], "the traceback is the next observation"


def test_retry_budget_ends_with_a_clear_error(
    kernel: Kernel, model_server: ScriptedModelServer
) -> None:
    _, client = kernel
    model_server.script(*[text("```python\n1 / 0\n```") for _ in range(4)])
    result = execute(client, "divide by zero forever")
    assert result.status == "error"
    assert result.content["ename"] == "RetryBudgetExhausted"
    assert "max_retries" in result.content["evalue"]
    assert len(model_server.requests) == 4


def test_step_budget(kernel: Kernel, model_server: ScriptedModelServer) -> None:
    _, client = kernel
    model_server.script(*[text("```python\nprint('again')\n```") for _ in range(2)])
    result = execute(client, "%%codeact --max-steps 2\nkeep printing")
    assert result.status == "error"
    assert result.content["ename"] == "StepBudgetExhausted"


def test_follow_up_remembers_the_conversation_and_user_cells(
    kernel: Kernel, model_server: ScriptedModelServer
) -> None:
    _, client = kernel
    execute(client, "%codeact reset")
    model_server.script(text("```python\ntotal = 10 + 5\n```"), text("Total is 15."))
    assert execute(client, "add ten and five into total").status == "ok"
    execute(client, "doubled = total * 2")
    model_server.script(text("It was 15; doubled is 30."))
    assert execute(client, "what did you compute before, and what did I do since").status == "ok"
    follow_up = all_text(model_server.requests[-1])
    assert "add ten and five into total" in follow_up
    assert "total = 10 + 5" in follow_up
    assert "Total is 15." in follow_up
    assert "doubled = total * 2" in follow_up


def test_codeact_magic_header_forces_natural_language(
    kernel: Kernel, model_server: ScriptedModelServer
) -> None:
    _, client = kernel
    model_server.script(text("That is valid Python, but you asked me."))
    result = execute(client, "%%codeact\nprint('hello')")
    assert result.status == "ok"
    assert result.stdout == ""
    assert "print('hello')" in user_messages(model_server.requests[0])[-1]
    bad = execute(client, "%%codeact --bogus\nanything")
    assert bad.status == "error" and "usage" in bad.content["evalue"]
    assert "Traceback" not in bad.everything()


# --- 5. interrupts ------------------------------------------------------------------


def test_interrupt_while_streaming_many_times(
    kernel: Kernel, model_server: ScriptedModelServer
) -> None:
    manager, client = kernel
    for _ in range(5):
        model_server.script(text("Thinking " * 200, chunk_size=4, delay=0.05))
        during, fired = interrupt_when(
            manager, lambda ms: any(m["msg_type"] == "display_data" for m in ms)
        )
        result = execute(client, "think out loud for a long time", during=during)
        assert fired, "the stream started"
        assert result.status == "error" and result.content["ename"] == "KeyboardInterrupt"
        assert time.monotonic() - fired[0] < 1.0
    assert manager.is_alive()
    assert execute(client, "print(1 + 1)").stdout == "2\n"


def test_interrupt_while_waiting_for_the_model(
    kernel: Kernel, model_server: ScriptedModelServer
) -> None:
    manager, client = kernel
    for _ in range(3):
        model_server.script(hang(30))
        started = time.monotonic()
        client.execute("wait for a silent model")
        time.sleep(0.5)
        interrupted = time.monotonic()
        manager.interrupt_kernel()
        reply = client.get_shell_msg(timeout=10)
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        assert time.monotonic() - interrupted < 1.0
        assert time.monotonic() - started < 5
    assert execute(client, "print('alive')").stdout == "alive\n"


def test_interrupt_during_an_action(kernel: Kernel, model_server: ScriptedModelServer) -> None:
    manager, client = kernel
    execute(client, "kept = 'intact'")
    for code in (
        "import time\nprint('sleeping', flush=True)\ntime.sleep(30)",
        "import asyncio\nprint('sleeping', flush=True)\nawait asyncio.sleep(30)",
    ):
        model_server.script(text(f"```python\n{code}\n```"))
        during, fired = interrupt_when(
            manager, lambda ms: any("sleeping" in m["content"].get("text", "") for m in ms)
        )
        result = execute(client, "sleep for a while", during=during)
        assert fired
        assert result.status == "error" and result.content["ename"] == "KeyboardInterrupt"
        assert time.monotonic() - fired[0] < 1.0
        assert len(model_server.requests) == 1, "an interrupt stops the loop"
        model_server.reset()
    assert execute(client, "print(kept)").stdout == "intact\n"


# --- 6. clear errors ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "ename", "hint"),
    [
        (error(401, "Incorrect API key provided"), "AuthenticationFailed", "CODEACT_API_KEY"),
        (error(500, "upstream exploded"), "ServerError", "upstream exploded"),
        (cut("partial answ"), "StreamError", ""),
    ],
)
def test_server_failures_give_clear_errors(
    kernel: Kernel, model_server: ScriptedModelServer, reply: Any, ename: str, hint: str
) -> None:
    _, client = kernel
    model_server.script(reply, reply, reply, reply)
    result = execute(client, "say something please")
    assert result.status == "error"
    assert result.content["ename"] == ename
    assert hint in result.content["evalue"]
    assert TEST_KEY not in result.everything()
    assert execute(client, "print('still alive')").stdout == "still alive\n"


def test_no_model_and_unreachable_endpoint(jupyter_path: Path) -> None:
    env = kernel_env(None)
    with running_kernel(jupyter_path, env) as (_, client):
        result = execute(client, "summarize the data")
        assert result.status == "error"
        assert result.content["ename"] == "ConfigurationError"
        assert "CODEACT_MODEL" in result.content["evalue"]
    env = kernel_env("http://127.0.0.1:9/v1")
    with running_kernel(jupyter_path, env) as (_, client):
        result = execute(client, "summarize the data", timeout=60)
        assert result.status == "error"
        assert result.content["ename"] == "ConnectionFailed"
        assert "127.0.0.1:9" in result.content["evalue"]
        assert execute(client, "print('alive')").stdout == "alive\n"


def test_is_complete_treats_prose_as_complete(kernel: Kernel) -> None:
    _, client = kernel
    client.is_complete("plot the revenue by month")
    assert client.get_shell_msg(timeout=10)["content"]["status"] == "complete"
    client.is_complete("def f(x):")
    assert client.get_shell_msg(timeout=10)["content"]["status"] == "incomplete"


def test_images_reach_the_user_and_a_placeholder_the_model(
    kernel: Kernel, model_server: ScriptedModelServer
) -> None:
    _, client = kernel
    pixel = (
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4"
        "DwABBAEAwS2OUAAAAABJRU5ErkJggg=="
    )
    code = (
        "import base64\nfrom IPython.display import Image, display\n"
        f"display(Image(base64.b64decode('{pixel}')))"
    )
    model_server.script(text(f"```python\n{code}\n```"), text("Shown."))
    result = execute(client, "show a tiny image")
    assert result.status == "ok"
    assert any("image/png" in m["content"]["data"] for m in result.of_type("display_data"))
    observation = user_messages(model_server.requests[1])[-1]
    assert "[image/png image shown to the user]" in observation
    assert pixel not in observation


@pytest.fixture(scope="module")
def strict_kernel(
    jupyter_path: Path, _model_server_session: ScriptedModelServer
) -> Iterator[Kernel]:
    """A kernel that asks before each action and stops actions after half a second."""
    env = kernel_env(_model_server_session.url, CODEACT_APPROVAL="ask", CODEACT_STEP_TIMEOUT="0.5")
    with running_kernel(jupyter_path, env) as running:
        yield running


def test_approval_asks_through_stdin(
    strict_kernel: Kernel, model_server: ScriptedModelServer
) -> None:
    _, client = strict_kernel
    prompts: list[str] = []

    def answer(answers: list[str]) -> Any:
        def reply(request: dict[str, Any]) -> str:
            prompts.append(request["content"]["prompt"])
            return answers.pop(0)

        return reply

    model_server.script(text("```python\napproved = 1\n```"), text("Done."))
    assert execute(client, "set approved", on_stdin=answer(["y"])).status == "ok"
    assert execute(client, "print(approved)").stdout == "1\n"
    assert "Run step 1?" in prompts[0]

    model_server.script(text("```python\ndeclined = 1\n```"), text("Understood, skipped."))
    assert execute(client, "set declined", on_stdin=answer(["n"])).status == "ok"
    assert "declined to run" in user_messages(model_server.requests[-1])[-1]
    assert (
        execute(client, "'declined' in dir()").of_type("execute_result")[0]["content"]["data"][
            "text/plain"
        ]
        == "False"
    )

    model_server.script(text("```python\nstopped = 1\n```"))
    stopped = execute(client, "set stopped", on_stdin=answer(["s"]))
    assert stopped.content["ename"] == "KeyboardInterrupt"
    assert execute(client, "print('stopped' in dir())").stdout == "False\n"

    model_server.script(text("```python\nnever = 1\n```"))
    unattended = execute(client, "set never")
    assert unattended.status == "error"
    assert unattended.content["ename"] == "ApprovalUnavailable"


def test_interrupt_while_asking_for_approval(
    strict_kernel: Kernel, model_server: ScriptedModelServer
) -> None:
    manager, client = strict_kernel
    model_server.script(text("```python\nwaiting = 1\n```"))
    client.execute("set waiting", allow_stdin=True)
    client.get_stdin_msg(timeout=10)
    interrupted = time.monotonic()
    manager.interrupt_kernel()
    reply = client.get_shell_msg(timeout=10)
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    assert time.monotonic() - interrupted < 1.0
    assert manager.is_alive()
    assert execute(client, "print('waiting' in dir())").stdout == "False\n"


def test_step_timeout_interrupts_the_action_and_tells_the_model(
    strict_kernel: Kernel, model_server: ScriptedModelServer
) -> None:
    _, client = strict_kernel
    model_server.script(
        text("```python\nimport time\ntime.sleep(20)\n```"), text("It took too long; stopping.")
    )
    result = execute(client, "sleep a long time", on_stdin=lambda _: "y")
    assert result.status == "ok"
    assert result.seconds < 10
    assert "step_timeout" in user_messages(model_server.requests[1])[-1]


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


def test_rate_limits_are_retried_with_visible_progress(
    kernel: Kernel, model_server: ScriptedModelServer
) -> None:
    _, client = kernel
    model_server.script(error(429, "slow down", headers={"retry-after": "0"}), text("Made it."))
    result = execute(client, "answer despite the rate limit")
    assert result.status == "ok"
    assert "Made it." in result.markdown
    assert "rate-limited, retrying in" in result.everything()
    assert len(model_server.requests) == 2


def test_context_too_long_is_shrunk_and_retried_once(
    kernel: Kernel, model_server: ScriptedModelServer
) -> None:
    _, client = kernel
    too_long = error(
        400, "This model's maximum context length is 8 tokens", code="context_length_exceeded"
    )
    model_server.script(too_long, text("Short enough now."))
    assert execute(client, "answer briefly").status == "ok"
    model_server.reset()
    model_server.script(too_long, too_long)
    result = execute(client, "answer briefly again")
    assert result.status == "error"
    assert result.content["ename"] == "ContextTooLong"


def test_a_cut_stream_keeps_the_partial_text(
    kernel: Kernel, model_server: ScriptedModelServer
) -> None:
    _, client = kernel
    model_server.script(cut("Here is the first half of my ans"))
    result = execute(client, "tell me something long")
    assert result.status == "error" and result.content["ename"] == "StreamError"
    assert "Here is the first half of my ans" in result.markdown


def test_action_payloads_do_not_reach_the_users_next_cell(
    kernel: Kernel, model_server: ScriptedModelServer
) -> None:
    _, client = kernel
    action = "get_ipython().set_next_input('overwritten!', replace=True)\nlen?"
    model_server.script(text(f"```python\n{action}\n```"), text("Done."))
    result = execute(client, "set the next input and show help on len")
    assert result.status == "ok"
    assert result.content["payload"] == []
    assert "Return the number of items" in result.everything(), "the help page shows inline"
    assert execute(client, "after = 1").content["payload"] == []


def test_an_interrupt_caught_by_the_action_still_stops_the_request(
    kernel: Kernel, model_server: ScriptedModelServer
) -> None:
    manager, client = kernel
    code = (
        "import time\ntry:\n    print('working', flush=True)\n    time.sleep(30)\n"
        "except KeyboardInterrupt:\n    print('saved my work')"
    )
    model_server.script(text(f"```python\n{code}\n```"), text("Carrying on regardless."))
    during, fired = interrupt_when(
        manager, lambda ms: any("working" in m["content"].get("text", "") for m in ms)
    )
    result = execute(client, "work until stopped", during=during)
    assert fired
    assert result.content["ename"] == "KeyboardInterrupt"
    assert "saved my work" in result.stdout
    assert len(model_server.requests) == 1


def test_a_bad_setting_is_reported_at_the_first_request_not_at_start(
    jupyter_path: Path, model_server: ScriptedModelServer
) -> None:
    env = kernel_env(model_server.url, CODEACT_APPROVAL="never")
    with running_kernel(jupyter_path, env) as (_, client):
        assert execute(client, "print('started')").stdout == "started\n"
        result = execute(client, "summarize the data")
        assert result.content["ename"] == "ConfigurationError"
        assert "approval must be auto or ask" in result.content["evalue"]
