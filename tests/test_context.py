"""The messages sent to the model: prompt, memory, budget, and no secrets."""

from __future__ import annotations

import gc
import itertools
import re
import weakref
from collections.abc import Sequence
from typing import Any

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from codeact_kernel import context
from codeact_kernel.context import ANSWER_CHARS, IMAGE_TOKENS, build_messages, system_prompt
from codeact_kernel.events import Observation, Step, Turn
from codeact_kernel.namespace import secret_values, summarize_namespace
from codeact_kernel.providers.base import Message, estimate_tokens
from codeact_kernel.secrets import REDACTED

OPENAI_KEY = "sk-abc123def456ghi789jkl012mno345"


def observed(number: int, text: str, code: str, output: str, **kw: Any) -> Step:
    return Step(number, text, code, Observation(output, ok=True, **kw))


def build(**overrides: Any) -> list[Message]:
    args: dict[str, Any] = {
        "request": "plot it",
        "history": (),
        "current": (),
        "user_cells": (),
        "namespace": "x: int = 1",
        "action_format": "markdown",
        "budget_tokens": 100_000,
    }
    args.update(overrides)
    return build_messages(**args)


def roles(messages: list[Message]) -> list[str]:
    return [m.role for m in messages]


def tokens(messages: list[Message]) -> int:
    return sum(estimate_tokens(m.content) + 4 for m in messages)


# --- system prompt -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action_format", "marker"), [("markdown", "```python"), ("execute", "<execute>")]
)
def test_system_prompt_per_format(action_format: str, marker: str) -> None:
    prompt = system_prompt(action_format, "df: pandas.DataFrame  # shape (3, 2)")
    assert marker in prompt
    assert "Observation:" in prompt
    assert "df: pandas.DataFrame  # shape (3, 2)" in prompt
    assert "{{" not in prompt
    assert "## Tools" not in prompt
    assert "\n\n\n" not in prompt


def test_system_prompt_with_tools_and_empty_namespace() -> None:
    prompt = system_prompt("markdown", "", tools="def search(query: str) -> list[str]: ...")
    assert "## Tools" in prompt
    assert "def search(query: str) -> list[str]: ..." in prompt
    assert "# (nothing defined yet)" in prompt


def test_placeholders_in_the_namespace_are_not_filled() -> None:
    prompt = system_prompt("markdown", "s: str = '{{tools}}'", tools="TOOLS")
    assert "s: str = '{{tools}}'" in prompt


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="xml"):
        system_prompt("xml", "")


# --- conversation ---------------------------------------------------------------------


def test_first_request() -> None:
    messages = build()
    assert roles(messages) == ["system", "user"]
    assert messages[0].content == system_prompt("markdown", "x: int = 1")
    assert messages[1].content == "plot it"


def test_history_then_current_request_and_steps() -> None:
    first = Turn(
        "load sales.csv",
        [
            observed(1, "Loading.\n```python\ndf = load()\n```", "df = load()", "[ok]"),
            Step(2, "Loaded 3 rows."),
        ],
        user_cells=("import pandas as pd",),
        final="Loaded 3 rows.",
    )
    current = [observed(1, "```python\ndf.plot()\n```", "df.plot()", "[image shown]")]
    messages = build(history=[first], current=current, user_cells=["df = df.dropna()"])
    assert roles(messages) == ["system"] + ["user", "assistant"] * 3 + ["user"]
    assert messages[1].content == (
        "Before this request I ran these cells myself, in this order:\n\n"
        "```python\nimport pandas as pd\n```\n\nload sales.csv"
    )
    assert messages[2].content == "Loading.\n```python\ndf = load()\n```"
    assert messages[3].content == "Observation:\n[ok]"
    # The last step of a finished turn is its final answer; it is not repeated.
    assert messages[4].content == "Loaded 3 rows."
    assert messages[5].content.endswith("```python\ndf = df.dropna()\n```\n\nplot it")
    assert messages[6].content == "```python\ndf.plot()\n```"
    assert messages[7].content == "Observation:\n[image shown]"


