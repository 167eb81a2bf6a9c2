"""Code actions: which blocks of a model answer run, and that no code is ever lost."""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from codeact_kernel.actions import (
    AnswerStream,
    close_open_block,
    extract_code,
    first_action_end,
    parse_answer,
    split_answer,
    stop_sequences,
    valid_text,
)

# --- fenced blocks ------------------------------------------------------------------


@pytest.mark.parametrize("label", ["python", "py", "python3", "py3", "ipython", "Python", ""])
def test_fenced_python_is_an_action(label: str) -> None:
    assert extract_code(f"Let me look.\n```{label}\nprint(df.head())\n```\n") == "print(df.head())"


@pytest.mark.parametrize(
    "label", ["bash", "sh", "shell", "console", "json", "text", "output", "pycon", "pytb", "sql"]
)
def test_other_languages_are_not_actions(label: str) -> None:
    assert extract_code(f"Run this yourself:\n```{label}\npip install foo\n```") is None


def test_shell_blocks_do_not_run_even_next_to_python() -> None:
    answer = "```bash\nrm -rf build\n```\nand\n```python\nx = 1\n```"
    assert extract_code(answer) == "x = 1"


@pytest.mark.parametrize(
    "info",
    [
        "python:main.py",
        "python3.11",
        "py3.12",
        'py title="x"',
        "Python",
        "PYTHON 3",
        "IPython3",
        "ipython:cell",
        "{.python .numberLines}",
        "python,linenos",
        "python{title=a.py}",
        "\ufeffpython",
        "python\u200b",
    ],
)
def test_python_labels_as_models_write_them_are_actions(info: str) -> None:
    answer = f"Here:\n```{info}\nprint('hi')\n```\n"
    assert extract_code(answer) == "print('hi')"
    kept, _, ended = stream(answer + "And more prose.", size=2)
    assert ended and extract_code(kept) == "print('hi')", "the streamed answer ends there too"


@pytest.mark.parametrize(
    "info", ["Bash", "JSON", "text", "pythonic", "python-repl", "py.test", "pycon:session", "ts"]
)
def test_labels_that_only_look_like_python_are_not_actions(info: str) -> None:
    assert extract_code(f"Like this:\n```{info}\npip install foo\n```\n") is None


def test_tilde_fences_and_info_after_the_language() -> None:
    assert extract_code("~~~python\nx = 1\n~~~") == "x = 1"
    assert extract_code('```python title="a.py"\nx = 1\n```') == "x = 1"
    assert extract_code("```{python}\nx = 1\n```") == "x = 1"


def test_indented_fence_strips_its_indentation_from_the_code() -> None:
    answer = "1. First:\n   ```python\n   for i in range(3):\n       print(i)\n   ```\n"
    assert extract_code(answer) == "for i in range(3):\n    print(i)"


def test_closing_fence_must_be_as_long_and_of_the_same_kind() -> None:
    answer = "````python\ns = '''\n```\n~~~\n'''\n````"
    assert extract_code(answer) == "s = '''\n```\n~~~\n'''"


def test_only_the_first_python_block_is_the_action() -> None:
    answer = "First the imports:\n```python\nimport math\n```\nThen:\n```py\nmath.pi\n```\n"
    assert extract_code(answer) == "import math"
    assert answer[: first_action_end(answer)].endswith("```python\nimport math\n```")


def test_labelled_blocks_win_over_bare_ones() -> None:
    # A model that labels its code uses bare fences for output it imagines.
    answer = "```python\nprint(2 + 2)\n```\nThis prints:\n```\n4\n```"
    assert extract_code(answer) == "print(2 + 2)"


def test_bare_blocks_run_when_nothing_is_labelled() -> None:
    assert extract_code("```\nx = 1\n```\n```\ny = 2\n```") == "x = 1"


def test_unclosed_trailing_fence_runs_to_the_end() -> None:
    assert extract_code("Plotting now.\n```python\nimport matplotlib\nplt.plot(x)\n") == (
        "import matplotlib\nplt.plot(x)"
    )


