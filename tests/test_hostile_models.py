"""Models that misbehave, through real kernels: each test runs once per host (the
`codeact` kernel and `%%codeact` in a stock kernel), driven through jupyter_client.

Answers cut at the output limit, servers that ignore stop sequences, long answers and
the next request's budget, the output limit asked for, runaway answers streamed to the
frontend, interrupted answers and what the model is told of them; then providers whose
replies are not the stream asked for, and servers that hang. Tests that hold for every
API run against the scripted server in each dialect (`provider`). The in-process side
of the same rules is in test_agent.py, test_context.py and test_providers_*.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from kernel_harness import TEST_KEY, Execution, Host, interrupt_when
from model_server import ScriptedModelServer, hang, raw, text

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


PROVIDERS = ("openai", "anthropic", "ollama")


@contextmanager
def provider(host: Host, server: ScriptedModelServer, name: str) -> Iterator[None]:
    """Requests go to the scripted server in `name`'s API for the duration (the hosts
    start with `openai:`)."""
    if name == "openai":
        yield
        return
    with host.settings(model=f"{name}:test-model", base_url=server.root):
        yield


@contextmanager
def environment(host: Host, **values: str) -> Iterator[None]:
    """Variables in the kernel's environment for the duration, set as a user does (`%env`)."""
    try:
        for name, value in values.items():
            assert host.execute(f"%env {name}={value}").status == "ok"
        yield
    finally:
        host.execute(f"import os; [os.environ.pop(n, None) for n in {list(values)!r}]")


def turns(request: dict[str, Any]) -> list[tuple[str, str]]:
    """(role, text) of each turn of a logged request, whatever the API (Anthropic's system
    prompt travels apart, and its turns may be lists of blocks)."""
    said = []
    for message in request["body"]["messages"]:
        content = message["content"]
        if isinstance(content, list):
            content = "\n\n".join(block["text"] for block in content if block["type"] == "text")
        said.append((message["role"], content))
    return [turn for turn in said if turn[0] != "system"]


def output_limit(request: dict[str, Any]) -> int | None:
    """The output limit a logged request asked for, in its API's field."""
    body = request["body"]
    if request["path"] == "/api/chat":
        return body.get("options", {}).get("num_predict")
    return body.get("max_tokens")


@pytest.fixture(autouse=True)
def clean_slate(host: Host) -> None:
    host.execute("flag = 'unset'")
    host.execute("%codeact reset")


# --- 1. answers cut at the output limit ------------------------------------------------------


CUTS = {
    "open-code": "I'll write it all at once.\n```python\nflag = 'cut'\nrows = [\n    1,\n    2,",
    "closed-code": "Looks complete, but the limit hit right here:\n```python\nflag = 'cut'\n```",
    "open-execute": "Setting it.\n<execute>\nflag = 'cut'\nfor i in range(3):",
    "prose": "The flag is a string that says which way the analysis went, and to set it",
}


@pytest.mark.parametrize("api", PROVIDERS)
@pytest.mark.parametrize("cut", list(CUTS))
def test_a_truncated_answer_is_not_run_and_both_user_and_model_are_told(
    host: Host, model_server: ScriptedModelServer, api: str, cut: str
) -> None:
    # OpenAI's finish_reason "length", Anthropic's stop_reason "max_tokens", Ollama's
    # done_reason "length".
    model_server.script(
        text(CUTS[cut], finish="length"),
        text("Shorter this time.\n```python\nflag = 'short'\n```"),
        text("Done."),
    )
    with provider(host, model_server, api):
        result = host.request("set the flag")
    assert result.status == "ok", result.content
    assert host.execute("print(flag)").stdout == "short\n"
    shown = "\n".join(latest_markdown(result))
    told = "so its code was not run" if cut != "prose" else "the model is asked to go on"
    assert f"cut off at the output limit (4,096 tokens){',' if cut != 'prose' else ';'}" in shown
    assert told in shown
    retry = turns(model_server.requests[1])
    assert [role for role, _ in retry] == ["user", "assistant", "user"]
    assert retry[1][1].startswith(CUTS[cut][:20]), "the cut answer stays, as the user saw it"
    assert retry[-1][1].startswith("Observation:\n[Your answer was cut off at the output limit")
    assert ("Go on from where it stopped" in retry[-1][1]) == (cut == "prose")


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


