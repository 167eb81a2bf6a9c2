"""What a request does, the same through either host, driven through jupyter_client.

Each test runs once per host (kernel_harness.Host): the `codeact` kernel, where a
natural-language cell is the request, and the stock `python3` kernel after
`%load_ext codeact_kernel`, where a `%%codeact` cell is. Behaviour that differs
between them is tested in test_kernel.py and test_magics_kernel.py.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kernel_harness import (
    HOSTS,
    TEST_KEY,
    Execution,
    Host,
    HostName,
    all_text,
    interrupt_when,
    kernel_env,
    shell_reply,
    start_host,
    user_messages,
)
from model_server import ScriptedModelServer, cut, error, hang, text

pytest_plugins = ("kernel_harness",)

APPROVAL_PROMPT = "Run step 1? [Y]es / [n]o (skip) / [s]top: "


def assert_short_error(result: Execution, ename: str) -> None:
    """An error reply that names the problem in one line, without the key."""
    assert result.status == "error", result.content
    assert result.content["ename"] == ename, result.content
    assert len(result.content["traceback"]) == 1, "one line, not the host's frames"
    assert TEST_KEY not in result.everything()


def answering(answer: str, prompts: list[str]) -> Callable[[dict[str, Any]], str]:
    """An `on_stdin` that records each prompt in `prompts` and answers `answer`."""

    def reply(request: dict[str, Any]) -> str:
        prompts.append(request["content"]["prompt"])
        return answer

    return reply


@pytest.fixture
def strict_host(host: Host) -> Iterator[Host]:
    """The host, asking before each action and stopping an action after half a second."""
    with host.settings(approval="ask", step_timeout="0.5"):
        yield host


# --- a request runs the CodeAct loop in the user's namespace --------------------------


def test_an_action_cannot_start_a_nested_request(
    host: Host, model_server: ScriptedModelServer
) -> None:
    """`%%codeact` written by the model is refused as an observation, in both hosts."""
    model_server.script(
        text("```python\n%%codeact\nplot it for me\n```"), text("I will write the code myself.")
    )
    result = host.request("draw something")
    assert result.status == "ok", result.content
    assert len(model_server.requests) == 2, "the nested request never reached the model"
    observation = user_messages(model_server.requests[1])[-1]
    assert "UsageError: %%codeact cannot run inside an action" in observation
    assert host.execute("print('alive')").stdout == "alive\n"


def test_a_request_runs_actions_in_the_namespace(
    host: Host, model_server: ScriptedModelServer
) -> None:
    host.execute("data = [1, 2, 3, 6]")
    model_server.script(
        text(
            "I'll compute the mean.\n```python\nmean = sum(data) / len(data)\nprint(mean)\n```",
            chunk_size=4,
            delay=0.03,
        ),
        text("The mean of `data` is **3.0**."),
    )
    result = host.request("compute the mean of data")
    assert result.status == "ok", result.content
    assert result.stdout == "3.0\n", "the action's output, live, in the cell"
    assert len(result.of_type("update_display_data")) >= 3, "the answer streams in place"
    assert "I'll compute the mean." in result.markdown
    assert "The mean of `data` is **3.0**." in result.markdown
    assert "CodeAct · 1 step · " in result.everything(), "the answer is not a step"
    assert TEST_KEY not in result.everything()
    first, second = model_server.requests
    assert "data" in all_text(first), "the namespace summary names the user's variables"
    assert "compute the mean of data" in user_messages(first)[-1]
    assert any("3.0" in m and "Observation" in m for m in user_messages(second))
    check = host.execute("print(mean)")
    assert check.stdout == "3.0\n", "the action ran in the user's namespace"


def test_a_follow_up_remembers_the_conversation_and_the_users_cells(
    host: Host, model_server: ScriptedModelServer
) -> None:
    host.execute("%codeact reset")
    model_server.script(text("```python\ntotal = 10 + 5\n```"), text("Total is 15."))
    assert host.request("add ten and five into total").status == "ok"
    host.execute("doubled = total * 2")
    # What manages CodeAct is not the user's work, in either host; the rest of its cell is.
    host.execute("%codeact status")
    host.execute("%codeact max_steps 7\nhalved = total / 2")
    host.execute("%codeact unset max_steps")
    model_server.script(text("It was 15; doubled is 30."))
    assert host.request("what did you compute before, and what did I do since").status == "ok"
    follow_up = all_text(model_server.requests[-1])
    assert follow_up.count("add ten and five into total") == 1, "the request, not a cell too"
    assert "total = 10 + 5" in follow_up
    assert "Total is 15." in follow_up
    assert "doubled = total * 2" in follow_up
    assert "halved = total / 2" in follow_up
    assert "%codeact" not in follow_up


def test_a_codeact_cell_sends_its_body_to_the_model_even_if_it_is_python(
    host: Host, model_server: ScriptedModelServer
) -> None:
    model_server.script(text("That is valid Python, but you asked me."))
    result = host.execute("%%codeact\nprint('hello')")
    assert result.status == "ok"
    assert result.stdout == ""
    assert "print('hello')" in user_messages(model_server.requests[0])[-1]


def test_the_model_fixes_its_own_error(host: Host, model_server: ScriptedModelServer) -> None:
    model_server.script(
        text("```python\nprint(undefined_name)\n```"),
        text(
            "Oops, I'll define it first.\n```python\nundefined_name = 7\nprint(undefined_name)\n```"
        ),
        text("Fixed: it prints 7."),
    )
    result = host.request("print the undefined name, defining it if needed")
    assert result.status == "ok", result.content
    assert result.stdout == "7\n"
    retry = model_server.requests[1]
    assert "NameError" in user_messages(retry)[-1], "the traceback is the next observation"


# A 1×1 PNG, and the head of a JPEG (what its media type is told by).
PIXEL = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4"
    "DwABBAEAwS2OUAAAAABJRU5ErkJggg=="
)
JPEG = "/9j/4AAQSkZJRgABAQAAAQABAAD"
SHOW_IMAGES = (
    "import base64\nfrom IPython.display import SVG, Image, display\n"
    f"display(Image(base64.b64decode('{PIXEL}')))\n"
    f"display({{'image/jpeg': '{JPEG}'}}, raw=True)\n"
    "display(SVG('<svg xmlns=\"http://www.w3.org/2000/svg\"/>'))"
)


def test_images_reach_the_user_and_a_placeholder_the_model(
    host: Host, model_server: ScriptedModelServer
) -> None:
    pixel = PIXEL
    code = (
        "import base64\nfrom IPython.display import Image, display\n"
        f"display(Image(base64.b64decode('{pixel}')))"
    )
    model_server.script(text(f"```python\n{code}\n```"), text("Shown."))
    result = host.request("show a tiny image")
    assert result.status == "ok"
    assert any("image/png" in m["content"]["data"] for m in result.of_type("display_data"))
    observation = user_messages(model_server.requests[1])[-1]
    assert "[image/png image shown to the user]" in observation
    assert pixel not in observation


def test_vision_sends_the_png_and_jpeg_images_an_action_displayed(
    host: Host, model_server: ScriptedModelServer
) -> None:
    """`%codeact vision on`: the images ride along with their observation, in OpenAI's
    parts, for this request only; SVG stays a placeholder. Off (the test model is no
    vision family, so `auto` is off), the observation is text."""
    action = text(f"```python\n{SHOW_IMAGES}\n```")
    model_server.script(action, text("Seen."), text("Next."), action, text("Plain."))
    with host.settings(vision="on"):
        assert host.request("show the images").status == "ok"
        assert host.request("what next?").status == "ok"
    assert host.request("show them again").status == "ok"
    parts = model_server.requests[1]["body"]["messages"][-1]["content"]
    assert [part["type"] for part in parts] == ["text", "image_url", "image_url"]
    assert parts[0]["text"].startswith("Observation:\n[image/png image shown to the user]")
    assert "[image/svg+xml image shown to the user]" in parts[0]["text"]
    assert [part["image_url"]["url"] for part in parts[1:]] == [
        f"data:image/png;base64,{PIXEL}",
        f"data:image/jpeg;base64,{JPEG}",
    ]
    assert "image_url" not in all_text(model_server.requests[2]), "sent with its request only"
    plain = model_server.requests[4]["body"]["messages"][-1]["content"]
    assert isinstance(plain, str) and "[image/jpeg image shown to the user]" in plain
    assert "image_url" not in all_text(model_server.requests[4])


# --- secrets ---------------------------------------------------------------------------


def test_the_key_never_leaves_the_kernel(host: Host, model_server: ScriptedModelServer) -> None:
    model_server.script(
        text("```python\nimport os\nprint(sorted(os.environ)[:0])\n```"), text("ok")
    )
    result = host.request("show me nothing much")
    assert result.status == "ok"
    assert TEST_KEY not in result.everything()
    assert model_server.requests[0]["headers"]["authorization"] == f"Bearer {TEST_KEY}"
    assert TEST_KEY not in all_text(model_server.requests[0])
    status = host.execute("%codeact")
    assert TEST_KEY not in status.everything()


def test_secret_values_never_reach_the_model(host: Host, model_server: ScriptedModelServer) -> None:
    host.execute("db_password = 'hunter2-correct-horse'")
    model_server.script(text("```python\nprint(db_password)\n```"), text("Printed it."))
    result = host.request("print the database password")
    assert result.status == "ok"
    assert "hunter2-correct-horse" in result.stdout, "the user still sees their own output"
    for request in model_server.requests:
        assert "hunter2-correct-horse" not in all_text(request)
        assert TEST_KEY not in all_text(request)


# --- `%codeact` -------------------------------------------------------------------------


def test_status_and_config_come_from_the_kernel_config(
    host: Host, model_server: ScriptedModelServer
) -> None:
    status = host.execute("%codeact")
    assert "openai:test-model" in status.stdout and model_server.url in status.stdout
    assert TEST_KEY not in status.everything()
    config = host.execute("%codeact config").stdout
    line = next(x for x in config.splitlines() if x.startswith("observation_chars"))
    assert line.split() == ["observation_chars", "1234", "config"]


# --- clear, short errors ----------------------------------------------------------------


@pytest.mark.parametrize(
    "cell",
    [
        "%%codeact --bogus\nhello",
        "%%codeact --model nope\nhello",
        "%%codeact --model nonsense:x\nhello",
        "%%codeact --max-steps 0\nhello",
        "%%codeact\n  \n",
    ],
)
def test_a_bad_codeact_cell_is_a_short_usage_error(
    host: Host, model_server: ScriptedModelServer, cell: str
) -> None:
    bad = host.execute(cell)
    assert bad.status == "error"
    assert bad.content["ename"] == "UsageError"
    assert "usage" in bad.content["evalue"]
    assert "Traceback" not in bad.everything()
    assert model_server.requests == []
    assert host.execute("print('alive')").stdout == "alive\n"


def test_the_retry_budget_ends_with_a_clear_error(
    host: Host, model_server: ScriptedModelServer
) -> None:
    model_server.script(*[text("```python\n1 / 0\n```") for _ in range(4)])
    result = host.request("divide by zero forever")
    assert_short_error(result, "RetryBudgetExhausted")
    assert "max_retries" in result.content["evalue"]
    assert len(model_server.requests) == 4


def test_the_step_budget_ends_with_a_clear_error(
    host: Host, model_server: ScriptedModelServer
) -> None:
    model_server.script(*[text("```python\nprint('again')\n```") for _ in range(2)])
    result = host.request("keep printing", "--max-steps 2")
    assert_short_error(result, "StepBudgetExhausted")


@pytest.mark.parametrize(
    ("reply", "ename", "hint"),
    [
        (error(401, "Incorrect API key provided"), "AuthenticationFailed", "CODEACT_API_KEY"),
        (error(500, "upstream exploded"), "ServerError", "upstream exploded"),
        (cut("partial answ"), "StreamError", ""),
    ],
)
def test_server_failures_give_clear_errors(
    host: Host, model_server: ScriptedModelServer, reply: Any, ename: str, hint: str
) -> None:
    model_server.script(reply, reply, reply, reply)
    result = host.request("say something please")
    assert_short_error(result, ename)
    assert hint in result.content["evalue"]
    assert host.execute("print('still alive')").stdout == "still alive\n"


def test_a_cut_stream_keeps_the_partial_text(host: Host, model_server: ScriptedModelServer) -> None:
    model_server.script(cut("Here is the first half of my ans"))
    result = host.request("tell me something long")
    assert result.status == "error" and result.content["ename"] == "StreamError"
    assert "Here is the first half of my ans" in result.markdown


def test_rate_limits_are_retried_with_visible_progress(
    host: Host, model_server: ScriptedModelServer
) -> None:
    model_server.script(error(429, "slow down", headers={"retry-after": "0"}), text("Made it."))
    result = host.request("answer despite the rate limit")
    assert result.status == "ok"
    assert "Made it." in result.markdown
    assert "rate-limited, retrying in" in result.everything()
    assert len(model_server.requests) == 2


def test_context_too_long_is_shrunk_and_retried_once(
    host: Host, model_server: ScriptedModelServer
) -> None:
    too_long = error(
        400, "This model's maximum context length is 8 tokens", code="context_length_exceeded"
    )
    model_server.script(too_long, text("Short enough now."))
    assert host.request("answer briefly").status == "ok"
    model_server.reset()
    model_server.script(too_long, too_long)
    result = host.request("answer briefly again")
    assert result.status == "error"
    assert result.content["ename"] == "ContextTooLong"


def test_an_unreachable_endpoint_gives_a_clear_error(
    host: Host, model_server: ScriptedModelServer
) -> None:
    with host.settings(base_url="http://127.0.0.1:9/v1"):
        result = host.request("summarize the data", timeout=60)
    assert_short_error(result, "ConnectionFailed")
    assert "127.0.0.1:9" in result.content["evalue"]
    assert host.execute("print('alive')").stdout == "alive\n"


@pytest.mark.parametrize("name", HOSTS)
def test_no_model_gives_a_clear_error(name: HostName, jupyter_path: Path) -> None:
    with start_host(name, jupyter_path, kernel_env(None)) as host:
        result = host.request("summarize the data")
        assert_short_error(result, "ConfigurationError")
        assert "CODEACT_MODEL" in result.content["evalue"]


@pytest.mark.parametrize("name", HOSTS)
def test_a_detected_model_is_named_in_the_footer(
    name: HostName, jupyter_path: Path, model_server: ScriptedModelServer
) -> None:
    """No CODEACT_MODEL: the model is detected before anything is rendered."""
    model_server.models = ["served-model"]
    model_server.script(text("```python\nfound = 1\n```"), text("Done."))
    with start_host(
        name, jupyter_path, kernel_env(None, CODEACT_BASE_URL=model_server.url)
    ) as host:
        result = host.request("set found")
        assert result.status == "ok", result.content
        footer = result.markdown.strip().splitlines()[-1]
        assert footer.startswith("<sub>CodeAct · 1 step · ")
        assert footer.endswith("· openai:served-model</sub>")
        status = host.execute("%codeact").stdout
        assert "model     openai:served-model (detected)" in status, status
    assert model_server.requests[-1]["body"]["model"] == "served-model"


@pytest.mark.parametrize("name", HOSTS)
def test_an_interrupt_before_the_model_is_reached_says_nothing_was_kept(
    name: HostName, jupyter_path: Path
) -> None:
    """Interrupted while the model is being detected (a server that never answers)."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/v1"
        with start_host(name, jupyter_path, kernel_env(None, CODEACT_BASE_URL=url)) as host:
            msg_id = host.client.execute(host.cell("summarize the data"), stop_on_error=False)
            time.sleep(0.5)
            host.manager.interrupt_kernel()
            reply = shell_reply(host.client, msg_id)["content"]
            assert reply["ename"] == "KeyboardInterrupt"
            assert "before it reached the model" in reply["evalue"]
            assert "kept in the conversation" not in reply["evalue"]
            assert host.execute("print('alive')").stdout == "alive\n"


