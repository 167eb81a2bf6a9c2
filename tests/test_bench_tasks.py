"""The benchmark's tasks, checker, json/text modes and reference solutions (bench/).

The reference solutions run through the real json and text episode loops against the
reference model server over HTTP, and the data suite's in a namespace as code mode's
would; the failures a model can make are classified by the same loop.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference_server import WRONG_ANSWER, ReferenceModelServer

from codeact_kernel import tools as tool_marks
from codeact_kernel.bench.actions import InvalidAction, ToolCall, parse_action, run_call
from codeact_kernel.bench.checker import (
    MISSING,
    check,
    check_namespace,
    extract_answer,
    values_from_reprs,
)
from codeact_kernel.bench.episode import Episode, run_tool_episode
from codeact_kernel.bench.instructions import system_prompt, task_text
from codeact_kernel.bench.reference import format_answer, reference_turns, solve
from codeact_kernel.bench.tasks import (
    SCENARIOS,
    TOOLSETS,
    Task,
    all_tasks,
    get_task,
    scenario_setup,
    tool_functions,
    toolset_code,
)
from codeact_kernel.providers.base import ProviderConfig
from codeact_kernel.providers.openai import OpenAIProvider

TOOL_TASKS = all_tasks("tools")
DATA_TASKS = all_tasks("data")


@pytest.fixture(scope="module")
def reference() -> Iterator[ReferenceModelServer]:
    with ReferenceModelServer() as server:
        yield server


def run_episodes(
    server: ReferenceModelServer, tasks: list[Task], mode: str, max_turns: int = 10
) -> list[Episode]:
    async def main() -> list[Episode]:
        async with httpx.AsyncClient() as client:
            config = ProviderConfig(
                model="reference", base_url=server.url, api_key="sk-test", max_retries=0
            )
            model = OpenAIProvider(config, client)
            return [
                await run_tool_episode(task, mode, model, max_turns=max_turns)  # type: ignore[arg-type]
                for task in tasks
            ]

    return asyncio.run(main())


# --- the suites ------------------------------------------------------------------


def test_suites_have_the_size_and_shape_the_benchmark_promises() -> None:
    assert len(TOOL_TASKS) >= 40
    assert {name for task in TOOL_TASKS for name in task.toolsets} == set(TOOLSETS)
    assert len(TOOLSETS) >= 4
    tasks = all_tasks()
    assert len({task.id for task in tasks}) == len(tasks)
    assert len({task.prompt for task in tasks}) == len(tasks)
    for scenario in SCENARIOS:
        questions = [task for task in DATA_TASKS if task.scenario == scenario]
        assert 3 <= len(questions) <= 5, scenario
        assert all(task.namespace for task in questions)
    assert all_tasks("tools", "tools/shop-*") == [t for t in TOOL_TASKS if "shop" in t.id]
    with pytest.raises(ValueError, match="unknown suite"):
        all_tasks("everything")


@pytest.mark.parametrize("name", TOOLSETS)
def test_every_tool_is_typed_and_documented(name: str) -> None:
    functions = tool_functions([name])
    assert len(functions) >= 4
    for function_name, function in functions.items():
        signature = inspect.signature(function)
        assert signature.return_annotation is not inspect.Signature.empty, function_name
        for parameter in signature.parameters.values():
            assert parameter.annotation is not inspect.Parameter.empty, function_name
        assert len(inspect.getdoc(function) or "") > 20, function_name


@pytest.mark.parametrize("task", TOOL_TASKS, ids=lambda task: task.id)
def test_tools_reference_makes_two_or_more_calls_and_gets_the_expected_answer(task: Task) -> None:
    answer, calls = solve(task)
    assert 2 <= len(calls) <= 9, calls
    assert check(task, format_answer(answer))
    for mode in ("json", "text"):
        turns = reference_turns(task, mode)
        assert len(turns) == len(calls) + 1
        assert extract_answer(turns[-1]) is not None


# --- the reference solutions through the real loops ------------------------------


@pytest.mark.parametrize("mode", ["json", "text"])
def test_reference_solutions_score_100_percent(reference: ReferenceModelServer, mode: str) -> None:
    episodes = run_episodes(reference, TOOL_TASKS, mode)
    failed = [(e.task, e.error, e.detail, e.answer) for e in episodes if not e.success]
    assert failed == []
    for task, episode in zip(TOOL_TASKS, episodes, strict=True):
        assert episode.turns == len(reference_turns(task, mode))
        assert episode.input_tokens > 0 and episode.output_tokens > 0
        conversation = episode.trajectory["conversations"]
        assert conversation[0] == {"role": "system", "content": system_prompt(mode, task.toolsets)}
        assert conversation[1]["content"] == task_text(task)
        observations = [m for m in conversation if m["content"].startswith("Observation:")]
        assert len(observations) == episode.turns - 1
        assert not any("Invalid action" in m["content"] for m in observations)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_data_reference_solves_every_question_in_one_namespace(scenario: str) -> None:
    namespace: dict[str, object] = {}
    exec(scenario_setup(scenario), namespace)
    before = set(namespace)
    for task in [task for task in DATA_TASKS if task.scenario == scenario]:
        code_turn, final_turn = reference_turns(task, "code")
        code = re.search(r"```python\n(.*?)```", code_turn, re.DOTALL)
        assert code is not None
        exec(code.group(1), namespace)
        answer = extract_answer(final_turn)
        assert answer is not None and check(task, answer)
        reprs = {expr: repr(eval(expr, namespace)) for expr in task.namespace}
        assert check_namespace(task, values_from_reprs(reprs)), reprs
    assert before <= set(namespace)
    with pytest.raises(ValueError, match="code mode only"):
        reference_turns(DATA_TASKS[0], "json")


@pytest.mark.parametrize("task", TOOL_TASKS, ids=lambda task: task.id)
def test_code_reference_runs_on_the_tools_that_toolset_code_defines(
    task: Task, capsys: pytest.CaptureFixture[str]
) -> None:
    namespace: dict[str, object] = {}
    exec(toolset_code(task.toolsets), namespace)
    try:
        marked = {t.name for t in tool_marks.python_tools(namespace) if t.bound_as}
        assert set(tool_functions(task.toolsets)) <= marked
        code_turn, final_turn = reference_turns(task, "code")
        code = re.search(r"```python\n(.*?)```", code_turn, re.DOTALL)
        assert code is not None
        exec(code.group(1), namespace)
    finally:
        for name in tool_functions(task.toolsets):
            tool_marks.untool(name)
    printed = capsys.readouterr().out.strip()
    answer = extract_answer(final_turn)
    assert answer is not None and check(task, answer) and check(task, printed)


def test_the_modes_prompts_say_the_same_things_apart_from_the_action_format() -> None:
    code = system_prompt_for_code()
    json_prompt = system_prompt("json", ["shop"])
    text_prompt = system_prompt("text", ["shop"])
    for shared in (
        "## How you work",
        "One action per answer. Write a sentence or two on what you are about to do",
        'The result comes back in the next message, which starts with "Observation:".',
        "Never write an\nobservation yourself",
        "Work in small steps.",
        "## Example",
        "## Tools",
        "Each is listed with its full\nsignature and docstring.",
    ):
        for prompt in (code, json_prompt, text_prompt):
            assert " ".join(shared.split()) in " ".join(prompt.split()), shared
    assert '{"name": "<tool>", "arguments": {…}}' in json_prompt
    assert "Action: <tool>(<parameter>=<value>, …)" in text_prompt
    shop_tools = "def shipping_cost(weight_kg: float, zone: str) -> float:"
    assert shop_tools in json_prompt and shop_tools in text_prompt


def system_prompt_for_code() -> str:
    from codeact_kernel.context import system_prompt as kernel_prompt
    from codeact_kernel.tools import python_stub

    stubs = [python_stub(name, f) for name, f in tool_functions(["shop"]).items()]
    return kernel_prompt("markdown", "", "```python\n" + "\n\n".join(stubs) + "\n```")


def test_the_reference_server_tells_the_modes_and_turns_apart(
    reference: ReferenceModelServer,
) -> None:
    task = get_task("tools/travel-09")

    def ask(system: str, *later: dict[str, str]) -> str:
        messages = [
            {"role": "system", "content": system},
            {"role": "user", "content": "Earlier: " + get_task("tools/travel-08").prompt},
            {"role": "assistant", "content": "Answer: Berlin, Tokyo"},
            {"role": "user", "content": task_text(task)},
            *later,
        ]
        body = {"model": "reference", "messages": messages, "stream": False}
        response = httpx.post(f"{reference.url}/chat/completions", json=body, timeout=10)
        return str(response.json()["choices"][0]["message"]["content"])

    json_turns = reference_turns(task, "json")
    assert ask(system_prompt("json", task.toolsets)) == json_turns[0]
    step = [{"role": "assistant", "content": "…"}, {"role": "user", "content": "Observation:\n1"}]
    assert ask(system_prompt("text", task.toolsets), *step) == reference_turns(task, "text")[1]
    assert ask("You are a data and coding assistant.") == reference_turns(task, "code")[0]


# --- failures, classified --------------------------------------------------------


@pytest.mark.parametrize("mode", ["json", "text"])
def test_scripted_failures_are_classified(reference: ReferenceModelServer, mode: str) -> None:
    cases = {
        "tools/units-01": ("wrong", "wrong_answer"),
        "tools/shop-03": ("invalid", "invalid_action"),
        "tools/travel-02": ("endless", "turn_limit"),
        "tools/cipher-04": ("error", "provider_error"),
    }
    for task_id, (behaviour, _) in cases.items():
        reference.misbehave(task_id, behaviour)  # type: ignore[arg-type]
    try:
        episodes = run_episodes(reference, [get_task(t) for t in cases], mode, max_turns=4)
    finally:
        reference.behaviours.clear()
    outcomes = {e.task: (e.success, e.error) for e in episodes}
    assert outcomes == {task_id: (False, cause) for task_id, (_, cause) in cases.items()}
    by_task = {e.task: e for e in episodes}
    assert by_task["tools/units-01"].answer == extract_answer(WRONG_ANSWER)
    assert by_task["tools/shop-03"].turns == 4
    assert by_task["tools/travel-02"].turns == 4
    assert by_task["tools/cipher-04"].turns == 0
    assert "ServerError" in (by_task["tools/cipher-04"].detail or "")


def test_episode_round_trips_through_json(reference: ReferenceModelServer) -> None:
    (episode,) = run_episodes(reference, [get_task("tools/travel-09")], "json")
    assert Episode.from_json({**episode.to_json(), "later_field": 1}) == episode


def test_data_tasks_do_not_run_in_tool_modes(reference: ReferenceModelServer) -> None:
    with pytest.raises(ValueError, match="data task"):
        run_episodes(reference, [DATA_TASKS[0]], "json")


# --- actions ---------------------------------------------------------------------

TOOLS = tool_functions(["shop"])


def test_json_action_is_the_first_object_and_text_may_surround_it() -> None:
    text = (
        'Let me look.\n```json\n{"name": "product_details", "arguments": {"sku": "MUG-201"}}\n```'
    )
    assert parse_action(text, "json") == ToolCall("product_details", (), {"sku": "MUG-201"})
    assert parse_action("No braces here.", "json") is None
    for broken in (
        '{"name": "x", "arguments": ',
        '{"arguments": {}}',
        '{"name": "x", "arguments": [1]}',
    ):
        assert isinstance(parse_action(broken, "json"), InvalidAction), broken


def test_text_action_takes_literals_only_and_may_span_lines() -> None:
    call = parse_action('Action: shipping_cost(1.5, zone="eu")\nthen more', "text")
    assert call == ToolCall("shipping_cost", (1.5,), {"zone": "eu"})
    spanning = parse_action("Action: f(items=[1,\n 2, 3])", "text")
    assert spanning == ToolCall("f", (), {"items": [1, 2, 3]})
    assert parse_action("Answer: 4", "text") is None
    for broken in ("Action: f(x=y)", "Action: f(g(1))", "Action: not a call", "Action: 3 + 4"):
        invalid = parse_action(broken, "text")
        assert isinstance(invalid, InvalidAction), broken
        assert "Action:" in invalid.message or "literal" in invalid.message


def test_running_a_call_reports_results_errors_and_invalid_calls() -> None:
    assert run_call(ToolCall("shipping_cost", (1.2, "eu")), TOOLS, "json") == ("12.3", True)
    result, valid = run_call(ToolCall("product_details", (), {"sku": "MUG-201"}), TOOLS, "text")
    assert valid and result.startswith("{'sku': 'MUG-201'")
    assert run_call(ToolCall("product_details", (), {"sku": "NOPE"}), TOOLS, "json") == (
        "Error: ValueError: no product with SKU 'NOPE'",
        True,
    )
    unknown, valid = run_call(ToolCall("teleport"), TOOLS, "json")
    assert not valid and "no tool 'teleport'" in unknown and "product_details" in unknown
    wrong, valid = run_call(ToolCall("shipping_cost", (), {"weight": 1}), TOOLS, "json")
    assert not valid and "shipping_cost(weight_kg: 'float', zone: 'str')" in wrong


_ACTIONISH = st.text(alphabet=st.sampled_from("{}[]()\"':=,.\n abc1-Action"), max_size=80)


@given(st.one_of(st.text(max_size=200), _ACTIONISH))
def test_action_parsers_and_answer_extraction_never_crash(text: str) -> None:
    for mode in ("json", "text"):
        action = parse_action(text, mode)  # type: ignore[arg-type]
        assert action is None or isinstance(action, (ToolCall, InvalidAction))
        if isinstance(action, ToolCall):
            run_call(action, TOOLS, mode)  # type: ignore[arg-type]
    answer = extract_answer(text)
    for expected in (1.5, "Kim", ["a", 2]):
        assert check(_task(expected), answer or text) in (True, False)


# --- checker ---------------------------------------------------------------------


def _task(expected: object) -> Task:
    return Task("tools/test-00", "tools", "a test question", expected)


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("I worked it out.\nAnswer: 42", "42"),
        ("**Answer:** 59.20 EUR", "59.20 EUR"),
        ("answer: first\nThen again.\nAnswer: second", "second"),
        ("The answer is 42.", None),
        ("Final answer: Tokyo", "Tokyo"),
        ("Answer:\n\n  Berlin, Tokyo\n", "Berlin, Tokyo"),
        ("Answer:", ""),
    ],
)
def test_extract_answer_takes_the_last_answer_line(text: str, answer: str | None) -> None:
    assert extract_answer(text) == answer


@pytest.mark.parametrize(
    ("expected", "answer", "right"),
    [
        (59.2, "59.20", True),
        (59.2, "€59.2", True),
        (59.2, "59.25", True),  # within 0.1 %
        (59.2, "59.27", False),
        (4.5, "4.51", True),  # within 0.01
        (4.5, "4.52", False),
        (2495, "2,495 EUR", True),
        (22980.95, "22981", True),  # within 0.1 %
        (22980.95, "23010", False),
        (-3.33, "-3.33 °C", True),
        (-3.33, "3.33", False),
        (12, "twelve", False),
        ("GBP", " `gbp`. ", True),
        ("Kim Quinn", "**kim   quinn**", True),
        ("Kim Quinn", "Kim", False),
        (["GBP", "JPY", "USD", "CAD"], "GBP, JPY, USD, CAD", True),
        (["GBP", "JPY", "USD", "CAD"], "['GBP', 'JPY', 'USD', 'CAD']", True),
        (["GBP", "JPY", "USD", "CAD"], "GBP, USD, JPY, CAD", False),
        (["Berlin", "Tokyo"], "Berlin and Tokyo", True),
        ([3, 7, 12, 20], "[3, 7, 12, 20]", True),
        ([3, 7, 12, 20], "3, 7, 12", False),
    ],
)
def test_check_normalises_and_tolerates_as_documented(
    expected: object, answer: str, right: bool
) -> None:
    assert check(_task(expected), answer) is right


def test_check_namespace_compares_structurally_and_fails_on_missing() -> None:
    task = Task("data/test-1", "data", "q", 1, namespace={"t.shape": (3, 2), "m": {"a": 1.0}})
    assert check_namespace(task, {"t.shape": [3, 2], "m": {"a": 1.004}})
    assert not check_namespace(task, {"t.shape": (3, 2), "m": {"a": 1.5}})
    assert not check_namespace(task, {"t.shape": (3, 2), "m": {"a": 1.0, "b": 2.0}})
    assert not check_namespace(task, {"t.shape": (3, 2)})
    values = values_from_reprs({"t.shape": "(3, 2)", "m": None, "x": "DataFrame(...)"})
    assert values == {"t.shape": (3, 2), "m": MISSING, "x": MISSING}
    assert not check_namespace(task, values)