# Reasons a server stops an answer early other than the output limit, in each API's
# words, and how the user is told.
STOPS = {
    "openai-content_filter": (
        "openai",
        "content_filter",
        "the provider's content filter stopped it",
    ),
    "openai-unknown": ("openai", "recitation", "the server stopped it, saying 'recitation'"),
    "anthropic-refusal": ("anthropic", "refusal", "the model refused"),
    "anthropic-pause_turn": ("anthropic", "pause_turn", "the server paused it"),
    "ollama-content_filter": (
        "ollama",
        "content_filter",
        "the provider's content filter stopped it",
    ),
}


@pytest.mark.parametrize("stop", list(STOPS))
@pytest.mark.parametrize("cut", ["open-code", "closed-code"])
def test_an_action_from_an_answer_stopped_early_never_runs(
    host: Host, model_server: ScriptedModelServer, stop: str, cut: str
) -> None:
    api, reason, cause = STOPS[stop]
    model_server.script(
        text(CUTS[cut], finish=reason),
        text("Another way.\n```python\nflag = 'other'\n```"),
        text("Done."),
    )
    with provider(host, model_server, api):
        result = host.request("set the flag")
    assert result.status == "ok", result.content
    assert host.execute("print(flag)").stdout == "other\n", "the stopped action never ran"
    shown = "\n".join(latest_markdown(result))
    assert f"The answer stopped before it ended ({cause}" in shown
    assert "so its code was not run" in shown
    retry = turns(model_server.requests[1])
    assert retry[1][1].startswith(CUTS[cut][:20]), "the stopped answer stays, as the user saw it"
    assert retry[-1][1].startswith("Observation:\n["), "the model is told its code did not run"


@pytest.mark.parametrize("stop", ["openai-content_filter", "anthropic-refusal"])
def test_prose_a_filter_or_refusal_stopped_is_the_answer_with_a_note(
    host: Host, model_server: ScriptedModelServer, stop: str
) -> None:
    api, reason, cause = STOPS[stop]
    model_server.script(text("I can't help with setting that flag", finish=reason))
    with provider(host, model_server, api):
        result = host.request("set the flag")
    assert result.status == "ok", result.content
    assert len(model_server.requests) == 1, "asking again would be stopped again"
    shown = "\n".join(latest_markdown(result))
    assert "I can't help with setting that flag" in shown
    assert f"({cause}" in shown and "so it may be incomplete" in shown


@pytest.mark.parametrize("api", PROVIDERS)
def test_an_answer_stopped_before_any_text_says_why(
    host: Host, model_server: ScriptedModelServer, api: str
) -> None:
    reason = {"openai": "content_filter", "anthropic": "refusal", "ollama": "content_filter"}
    model_server.script(text("", finish=reason[api]))
    with provider(host, model_server, api):
        result = host.request("set the flag")
    assert result.status == "error"
    assert "stopped the answer" in result.content["evalue"]
    assert "empty answer" not in result.content["evalue"]
    assert host.execute("print(flag)").stdout == "unset\n"


def test_a_model_whose_actions_are_always_filtered_stops_at_max_retries(
    host: Host, model_server: ScriptedModelServer
) -> None:
    filtered = text("```python\nflag = 'never'\n```", finish="content_filter")
    model_server.script(*[filtered] * 6)
    with host.settings(max_retries="1"):
        result = host.request("loop forever")
    assert result.status == "error" and result.content["ename"] == "RetryBudgetExhausted"
    assert "content filter" in result.content["evalue"]
    assert len(model_server.requests) == 2
    assert host.execute("print(flag)").stdout == "unset\n"