# --- approval ----------------------------------------------------------------------------


def test_approval_through_stdin(host: Host, model_server: ScriptedModelServer) -> None:
    prompts: list[str] = []
    ask = "--approval ask"

    model_server.script(text("```python\napproved = 'yes'\n```"), text("Done."))
    result = host.request("set approved", ask, on_stdin=answering("y", prompts))
    assert result.status == "ok", result.content
    assert host.execute("print(approved)").stdout == "yes\n"

    model_server.script(text("```python\ndeclined = 1\n```"), text("Understood, skipped."))
    assert host.request("set declined", ask, on_stdin=answering("n", prompts)).status == "ok"
    assert "declined to run" in user_messages(model_server.requests[-1])[-1]
    assert host.execute("print('declined' in dir())").stdout == "False\n"

    model_server.script(text("```python\nstopped = 1\n```"))
    stopped = host.request("set stopped", ask, on_stdin=answering("s", prompts))
    assert stopped.content["ename"] == "KeyboardInterrupt"
    assert host.execute("print('stopped' in dir())").stdout == "False\n"
    assert prompts == [APPROVAL_PROMPT] * 3

    model_server.script(text("```python\nnever = 1\n```"))
    unattended = host.request("set never", ask)
    assert_short_error(unattended, "ApprovalUnavailable")
    assert "%codeact approval auto" in unattended.content["evalue"]