def test_fence_glued_to_the_last_code_line_closes_an_unclosed_block() -> None:
    assert extract_code("```python\nprint(1)```\nThat prints 1.") == "print(1)"


def test_inline_triple_backticks_are_not_a_block() -> None:
    assert extract_code("Use ```python x``` inline.") is None


def test_python_inside_a_longer_fence_of_another_language_is_an_example() -> None:
    assert extract_code("````markdown\n```python\nx = 1\n```\n````") is None


def test_empty_blocks_are_not_actions() -> None:
    assert extract_code("Done.\n```python\n\n   \n```") is None
    assert extract_code("<execute>\n</execute>") is None


def test_windows_newlines() -> None:
    assert extract_code("```python\r\nx = 1\r\ny = 2\r\n```\r\n") == "x = 1\ny = 2"


def test_plain_answer_has_no_code() -> None:
    assert extract_code("The mean of `data` is 4.2; the histogram is above.") is None
    assert extract_code("") is None


# --- <execute> ----------------------------------------------------------------------


def test_execute_block() -> None:
    assert extract_code("I'll count.\n<execute>\nlen(df)\n</execute>") == "len(df)"


def test_unclosed_execute_runs_to_the_end() -> None:
    # The server strips the `</execute>` stop sequence.
    assert extract_code("I'll count.\n<execute>\nx = 1\nlen(df)\n") == "x = 1\nlen(df)"


def test_execute_on_the_tag_line_and_any_case() -> None:
    assert extract_code("<execute> print(1)</execute>") == "print(1)"
    assert extract_code("<EXECUTE>\nprint(1)\n</Execute >") == "print(1)"


def test_fence_wrapped_in_execute_is_unwrapped() -> None:
    assert extract_code("<execute>\n```python\nx = 1\n```\n</execute>") == "x = 1"
    assert extract_code("<execute>\n```python\nx = 1\n") == "x = 1"


def test_execute_blocks_win_over_fences() -> None:
    answer = "Earlier I ran\n```python\nold()\n```\nNow:\n<execute>\nnew()\n</execute>"
    assert extract_code(answer) == "new()"


def test_execute_tag_inside_a_fence_is_code() -> None:
    assert extract_code("```python\nprint('<execute>')\n```") == "print('<execute>')"


def test_of_several_execute_blocks_the_first_is_the_action() -> None:
    answer = "<execute>a = 1</execute> then <execute>b = 2</execute>"
    assert extract_code(answer) == "a = 1"
    assert first_action_end(answer) == len("<execute>a = 1</execute>")


@pytest.mark.parametrize(
    "answer",
    [
        "No code at all.",
        "```python\nx = 1\n```\nThat sets x.",
        "```python\nx = 1\n```\n```text\n1\n```",
        "```python\nx = 1\n```\n```\nbare output\n```",
        "<execute>x = 1</execute>\n```python\nshown only\n```",
        "<execute>x = 1",
    ],
)
def test_one_action_leaves_nothing_to_drop(answer: str) -> None:
    assert first_action_end(answer) is None


# --- split_answer, close_open_block, stop_sequences ---------------------------------


def test_split_answer_separates_prose_and_code() -> None:
    narrative, code = split_answer(
        "Let me load it.\n\n```python\ndf = load()\n```\n\nThen I'll look.\n```text\nnote\n```"
    )
    assert code == "df = load()"
    assert narrative == "Let me load it.\n\nThen I'll look.\n```text\nnote\n```"


def test_split_answer_without_code_keeps_the_text() -> None:
    assert split_answer("  All done: **42**.\n") == ("All done: **42**.", None)


def test_split_answer_with_execute() -> None:
    assert split_answer("Counting. <execute>len(df)</execute>") == ("Counting.", "len(df)")