@pytest.mark.parametrize("chunk_size", [3, 100_000], ids=["streamed", "one-delta"])
def test_a_key_the_model_writes_is_masked_in_the_answer_and_the_history(
    host: Host, model_server: ScriptedModelServer, chunk_size: int
) -> None:
    said = f"Your key is {TEST_KEY}.\n```python\nk = '{TEST_KEY}'\nprint(len(k))\n```\n"
    model_server.script(text(said, chunk_size=chunk_size), text(f"Done: {TEST_KEY[:-1]}"))
    result = host.request("what is my key")
    assert result.status == "ok", result.content
    assert "SECRET" not in result.everything()
    assert "Your key is ***." in "\n".join(latest_markdown(result))
    assert "SECRET" not in host.execute("%codeact history").everything()


@pytest.mark.parametrize("info", ["python:main.py", "python3.11", 'py title="x"', "Python"])
def test_python_fences_with_any_label_run(
    host: Host, model_server: ScriptedModelServer, info: str
) -> None:
    model_server.script(text(f"Setting it.\n```{info}\nflag = 'set'\n```\n"), text("Done."))
    result = host.request("set the flag")
    assert result.status == "ok", result.content
    assert host.execute("print(flag)").stdout == "set\n"
    assert len(model_server.requests) == 2


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
        (
            "markdown",
            "Setting it.\n```python\nflag = 'first'\n```\nOutput:\n```\nfirst\n```\n"
            "```python\nflag = 'second'\n```",
        ),
        (
            "markdown",
            "Setting it.\n```python\nflag = 'first'\n```\n[executed successfully with no "
            "output]\n```python\nflag = 'second'\n```\nAll set.",
        ),
        (
            "markdown",
            "Setting it.\n```\nflag = 'first'\n```\nOutput:\n```\nok\n```\n"
            "```\nflag = 'second'\n```",
        ),
        (
            "execute",
            "Setting it.\n<execute>\nflag = 'first'\n</execute> All set, and to be sure: "
            "<execute>flag = 'second'</execute>",
        ),
        (
            "execute",
            "Setting it. <execute>flag = 'first'</execute><execute>flag = 'second'</execute>",
        ),
    ],
)
@pytest.mark.parametrize("chunk_size", [3, 100_000], ids=["streamed", "one-delta"])
def test_an_answer_ends_after_its_first_action_whatever_the_server_does(
    host: Host, model_server: ScriptedModelServer, action_format: str, answer: str, chunk_size: int
) -> None:
    model_server.script(text(answer, ignore_stop=True, chunk_size=chunk_size), text("It is set."))
    result = host.request("set the flag", f"--format {action_format}")
    assert result.status == "ok", result.content
    assert host.execute("print(flag)").stdout == "first\n"
    shown = "\n".join(latest_markdown(result))
    assert "second" not in shown and "Observation" not in shown and "All set" not in shown
    kept = messages_of(model_server.requests[1])[-2]
    assert kept["role"] == "assistant" and "second" not in kept["content"]


@pytest.mark.parametrize("api", ["anthropic", "ollama"])
def test_every_api_cuts_the_answer_on_our_side(
    host: Host, model_server: ScriptedModelServer, api: str
) -> None:
    answer = (
        "Setting it.\n```python\nflag = 'first'\n```\nObservation:\nDone\n"
        "```python\nflag = 'second'\n```"
    )
    model_server.script(text(answer, ignore_stop=True), text("It is set."))
    with provider(host, model_server, api):
        result = host.request("set the flag")
    assert result.status == "ok", result.content
    assert host.execute("print(flag)").stdout == "first\n"
    assert "second" not in result.markdown and "Observation" not in result.markdown
    assert "second" not in json.dumps(turns(model_server.requests[1]))


# --- 3. long answers obey the context budget ---------------------------------------------

PARAGRAPHS = "".join(f"Paragraph {i}: " + "words and more words " * 10 + "\n\n" for i in range(900))
LONG_ANSWERS = {
    "prose-then-code": PARAGRAPHS + "```python\nflag = 'long'\n```",
    "long-code": "Here:\n```python\n"
    + "".join(f"v{i} = {i}  # padding padding padding\n" for i in range(5000))
    + "flag = 'long'\n```",
    "chinese-then-code": "这是一个很长的回答。" * 20_000 + "\n```python\nflag = 'long'\n```",
}