def test_final_answer_without_steps_is_added() -> None:
    messages = build(history=[Turn("what is CodeAct?", final="A way to act with code.")])
    assert [m.content for m in messages[1:3]] == ["what is CodeAct?", "A way to act with code."]


def test_failed_and_interrupted_turns_say_so() -> None:
    failed = Turn(
        "fit a model",
        [observed(1, "<execute>fit()</execute>", "fit()", "Traceback …")],
        error="3 actions in a row failed",
    )
    interrupted = Turn(
        "train it",
        [
            observed(1, "<execute>train()</execute>", "train()", "epoch 1"),
            Step(2, "Next I'll", interrupted=True),
        ],
        error="interrupted by the user",
    )
    messages = build(history=[failed, interrupted])
    assert roles(messages) == ["system"] + ["user", "assistant"] * 4 + ["user"]
    assert [m.content for m in messages[1:]] == [
        "fit a model",
        "<execute>fit()</execute>",
        "Observation:\nTraceback …",
        "[This request ended without a final answer: 3 actions in a row failed.]",
        "train it",
        "<execute>train()</execute>",
        "Observation:\nepoch 1",
        # What the user saw of the answer they stopped, marked where they stopped it.
        "Next I'll\n\n[This request ended without a final answer: interrupted by the user.]",
        "plot it",
    ]


def test_an_interrupted_request_and_the_next_are_two_messages() -> None:
    for steps in ([], [Step(1, interrupted=True)], [Step(1, "Sure, he", interrupted=True)]):
        turn = Turn("write a poem", steps, error="interrupted by the user")
        messages = build(history=[turn], request="make it shorter")
        assert roles(messages) == ["system", "user", "assistant", "user"]
        assert messages[1].content == "write a poem"
        assert messages[2].content.endswith("interrupted by the user.]")
        assert messages[3].content == "make it shorter"


def test_an_interrupted_answer_with_code_says_the_code_did_not_run() -> None:
    step = Step(1, "Let me delete them.\n```python\nfor f in files:\n    os.remo", interrupted=True)
    messages = build(history=[Turn("clean up", [step], error="interrupted by the user")])
    assert (
        messages[2].content == "Let me delete them.\n```python\nfor f in files:\n    os.remo\n```"
    )
    assert messages[3].content == (
        "Observation:\n[The user interrupted the request while this answer was being "
        "written: its code did not run.]"
    )
    assert messages[4].content.startswith("[This request ended without a final answer")


def test_an_answer_that_broke_off_is_kept_as_the_user_saw_it() -> None:
    step = Step(1, "Here is the first half of my ans", error="the connection was closed")
    messages = build(history=[Turn("tell me", [step], error="the connection was closed")])
    assert messages[2].content.startswith("Here is the first half of my ans\n\n[This request")


@pytest.mark.parametrize(
    ("text", "note"),
    [
        ("Writing it all.\n```python\ndata = [\n    1,\n    2,", "its code was not run"),
        ("Complete-looking code:\n```python\nx = 1\n```\nAnd now", "its code was not run"),
        ("A long essay that never ends and", "Go on from where it stopped"),
    ],
)
def test_a_truncated_answer_tells_the_model(text: str, note: str) -> None:
    messages = build(current=[Step(1, text, truncated=True)])
    assert messages[-2].role == "assistant" and messages[-2].content.startswith(text[:10])
    assert messages[-1].content.startswith("Observation:\n[Your answer was cut off at the output")
    assert note in messages[-1].content


def test_unclosed_execute_is_closed_in_the_history() -> None:
    step = observed(1, "Counting.\n<execute>\nlen(df)", "len(df)", "Out[2]: 3")
    messages = build(current=[step], action_format="execute")
    assert messages[2].content == "Counting.\n<execute>\nlen(df)\n</execute>"