def test_parse_answer_reports_ignored_blocks() -> None:
    parsed = parse_answer("```bash\npip install x\n```")
    assert parsed.code is None
    assert [(b.kind, b.language) for b in parsed.blocks] == [("other", "bash")]


@pytest.mark.parametrize(
    ("text", "closed"),
    [
        ("Go.\n<execute>\nx = 1", "Go.\n<execute>\nx = 1\n</execute>"),
        ("Go.\n<execute>\nx = 1\n</execute>", "Go.\n<execute>\nx = 1\n</execute>"),
        ("```python\nx = 1\n", "```python\nx = 1\n```"),
        ("  ~~~~py\nx = 1", "  ~~~~py\nx = 1\n  ~~~~"),
        ("No code.", "No code."),
        # A closing fence would be taken by the first block, closed only by a glued fence.
        ("```\n0```\n```0", "```\n0```\n```0"),
    ],
)
def test_close_open_block(text: str, closed: str) -> None:
    assert close_open_block(text) == closed


def test_stop_sequences() -> None:
    assert stop_sequences("execute") == ("</execute>",)
    # Never a fence: that would cut the opening one.
    assert stop_sequences("markdown") == ("\nObservation:",)
    with pytest.raises(ValueError, match="json"):
        stop_sequences("json")


# --- properties: never lose code, never raise ----------------------------------------

_TRICKY = st.sampled_from(
    ["`", "```", "````", "~~~", "<execute>", "</execute>", "    ", "\t", "python", "\n", "'''"]
)
_CHARS = st.characters(codec="utf-8", exclude_characters="\r")
_LINE = st.lists(st.one_of(st.text(_CHARS, max_size=8), _TRICKY), max_size=6).map("".join)
_FENCE_LINE = re.compile(r"^[ \t]*(`{3,}|~{3,})", re.M)


def _real(line: str) -> str:
    return line if line.strip() else "x" + line


def _not_a_fence(line: str) -> str:
    return "a " + line if _FENCE_LINE.match(line) else line


@st.composite
def code_strategy(draw: st.DrawFn) -> str:
    """Code whose first and last lines are not blank (blank edges are trimmed)."""
    lines = draw(st.lists(_LINE.map(lambda s: s.replace("\n", "")), min_size=1, max_size=8))
    lines[0], lines[-1] = _real(lines[0]), _real(lines[-1])
    return "\n".join(lines)


@st.composite
def prose_strategy(draw: st.DrawFn, *, allow_bare: bool) -> str:
    """Prose with backticks anywhere but at a line start, and closed fenced blocks that
    are not Python (optionally bare)."""
    pieces: list[str] = []
    for _ in range(draw(st.integers(0, 4))):
        line = _not_a_fence(draw(_LINE).replace("\n", " "))
        if draw(st.booleans()):
            pieces.append(line)
        else:
            label = draw(
                st.sampled_from(
                    ["bash", "Bash", "output", "json", "JSON", "text", "pytb", "python-repl"]
                )
            )
            if allow_bare and draw(st.booleans()):
                label = ""
            pieces.append(f"```{label}\n{line}\n```")
    return re.sub("<execute", "<exec", "\n".join(pieces), flags=re.I)


def _fence_for(code: str, char: str) -> str:
    longest = max((len(run) for run in re.findall(re.escape(char) + "+", code)), default=0)
    return char * max(3, longest + 1)