@pytest.mark.parametrize("answer", list(LONG_ANSWERS))
def test_a_200_kb_answer_does_not_blow_the_next_requests_budget(
    host: Host, model_server: ScriptedModelServer, answer: str
) -> None:
    assert len(LONG_ANSWERS[answer]) > 195_000
    model_server.script(text(LONG_ANSWERS[answer], chunk_size=8000), text("Done."), text("Again."))
    with host.settings(context_tokens="6000"):
        assert host.request("write it all").status == "ok"
        assert host.request("do it once more please").status == "ok"
    assert host.execute("print(flag)").stdout == "long\n"
    assert max(map(estimated_tokens, model_server.requests)) < 6000 * 1.05


def estimated_tokens(request: dict[str, Any]) -> float:
    """What a logged request's messages cost: about four characters a token, but one or
    more for each Chinese character."""
    sent = "".join(m["content"] for m in messages_of(request))
    ascii_count = len(sent.encode("ascii", "ignore"))
    return ascii_count / 4 + (len(sent) - ascii_count)


@pytest.mark.parametrize("script", ["english", "chinese"])
def test_many_long_turns_keep_within_the_budget(
    host: Host, model_server: ScriptedModelServer, script: str
) -> None:
    essay = PARAGRAPHS if script == "english" else "这是一个很长的回答。" * 20_000
    model_server.script(*[text(essay, chunk_size=8000) for _ in range(5)])
    with host.settings(context_tokens="6000"):
        for follow_up in ("write at length", "tell me more please", "and more please", "go on"):
            assert host.request(follow_up).status == "ok"
    assert max(map(estimated_tokens, model_server.requests)) < 6000 * 1.05
    assert turns(model_server.requests[-1])[-1] == ("user", "go on")


# --- 4. the output limit is asked for --------------------------------------------------------


@pytest.mark.parametrize("api", PROVIDERS)
def test_an_output_limit_is_sent_by_default_and_follows_the_settings(
    host: Host, model_server: ScriptedModelServer, api: str
) -> None:
    model_server.script(*[text("Fine.") for _ in range(4)])
    with provider(host, model_server, api):
        host.request("hello there")
        # The environment, as a user's `%env` sets it; a session setting wins over it.
        with environment(host, CODEACT_MAX_TOKENS="700"):
            host.request("hello there")
            with host.settings(max_tokens="512"):
                host.request("hello there")
            with host.settings(max_tokens="0"):
                host.request("hello there")
    limits = [output_limit(request) for request in model_server.requests]
    # Anthropic's API requires a limit: "no limit" is its 4096.
    assert limits == [4096, 700, 512, 4096 if api == "anthropic" else None]


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


@pytest.mark.parametrize("api", PROVIDERS)
def test_an_interrupted_answer_is_kept_as_the_user_saw_it(
    host: Host, model_server: ScriptedModelServer, api: str
) -> None:
    poem = "".join(f"Line {i}: roses are red, violets are blue.\n" for i in range(400))
    model_server.script(text(poem, chunk_size=8, delay=0.01))
    during, fired = interrupt_when(
        host.manager,
        lambda ms: any("Line 3:" in json.dumps(m["content"].get("data", {})) for m in ms),
    )
    with provider(host, model_server, api):
        result = host.request("write a poem", during=during)
        assert fired and result.content["ename"] == "KeyboardInterrupt"
        seen = latest_markdown(result)[0]
        assert "Line 3:" in seen and len(seen) < len(poem)

        model_server.script(text("Roses are red; that is all."))
        assert host.request("make it shorter").status == "ok"
    said = turns(model_server.requests[-1])
    # Roles alternate, as Anthropic requires, without merging turns into one message.
    assert [role for role, _ in said] == ["user", "assistant", "user"]
    assert said[0][1].endswith("write a poem")
    note = "[This request ended without a final answer: interrupted by the user.]"
    assert said[1][1] == f"{seen.strip()}\n\n{note}", "what the user saw, marked"
    assert said[2][1] == "make it shorter", "the follow-up is its own message"


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