def test_step_that_did_not_run() -> None:
    step = Step(1, "```python\nx = 1\n```", "x = 1", error="approval is 'ask' but …")
    unrun = Step(2, "```python\ny = 1\n```", "y = 1")
    messages = build(history=[Turn("do it", [step, unrun], error="no approval")])
    assert messages[3].content == "Observation:\napproval is 'ask' but …"
    assert messages[5].content.startswith("Observation:\n[This action did not run.]")


def test_user_cells_are_fenced_safely() -> None:
    cells = ["s = '```'", "  \n", "print(s)\n"]
    content = build(user_cells=cells)[1].content
    assert "````python\ns = '```'\n````" in content
    assert "```python\nprint(s)\n```" in content
    assert content.count("```python") == 2


_STEP_KINDS = st.sampled_from(
    ["observed", "truncated", "interrupted", "interrupted-code", "not-run", "error", "answer"]
)


def _step(number: int, kind: str) -> Step:
    if kind == "observed":
        return observed(number, "```python\nx\n```", "x", "1")
    if kind == "truncated":
        return Step(number, "```python\nx = [", truncated=True)
    if kind == "interrupted":
        return Step(number, "Half an ans", interrupted=True)
    if kind == "interrupted-code":
        return Step(number, "```python\nx =", interrupted=True)
    if kind == "not-run":
        return Step(number, "```python\nx\n```", "x")
    if kind == "error":
        return Step(number, "```python\nx\n```", "x", error="no approval")
    return Step(number, "Done.")


@given(
    st.lists(
        st.tuples(st.lists(_STEP_KINDS, max_size=4), st.sampled_from([None, "failed"])),
        max_size=5,
    ),
    st.lists(st.sampled_from(["observed", "truncated"]), max_size=3),
)
def test_every_request_opens_a_user_message_of_its_own(
    turns: list[tuple[list[str], str | None]], current: list[str]
) -> None:
    history = []
    for index, (kinds, error) in enumerate(turns):
        steps = [_step(n, kind) for n, kind in enumerate(kinds, 1)]
        final = None if error or not steps or kinds[-1] != "answer" else "Done."
        history.append(Turn(f"request {index}", steps, final=final, error=error))
    messages = build(history=history, current=[_step(n, k) for n, k in enumerate(current, 1)])
    assert messages[0].role == "system"
    assert all(a.role != b.role for a, b in itertools.pairwise(messages[1:]))
    requests = [m.content for m in messages if re.fullmatch(r"request \d+", m.content)]
    assert requests == [f"request {index}" for index in range(len(turns))]


def test_roles_alternate_whatever_the_history() -> None:
    history = [
        Turn("a", error="endpoint down"),
        Turn("b", final="B"),
        Turn("c", [observed(1, "x", "x", "1")]),
        Turn("d", [Step(1, "partial")]),
    ]
    messages = build(history=history, current=[observed(1, "y", "y", "2")])
    assert messages[0].role == "system"
    assert all(a.role != b.role for a, b in itertools.pairwise(messages[1:]))
    assert messages[1].role == "user" and messages[-1].role == "user"


def test_images_go_only_to_vision_models_and_only_for_the_current_request() -> None:
    old = Turn("plot", [observed(1, "p", "p", "[image]", images=("OLD",))], final=None)
    step = observed(1, "p", "p", "[image]", images=("NEW",))
    plain = build(history=[old], current=[step])
    assert all(m.images == () for m in plain)
    vision = build(history=[old], current=[step], vision=True)
    assert [m.images for m in vision if m.images] == [("NEW",)]


# --- budget ---------------------------------------------------------------------------


def big_turn(i: int, size: int = 4000) -> Turn:
    return Turn(
        f"request {i}",
        [observed(1, f"step {i}", "code", "o" * size), Step(2, f"answer {i}")],
        final=f"answer {i}",
    )