@settings(max_examples=300)
@given(
    code=code_strategy(),
    before=prose_strategy(allow_bare=True),
    after=prose_strategy(allow_bare=True),
    label=st.builds(
        lambda word, case, suffix: case(word) + suffix,
        st.sampled_from(["python", "py", "python3", "py3", "ipython", "ipython3"]),
        st.sampled_from([str.lower, str.upper, str.capitalize]),
        st.sampled_from(["", "3.11", "3.12.1", ":main.py", ' title="a.py"', " {.numberLines}"]),
    ),
    char=st.sampled_from(["`", "~"]),
    indent=st.integers(0, 4),
    closed=st.booleans(),
)
@example(
    code="x = '```'",
    before="use `x`",
    after="",
    label="python",
    char="`",
    indent=0,
    closed=True,
)
def test_fenced_code_is_extracted_exactly(
    code: str, before: str, after: str, label: str, char: str, indent: int, closed: bool
) -> None:
    fence = _fence_for(code, char)
    pad = " " * indent
    body = "\n".join(pad + line for line in code.split("\n"))
    if closed:
        answer = f"{before}\n{pad}{fence}{label}\n{body}\n{pad}{fence}\n{after}"
    else:
        # Nothing follows an unclosed fence; a line ending in the fence would close it.
        assume(not re.search(rf"\S[ \t]*{re.escape(char)}{{3,}}[ \t]*$", code, re.M))
        answer = f"{before}\n{pad}{fence}{label}\n{body}\n"
    assert extract_code(answer) == code
    narrative, split_code = split_answer(answer)
    assert split_code == code
    assert code not in narrative or code in before + after


@settings(max_examples=300)
@given(
    code=code_strategy(),
    before=prose_strategy(allow_bare=True),
    after=prose_strategy(allow_bare=True),
    closed=st.booleans(),
    newline_before=st.booleans(),
)
def test_execute_code_is_extracted_exactly(
    code: str, before: str, after: str, closed: bool, newline_before: bool
) -> None:
    code = re.sub("</execute", "</exec", code, flags=re.I)
    # Code that is itself one fenced block is unwrapped, by design.
    assume(not _FENCE_LINE.match(code))
    # Text after a closing fence would make it no closing fence, hence the newline.
    inline = not newline_before and not before.endswith("```")
    opening = " <execute>\n" if inline else "\n<execute>\n"
    answer = before + opening + code + ("\n</execute>\n" + after if closed else "")
    assert extract_code(answer) == code


@settings(max_examples=500)
@given(st.lists(st.one_of(_LINE, _TRICKY), max_size=12).map("".join))
@example("```python\n")
@example("<execute>")
@example("~~~\n```\n<execute>```")
def test_parsing_never_raises_and_closing_keeps_the_code(text: str) -> None:
    code = extract_code(text)
    narrative, split_code = split_answer(text)
    assert split_code == code
    assert isinstance(narrative, str)
    assert code is None or code.strip()
    assert extract_code(close_open_block(text)) == code


# --- where a streamed answer ends ------------------------------------------------------


def stream(text: str, action_format: str = "markdown", size: int = 3) -> tuple[str, str, bool]:
    """(the answer, what was shown, whether it ended early) for `text` in deltas of `size`."""
    answer = AnswerStream(action_format)
    shown = "".join(answer.add(text[i : i + size]) for i in range(0, len(text), size))
    shown += answer.finish()
    assert answer.shown == shown
    return answer.text, shown, answer.ended


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        # The server ignored the stop sequence: the model's own observation and its next
        # action are not ours.
        (
            "Let me look.\n<execute>\nprint(1)\n</execute>\nObservation:\n1\n<execute>\nrm()",
            "Let me look.\n<execute>\nprint(1)\n",
        ),
        (
            "Thinking.\nObservation: 4\n<execute>x()</execute>",
            "Thinking.\nObservation: 4\n<execute>x()",
        ),
    ],
)
def test_execute_answers_end_at_the_stop_sequence(text: str, kept: str) -> None:
    assert stream(text, "execute") == (kept, kept, True)


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (
            "Look.\n```python\nx = 1\n```\nObservation:\n1\n```python\ny()\n```",
            "Look.\n```python\nx = 1\n```",
        ),
        (
            "```python\nx = 1\n```\nThis sets x, then:\n```python\ny()\n```\n",
            "```python\nx = 1\n```",
        ),
        ("Hmm.\nObservation: 42\nSo it is 42.", "Hmm."),
        ("<execute>\nx = 1\n</execute> and more\n", "<execute>\nx = 1\n</execute>"),
        (
            "~~~py\nprint('```')\n```\nstill code\n~~~\nafter",
            "~~~py\nprint('```')\n```\nstill code\n~~~",
        ),
    ],
)
def test_markdown_answers_end_after_their_first_action(text: str, kept: str) -> None:
    assert stream(text) == (kept, kept, True)