@pytest.mark.timing
def test_interrupt_while_asking_for_approval(
    strict_host: Host, model_server: ScriptedModelServer
) -> None:
    host = strict_host
    model_server.script(text("```python\nwaiting = 1\n```"))
    msg_id = host.client.execute(host.cell("set waiting"), allow_stdin=True, stop_on_error=False)
    assert host.client.get_stdin_msg(timeout=10)["content"]["prompt"] == APPROVAL_PROMPT
    interrupted = time.monotonic()
    host.manager.interrupt_kernel()
    reply = shell_reply(host.client, msg_id)
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    assert time.monotonic() - interrupted < 1.0
    assert host.manager.is_alive()
    assert host.execute("print('waiting' in dir())").stdout == "False\n"


def test_step_timeout_interrupts_the_action_and_tells_the_model(
    strict_host: Host, model_server: ScriptedModelServer
) -> None:
    model_server.script(
        text("```python\nimport time\ntime.sleep(20)\n```"), text("It took too long; stopping.")
    )
    result = strict_host.request("sleep a long time", on_stdin=lambda _: "y")
    assert result.status == "ok"
    assert result.seconds < 10
    assert "step_timeout" in user_messages(model_server.requests[1])[-1]


# --- interrupts ----------------------------------------------------------------------------