def test_oldest_turns_are_dropped_first() -> None:
    history = [big_turn(i) for i in range(6)]
    full = build(history=history)
    budget = tokens(full) - 1500  # each turn is about 1,000 tokens: two must go
    messages = build(history=history, budget_tokens=budget)
    text = "\n".join(m.content for m in messages)
    assert "request 0" not in text and "request 1" not in text
    assert all(f"request {i}" in text for i in range(2, 6))
    assert "[2 earlier request(s) of this session are left out" in messages[1].content
    assert messages[-1].content == "plot it"
    assert tokens(messages) <= budget


def test_latest_request_and_system_prompt_are_always_whole() -> None:
    request = "please " * 5000
    messages = build(request=request, history=[big_turn(0)], budget_tokens=100)
    assert messages[0].content == system_prompt("markdown", "x: int = 1")
    assert messages[-1].content.endswith(request)
    assert "request 0" not in messages[-1].content


def test_older_observations_shrink_before_the_latest() -> None:
    current = [
        observed(i, f"step {i}", "c", f"start{i}" + "o" * 8000 + f"end{i}") for i in (1, 2, 3)
    ]
    full = build(current=current)
    budget = tokens(full) - 3000
    messages = build(current=current, budget_tokens=budget)
    observations = [m.content for m in messages if m.content.startswith("Observation:")]
    latest = current[-1].observation
    assert latest is not None
    assert observations[-1] == "Observation:\n" + latest.text
    assert "characters truncated" in observations[0]
    assert observations[0].startswith("Observation:\nstart1") and observations[0].endswith("end1")
    assert tokens(messages) <= budget


def test_user_cells_shrink_after_observations_and_the_latest_observation_last() -> None:
    current = [observed(1, "s", "c", "a" * 8000), observed(2, "s", "c", "b" * 8000)]
    cells = ["cell = 1\n" + "#" * 8000]
    messages = build(current=current, user_cells=cells, budget_tokens=1500)
    contents = "\n".join(m.content for m in messages)
    assert "cell = 1" in contents
    assert contents.count("characters truncated") == 3
    assert messages[-1].content.startswith("Observation:\nbbbb")


@pytest.mark.parametrize("count", [300, 3000])
def test_many_user_cells_keep_the_newest_within_the_budget(count: int) -> None:
    """Run All on a long notebook, then a request: the cells, cut, would still not fit."""
    cells = [f"result_{i} = compute(data, parameter={i})  # {OPENAI_KEY}" for i in range(count)]
    current = [observed(1, "s", "c", "a" * 3000)]
    messages = build(user_cells=cells, current=current, budget_tokens=2000)
    assert tokens(messages) <= 2000
    content = messages[1].content
    kept = [int(i) for i in re.findall(r"result_(\d+) =", content)]
    assert kept and kept == list(range(count - len(kept), count)), "the newest, in order"
    assert f"[{count - len(kept)} earlier cell(s) are left out" in content
    assert content.endswith("plot it") and OPENAI_KEY not in content
    assert messages[-1].content.startswith("Observation:\naaa")


def test_history_turns_go_before_current_observations_shrink() -> None:
    current = [observed(1, "s", "c", "a" * 4000), observed(2, "s", "c", "b" * 4000)]
    budget = tokens(build(current=current)) + 40  # no room for the turn, room for the note
    messages = build(history=[big_turn(0, 400)], current=current, budget_tokens=budget)
    contents = "\n".join(m.content for m in messages)
    assert "request 0" not in contents
    assert "truncated" not in contents