@pytest.mark.parametrize(
    "text",
    [
        "Just prose,\nover lines.\n",
        "```bash\nls\n```\nand more\n",
        "```python\n\n```\nempty block, no action\n",
        "```\nbare = 1\n```\n```\nbare = 2\n```\n",
        "```python\nx = 1\n```",
        "<execute>\n</execute> empty\n",
        "Observation without the newline before it\n",
    ],
)
def test_answers_that_go_to_the_end(text: str) -> None:
    assert stream(text) == (text, text, False)


def test_in_the_execute_format_fences_do_not_end_the_answer() -> None:
    text = "Example:\n```python\nx = 1\n```\nNow:\n<execute>\ny = 2"
    assert stream(text, "execute") == (text, text, False)


def test_a_line_that_may_close_an_execute_block_waits_until_it_is_complete() -> None:
    answer = AnswerStream("markdown")
    assert answer.add("I'll run <exec") == ""
    assert answer.add("ute>x = 1</execute> and") == ""
    assert answer.add(" more\n") == "I'll run <execute>x = 1</execute>"
    assert answer.ended and answer.text == "I'll run <execute>x = 1</execute>"
    assert answer.finish() == ""
    prose = AnswerStream("markdown")
    assert prose.add("if a < b") == ""
    assert prose.add("\nthen") == "if a < b\nthen"


def test_text_that_may_begin_a_stop_sequence_waits() -> None:
    answer = AnswerStream("markdown")
    assert answer.add("Done.") == "Done."
    assert answer.add("\nObs") == ""
    assert answer.add("cure") == "\nObscure"
    assert answer.add("\n") == ""
    assert answer.finish() == "\n"
    assert answer.text == "Done.\nObscure\n"


def test_newlines_are_normalised_even_split_across_deltas() -> None:
    assert stream("```python\r\nx = 1\r\n```\r\nmore", size=1)[0] == "```python\nx = 1\n```"
    assert stream("a\rb\r", size=2)[0] == "a\nb\n"


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("plain", "plain"),
        ("café ✓", "café ✓"),
        ("caf\udce9", "caf\ufffd"),
        ("\ud83d\ude00", "\ufffd\ufffd"),
    ],
)
def test_text_is_made_valid_utf8(text: str, valid: str) -> None:
    assert valid_text(text) == valid
    valid.encode("utf-8")
    assert stream(text)[0] == valid


@settings(max_examples=300)
@given(
    st.lists(st.one_of(_LINE, _TRICKY, st.just("\nObservation:")), max_size=12).map("".join),
    st.integers(1, 20),
    st.sampled_from(["markdown", "execute"]),
)
@example("```python\nx\n```\n```python\ny\n```\n", 1, "markdown")
@example("<execute>x</execute>\n<execute>y</execute>\n", 2, "markdown")
def test_streaming_never_shows_past_the_end_and_keeps_the_first_action(
    text: str, size: int, action_format: str
) -> None:
    kept, shown, _ = stream(text, action_format, size)
    whole, _, _ = stream(text, action_format, len(text) or 1)
    assert kept == shown == whole, "how the answer is split into deltas does not matter"
    assert text.startswith(kept)
    assert not any(stop in kept for stop in stop_sequences(action_format))
    rest = text[len(kept) :]
    if rest and not any(rest.startswith(stop) for stop in stop_sequences(action_format)):
        # Cut right after the first complete action, which is whole in the answer.
        actions = parse_answer(kept).actions
        assert len(actions) == 1 and actions[0].closed and actions[0].end == len(kept)