@pytest.mark.timing
def test_interrupt_while_streaming_many_times(
    host: Host, model_server: ScriptedModelServer
) -> None:
    for _ in range(5):
        model_server.script(text("Thinking " * 200, chunk_size=4, delay=0.05))
        during, fired = interrupt_when(
            host.manager, lambda ms: any(m["msg_type"] == "update_display_data" for m in ms)
        )
        result = host.request("think out loud for a long time", during=during)
        assert fired, "the stream started"
        assert result.status == "error" and result.content["ename"] == "KeyboardInterrupt"
        assert time.monotonic() - fired[0] < 1.0
    assert host.manager.is_alive()
    assert host.execute("print(1 + 1)").stdout == "2\n"


@pytest.mark.timing
def test_interrupt_while_the_model_is_silent(host: Host, model_server: ScriptedModelServer) -> None:
    for _ in range(3):
        model_server.script(hang(30))
        started = time.monotonic()
        msg_id = host.client.execute(host.cell("wait for a silent model"), stop_on_error=False)
        model_server.wait_for_requests(1, timeout=30)
        time.sleep(0.2)
        interrupted = time.monotonic()
        host.manager.interrupt_kernel()
        reply = shell_reply(host.client, msg_id)
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        assert time.monotonic() - interrupted < 1.0
        assert time.monotonic() - started < 5
        model_server.reset()
    assert host.manager.is_alive()
    assert host.execute("print('alive')").stdout == "alive\n"