@given(
    sizes=st.lists(st.integers(0, 3000), max_size=6),
    steps=st.lists(st.integers(0, 3000), max_size=4),
    cells=st.lists(st.integers(1, 400), max_size=60),
    budget=st.integers(1, 6000),
)
def test_budget_properties(
    sizes: list[int], steps: list[int], cells: list[int], budget: int
) -> None:
    history = [big_turn(i, size) for i, size in enumerate(sizes)]
    current = [observed(i, "s", "c", "z" * size) for i, size in enumerate(steps)]
    user_cells = [f"cell_{i} = '{'c' * size}'" for i, size in enumerate(cells)]
    messages = build(history=history, current=current, user_cells=user_cells, budget_tokens=budget)
    assert messages[0].content == system_prompt("markdown", "x: int = 1")
    assert roles(messages)[1::2] == ["user"] * len(roles(messages)[1::2])
    request_message = [m for m in messages if m.content.endswith("plot it")]
    assert request_message and request_message[-1] is messages[-1 - 2 * len(current)]
    # Everything that can be cut was cut before the budget is exceeded.
    if tokens(messages) > budget:
        assert not any(re.search(r"request \d", m.content) for m in messages[1:])
        observations = [m.content for m in messages if m.content.startswith("Observation:")]
        assert all(len(text) <= len("Observation:\n") + 200 + 50 for text in observations)
        assert "cell_" not in "".join(m.content for m in messages)
    shown = [int(i) for m in messages for i in re.findall(r"cell_(\d+) =", m.content)]
    assert shown == list(range(len(cells) - len(shown), len(cells))), "the newest cells, in order"


# --- the model's own answers within the budget -----------------------------------------

RUNAWAY_CODE = "```python\nresult = summarize(df)\nprint(result)\n```"