# --- providers: replies that are not the stream asked for, servers that hang ----------------

NGINX_PAGE = (
    "<html>\r\n<head><title>502 Bad Gateway</title><style>body{color:red}</style></head>\r\n"
    "<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
NOT_STREAMS = {
    "whole-answer": (
        raw(json.dumps({"choices": [{"message": {"role": "assistant", "content": "Hi there"}}]})),
        "HTTP 200 with a whole answer in one JSON document (application/json) instead of",
    ),
    "error-json": (
        raw(json.dumps({"error": {"message": "model is still loading"}})),
        "HTTP 200 with application/json instead of",
    ),
    "other-json": (raw(json.dumps({"status": "ok"})), "HTTP 200 with application/json instead of"),
    "web-page": (
        raw(NGINX_PAGE.replace("502 Bad Gateway", "Welcome"), content_type="text/html"),
        "HTTP 200 with a web page (text/html) instead of",
    ),
    "text": (raw("backend not ready\n", content_type="text/plain"), "HTTP 200 with text/plain"),
    "empty": (raw(b"", content_type="text/event-stream"), "HTTP 200 with an empty body"),
    "proxy-502": (
        raw(NGINX_PAGE, status=502, content_type="text/html"),
        'failed with HTTP 502 and a web page (text/html) instead of an API reply: "502 Bad',
    ),
    "page-in-stream": (
        raw(
            'data: {"choices": [{"index": 0, "delta": {"content": "Hi"}}]}\n\n' + NGINX_PAGE,
            content_type="text/event-stream",
        ),
        'broke off into a web page: "502 Bad Gateway nginx',
    ),
}


@pytest.mark.parametrize("reply", list(NOT_STREAMS))
def test_a_reply_that_is_not_the_stream_is_said_in_one_clean_sentence(
    host: Host, model_server: ScriptedModelServer, reply: str
) -> None:
    body, said = NOT_STREAMS[reply]
    model_server.script(body)
    with host.settings(request_retries="0"):
        result = host.request("hello there")
    assert result.status == "error"
    assert result.content["ename"] in ("ServerError", "StreamError")
    message = result.content["evalue"]
    assert said in message and f"{model_server.url}" in message
    assert "<" not in message and "closed early" not in message and "\n" not in message
    assert "Check" in message or "check" in message
    assert len(message) < 500


@pytest.mark.parametrize("where", ["session", "environment"])
def test_a_hung_server_is_reported_within_the_timeouts_the_user_sets(
    host: Host, model_server: ScriptedModelServer, where: str
) -> None:
    model_server.script(hang(10))
    values = {"idle_timeout": "0.3", "first_token_timeout": "1", "request_retries": "0"}
    if where == "session":
        setting = host.settings(**values)
    else:
        setting = environment(host, **{f"CODEACT_{k.upper()}": v for k, v in values.items()})
    with setting:
        result = host.request("hello there")
    assert result.content["ename"] == "ProviderTimeout"
    assert "had not started to answer after 1 s (first_token_timeout)" in result.content["evalue"]
    assert "CODEACT_FIRST_TOKEN_TIMEOUT" in result.content["evalue"]
    # The user was told, while waiting, that the server is up but silent.
    assert "no answer after 0.3 s, but the server is up" in json.dumps(
        [m["content"] for m in result.messages]
    )
    assert result.seconds < 5


def test_total_timeout_from_the_environment_bounds_a_slow_answer(
    host: Host, model_server: ScriptedModelServer
) -> None:
    model_server.script(text("word " * 400, chunk_size=5, delay=0.05))
    with environment(host, CODEACT_TOTAL_TIMEOUT="0.8"):
        result = host.request("hello there")
    assert result.content["ename"] == "ProviderTimeout"
    assert (
        "took longer than total_timeout (0.8 s). The answer above is incomplete."
        in (result.content["evalue"])
    )
    assert result.seconds < 4