@pytest.mark.timing
def test_interrupt_during_an_action_many_times(
    host: Host, model_server: ScriptedModelServer
) -> None:
    host.execute("kept = 'intact'")
    for _ in range(3):
        model_server.script(
            text("```python\nimport time\nprint('sleeping', flush=True)\ntime.sleep(30)\n```")
        )
        result, after = host.request_interrupted("sleep for a while", once_shown="sleeping")
        assert after is not None, "the action started"
        assert result.status == "error" and result.content["ename"] == "KeyboardInterrupt"
        assert after < 1.0
        assert len(model_server.requests) == 1, "an interrupt stops the loop"
        model_server.reset()
    assert host.manager.is_alive()
    assert host.execute("print(kept)").stdout == "intact\n"


def test_an_interrupt_caught_by_the_action_still_stops_the_request(
    host: Host, model_server: ScriptedModelServer
) -> None:
    code = (
        "import time\ntry:\n    print('working', flush=True)\n    time.sleep(30)\n"
        "except KeyboardInterrupt:\n    print('saved my work')"
    )
    model_server.script(text(f"```python\n{code}\n```"), text("Carrying on regardless."))
    result, after = host.request_interrupted("work until stopped", once_shown="working")
    assert after is not None, "the action started"
    assert result.content["ename"] == "KeyboardInterrupt"
    assert "saved my work" in result.stdout
    assert len(model_server.requests) == 1
