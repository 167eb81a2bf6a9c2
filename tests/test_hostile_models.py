"""Models that misbehave, through real kernels: each test runs once per host (the
`codeact` kernel and `%%codeact` in a stock kernel), driven through jupyter_client.

Answers cut at the output limit, servers that ignore stop sequences, runaway answers
streamed to the frontend, interrupted answers and what the model is told of them.
The in-process side of the same rules is in test_agent.py and test_context.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kernel_harness import Execution, Host, interrupt_when
from model_server import ScriptedModelServer, text

pytest_plugins = ("kernel_harness",)


def latest_markdown(result: Execution) -> list[str]:
    """The latest Markdown of every display in the cell, in the order they appeared."""
    latest: dict[str, str] = {}
    for message in result.of_type("display_data", "update_display_data"):
        content = message["content"]
        display_id = content.get("transient", {}).get("display_id") or message["header"]["msg_id"]
        if "text/markdown" in content["data"]:
            latest[display_id] = content["data"]["text/markdown"]
    return list(latest.values())


def display_bytes(result: Execution) -> int:
    """What the Markdown displays sent over IOPub, in bytes of JSON."""
    return sum(
        len(json.dumps(m["content"])) for m in result.of_type("display_data", "update_display_data")
    )


def messages_of(request: dict[str, Any]) -> list[dict[str, Any]]:
    return list(request["body"]["messages"])


@pytest.fixture(autouse=True)
def clean_slate(host: Host) -> None:
    host.execute("flag = 'unset'")
    host.execute("%codeact reset")


# --- 1. answers cut at the output limit ------------------------------------------------------


@pytest.mark.parametrize(
    "cut",
    [
        "I'll write it all at once.\n```python\nflag = 'cut'\nrows = [\n    1,\n    2,",
        "Looks complete, but the limit hit right here:\n```python\nflag = 'cut'\n```",
    ],
)
def test_a_truncated_answer_is_not_run_and_both_user_and_model_are_told(
    host: Host, model_server: ScriptedModelServer, cut: str
) -> None:
    model_server.script(
        text(cut, finish="length"),
        text("Shorter this time.\n```python\nflag = 'short'\n```"),
        text("Done."),
    )
    result = host.request("set the flag")
    assert result.status == "ok", result.content
    assert host.execute("print(flag)").stdout == "short\n"
    shown = "\n".join(latest_markdown(result))
    assert "cut off at the output limit" in shown and "not run" in shown
    retry = messages_of(model_server.requests[1])
    assert retry[-1]["role"] == "user"
    assert retry[-1]["content"].startswith("Observation:\n[Your answer was cut off at the output")


def test_a_model_that_always_overruns_stops_at_max_retries(
    host: Host, model_server: ScriptedModelServer
) -> None:
    overrun = text("```python\nflag = 'never'\n```", finish="length")
    model_server.script(*[overrun] * 6)
    with host.settings(max_retries="1"):
        result = host.request("loop forever")
    assert result.status == "error" and result.content["ename"] == "RetryBudgetExhausted"
    assert "output limit" in result.content["evalue"]
    assert len(model_server.requests) == 2
    assert host.execute("print(flag)").stdout == "unset\n"


# --- 2. servers that ignore stop sequences -------------------------------------------------


@pytest.mark.parametrize(
    ("action_format", "answer"),
    [
        (
            "execute",
            "Setting it.\n<execute>\nflag = 'first'\n</execute>\nObservation:\nDone\n"
            "<execute>\nflag = 'second'\n</execute>\nAll set.",
        ),
        (
            "markdown",
            "Setting it.\n```python\nflag = 'first'\n```\nObservation:\nDone\n"
            "```python\nflag = 'second'\n```\nAll set.",
        ),
        (
            "markdown",
            "Setting it.\n```python\nflag = 'first'\n```\nThat worked, so next:\n"
            "```python\nflag = 'second'\n```",
        ),
    ],
)
def test_an_answer_ends_after_its_first_action_whatever_the_server_does(
    host: Host, model_server: ScriptedModelServer, action_format: str, answer: str
) -> None:
    model_server.script(text(answer, ignore_stop=True), text("It is set."))
    result = host.request("set the flag", f"--format {action_format}")
    assert result.status == "ok", result.content
    assert host.execute("print(flag)").stdout == "first\n"
    shown = "\n".join(latest_markdown(result))
    assert "second" not in shown and "Observation" not in shown and "All set" not in shown
    kept = messages_of(model_server.requests[1])[-2]
    assert kept["role"] == "assistant" and "second" not in kept["content"]


# --- text that is not valid UTF-8 --------------------------------------------------------------


def test_an_answer_that_is_not_valid_utf8_is_shown_and_remembered_safely(
    host: Host, model_server: ScriptedModelServer
) -> None:
    # A server's JSON may escape lone surrogates ("\ud800"); they cannot be encoded.
    model_server.script(text("Files: caf\udce9.txt and \ud800.", chunk_size=5), text("Again."))
    result = host.request("list the odd files")
    assert result.status == "ok", result.content
    assert "Files: caf\ufffd.txt and \ufffd." in latest_markdown(result)[0]
    assert host.request("and once more").status == "ok"
    said = messages_of(model_server.requests[-1])[2]
    assert said == {"role": "assistant", "content": "Files: caf\ufffd.txt and \ufffd."}


# --- 4. a runaway answer streamed to the frontend ----------------------------------------------


def test_a_long_streamed_answer_sends_bounded_updates_and_ends_whole(
    host: Host, model_server: ScriptedModelServer
) -> None:
    essay = "".join(f"Paragraph {i}: " + "words and more words " * 10 + "\n\n" for i in range(300))
    model_server.script(text(essay, chunk_size=40, delay=0.002))
    result = host.request("write at length")
    assert result.status == "ok", result.content
    assert latest_markdown(result)[0] == essay.strip() or latest_markdown(result)[0] == essay
    sent = display_bytes(result)
    # The cap (~100 KB/s of updates) plus the final text; re-sending the whole text ten
    # times a second sent about 2.6 MB here.
    assert sent < 100_000 * result.seconds + 6 * len(essay), (sent, result.seconds)


# --- 5, 6. interrupted answers stay in the conversation, and turns stay apart ----------------


def test_an_interrupted_answer_is_kept_as_the_user_saw_it(
    host: Host, model_server: ScriptedModelServer
) -> None:
    poem = "".join(f"Line {i}: roses are red, violets are blue.\n" for i in range(400))
    model_server.script(text(poem, chunk_size=8, delay=0.01))
    during, fired = interrupt_when(
        host.manager,
        lambda ms: any("Line 3:" in json.dumps(m["content"].get("data", {})) for m in ms),
    )
    result = host.request("write a poem", during=during)
    assert fired and result.content["ename"] == "KeyboardInterrupt"
    seen = latest_markdown(result)[0]
    assert "Line 3:" in seen and len(seen) < len(poem)

    model_server.script(text("Roses are red; that is all."))
    assert host.request("make it shorter").status == "ok"
    messages = messages_of(model_server.requests[-1])
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1]["content"] == "write a poem"
    note = "[This request ended without a final answer: interrupted by the user.]"
    assert messages[2]["content"] == f"{seen.strip()}\n\n{note}", "what the user saw, marked"
    assert messages[3]["content"] == "make it shorter", "the follow-up is its own message"


def test_an_interrupted_code_answer_does_not_pretend_it_ran(
    host: Host, model_server: ScriptedModelServer
) -> None:
    code = "".join(f"flag = 'line {i}'\n" for i in range(300))
    model_server.script(text(f"Setting it.\n```python\n{code}```", chunk_size=8, delay=0.01))
    during, fired = interrupt_when(
        host.manager,
        lambda ms: any("line 3" in json.dumps(m["content"].get("data", {})) for m in ms),
    )
    result = host.request("set the flag slowly", during=during)
    assert fired and result.content["ename"] == "KeyboardInterrupt"
    assert host.execute("print(flag)").stdout == "unset\n"

    model_server.script(text("It did not run."))
    assert host.request("did it run?").status == "ok"
    messages = messages_of(model_server.requests[-1])
    assert [m["role"] for m in messages] == ["system"] + ["user", "assistant"] * 2 + ["user"]
    assert messages[3]["content"].startswith("Observation:\n[The user interrupted the request")
    assert messages[-1]["content"].endswith("```python\nprint(flag)\n```\n\ndid it run?")