def runaway(size: int = 200_000, code: str = RUNAWAY_CODE) -> str:
    """A runaway model's answer: `size` characters of prose, then its action."""
    return "start of the prose " + "blah " * (size // 5) + "end of the prose\n" + code


@pytest.mark.parametrize("where", ["current", "earlier"])
def test_a_runaway_answer_obeys_the_budget_and_keeps_its_action(where: str) -> None:
    text = runaway()
    step = observed(1, text, "result = summarize(df)\nprint(result)", "42")
    if where == "current":
        messages = build(current=[step], budget_tokens=24_000)
    else:
        turn = Turn("summarize", [step, Step(2, "It is 42.")], final="It is 42.")
        messages = build(history=[turn], request="and the median?", budget_tokens=24_000)
        assert "summarize" in messages[1].content, "the turn still fits, cut"
    assert tokens(messages) <= 24_000
    said = next(m.content for m in messages if m.content.startswith("start of the prose"))
    assert len(said) <= ANSWER_CHARS + 100
    assert said.endswith("end of the prose\n" + RUNAWAY_CODE), "the action is whole"
    assert "characters truncated" in said


def test_a_long_final_answer_is_cut_around_the_middle() -> None:
    essay = "Once upon a time " + "and then " * 20_000 + "the end."
    messages = build(history=[Turn("write an essay", final=essay)], request="make it shorter")
    kept = messages[2].content
    assert kept.startswith("Once upon a time") and kept.endswith("the end.")
    assert len(kept) <= ANSWER_CHARS + 100


def test_answers_prose_goes_before_observations_and_actions_last() -> None:
    code = "```python\n" + "\n".join(f"x{i} = {i}" for i in range(400)) + "\n```"
    steps = [
        observed(1, "p" * 3000 + "\n" + code, "c", "a" * 3000),
        observed(2, "q" * 3000 + "\n" + code, "c", "b" * 3000),
    ]
    full = tokens(build(current=steps))
    messages = build(current=steps, budget_tokens=full - 600)
    answers = [m.content for m in messages if m.role == "assistant"]
    observations = [m.content for m in messages if m.content.startswith("Observation:")]
    assert all("characters truncated" in a and a.endswith(code) for a in answers)
    assert "truncated" not in "".join(observations)
    tight = build(current=steps, budget_tokens=1500)
    assert tokens(tight) <= 1500
    assert all("truncated" in m.content for m in tight[2:])
    assert tight[-2].content.startswith("q") and tight[-2].content.endswith("```")


# --- text that cannot be sent --------------------------------------------------------------

BAD = "caf\udce9 \ud800"


def test_text_that_is_not_valid_utf8_never_reaches_the_messages() -> None:
    history = [
        Turn(
            f"list {BAD}",
            [
                observed(1, f"```python\nprint('{BAD}')\n```", "x", f"files: {BAD}"),
                Step(2, f"Here: {BAD}", interrupted=True),
            ],
            user_cells=(f"name = '{BAD}'",),
            error=f"failed on {BAD}",
        ),
        Turn(BAD, final=BAD),
    ]
    current = [observed(1, BAD, "x", BAD), Step(2, BAD, truncated=True)]
    messages = build(
        request=f"again {BAD}",
        history=history,
        current=current,
        user_cells=[BAD],
        namespace=f"{BAD}: str",
        tools=f"def {BAD}(): ...",
    )
    for message in messages:
        message.content.encode("utf-8")
    everything = "".join(m.content for m in messages)
    assert "caf\ufffd" in everything and "\ud800" not in everything


# --- images within the budget ------------------------------------------------------------


def plots(size: int = 20) -> list[Step]:
    return [
        observed(1, "a", "a", "A" * size, images=("A1", "A2")),
        observed(2, "b", "b", "B" * size, images=("B",)),
        observed(3, "c", "c", "C" * size, images=("C1", "C2")),
    ]


def images_of(messages: list[Message]) -> list[tuple[str, ...]]:
    return [m.images for m in messages if m.images]


@pytest.mark.parametrize(
    ("room", "kept"),
    [
        (5, [("A1", "A2"), ("B",), ("C1", "C2")]),
        (3, [("B",), ("C1", "C2")]),
        (2, [("C1", "C2")]),
        (1, [("C2",)]),
        (0, []),
    ],
)
def test_oldest_images_go_first_and_the_latest_last(room: int, kept: list[tuple[str, ...]]) -> None:
    text = tokens(build(current=plots(), vision=True))
    messages = build(current=plots(), vision=True, budget_tokens=text + room * IMAGE_TOKENS)
    assert images_of(messages) == kept
    assert "truncated" not in "".join(m.content for m in messages)


def test_images_go_before_any_text_is_cut() -> None:
    current = plots(size=4000)
    text = tokens(build(current=current))
    messages = build(current=current, vision=True, budget_tokens=text)
    assert images_of(messages) == []
    assert "truncated" not in "".join(m.content for m in messages)
    cut = build(current=current, vision=True, budget_tokens=text - 500)
    assert "truncated" in cut[3].content  # the oldest observation


def test_earlier_requests_go_before_images() -> None:
    room = tokens(build(current=plots(), vision=True)) + 5 * IMAGE_TOKENS + 40
    messages = build(history=[big_turn(0, 400)], current=plots(), vision=True, budget_tokens=room)
    assert "request 0" not in "".join(m.content for m in messages)
    assert len(sum(images_of(messages), ())) == 5


# --- cost however long the session -------------------------------------------------------


class Watched(Sequence[Turn]):
    """A history that records which turns were looked at."""

    def __init__(self, turns: list[Turn]) -> None:
        self.turns = turns
        self.seen: set[int] = set()

    def __len__(self) -> int:
        return len(self.turns)

    def __getitem__(self, index: Any) -> Any:
        if not isinstance(index, int):
            raise AssertionError("the whole history was copied")
        self.seen.add(index % len(self.turns))
        return self.turns[index]


def test_only_the_turns_that_fit_are_looked_at() -> None:
    history = Watched([big_turn(i, 400) for i in range(1000)])
    one = tokens(build(history=[big_turn(0, 400)])) - tokens(build())
    messages = build(history=history, budget_tokens=tokens(build()) + 10 * one)
    assert "[991 earlier request(s)" in messages[1].content
    text = "\n".join(m.content for m in messages)
    assert "request 991" in text and "request 990" not in text
    # The nine that fit, and the one that did not.
    assert history.seen == set(range(990, 1000))


def test_each_call_redacts_only_what_is_new(monkeypatch: pytest.MonkeyPatch) -> None:
    """A finished request, and a finished step of the current one, are made into parts
    (redacted, counted) once; new secrets make them again."""
    made: list[str] = []
    block_of = context._Block.of.__func__  # type: ignore[attr-defined]

    def counting(cls: type, parts: Sequence[Any]) -> Any:
        made.append(parts[0].text if parts else "")
        return block_of(cls, parts)

    monkeypatch.setattr(context._Block, "of", classmethod(counting))
    history = [big_turn(i, 400) for i in range(50)]
    current = plots()
    build(history=history, current=current[:1])
    assert len(made) == 51
    made.clear()
    build(history=history, current=current[:2])
    assert made == ["b"]
    made.clear()
    history.append(big_turn(50, 400))
    build(history=history, current=current[:1])
    assert made == ["request 50"]
    made.clear()
    build(history=history, current=current[:1], secrets=["a-new-secret-value"])
    assert len(made) == 52


def test_a_turn_changed_after_it_was_sent_is_sent_changed() -> None:
    turn = Turn("a", final="first answer")
    assert "first answer" in build(history=[turn])[2].content
    turn.final = "second answer"
    assert build(history=[turn])[2].content == "second answer"


def test_new_secrets_are_redacted_from_earlier_turns() -> None:
    turn = Turn("connect", [observed(1, "x", "x", "it is opensesame42")], final="done")
    assert "opensesame42" in "".join(m.content for m in build(history=[turn]))
    messages = build(history=[turn], secrets=["opensesame42"])
    assert "opensesame42" not in "".join(m.content for m in messages)


def test_a_forgotten_conversation_is_not_kept_alive() -> None:
    turns = [big_turn(i, 400) for i in range(3)]
    build(history=turns, current=plots())
    refs = [weakref.ref(turn) for turn in turns]
    del turns
    gc.collect()
    assert all(ref() is None for ref in refs)


def test_repeated_calls_give_the_same_messages() -> None:
    history = [big_turn(i, 400) for i in range(30)]
    current = plots(size=3000)
    args: dict[str, Any] = {"history": history, "current": current, "budget_tokens": 5000}
    assert build(**args) == build(**args)
    assert build(**args, vision=True) == build(**args, vision=True)


# --- secrets ----------------------------------------------------------------------------


def test_secrets_never_reach_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEACT_API_KEY", "the-kernels-own-key-42")
    ns = {
        "OPENAI_API_KEY": OPENAI_KEY,
        "db_password": "hunter2",
        "df": pd.DataFrame({"a": [1]}),
    }
    cells = [f'OPENAI_API_KEY = "{OPENAI_KEY}"\ndb_password = "hunter2"']
    history = [
        Turn(
            "connect",
            [
                observed(1, "```python\nprint(db_password)\n```", "print(db_password)", "hunter2"),
                observed(
                    2, f"Using {OPENAI_KEY}", "x", "!env\nCODEACT_API_KEY=the-kernels-own-key-42"
                ),
            ],
            user_cells=tuple(cells),
            error="stopped",
        )
    ]
    current = [observed(1, "```python\nos.environ\n```", "os.environ", f"{{'K': '{OPENAI_KEY}'}}")]
    messages = build(
        namespace=summarize_namespace(ns),
        history=history,
        current=current,
        user_cells=cells,
        secrets=secret_values(ns),
    )
    everything = "\n".join(m.content for m in messages)
    for secret in (OPENAI_KEY, "hunter2", "the-kernels-own-key-42"):
        assert secret not in everything
    assert "OPENAI_API_KEY: str  # value hidden" in everything
    assert f'db_password = "{REDACTED}"' in everything


def test_secret_literals_in_cells_are_redacted_without_the_namespace() -> None:
    cells = ['db_password = "hunter2"', "API_TOKEN: str = 'tok-123456'"]
    content = build(user_cells=cells)[1].content
    assert "hunter2" not in content and "tok-123456" not in content
