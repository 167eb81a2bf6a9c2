"""Code actions: which blocks of a model answer run, and that no code is ever lost."""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from codeact_kernel.actions import (
    close_open_block,
    extract_code,
    parse_answer,
    split_answer,
    stop_sequences,
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


def test_several_python_blocks_run_in_order_joined_by_a_blank_line() -> None:
    answer = "First the imports:\n```python\nimport math\n```\nThen:\n```py\nmath.pi\n```\n"
    assert extract_code(answer) == "import math\n\nmath.pi"


def test_labelled_blocks_win_over_bare_ones() -> None:
    # A model that labels its code uses bare fences for output it imagines.
    answer = "```python\nprint(2 + 2)\n```\nThis prints:\n```\n4\n```"
    assert extract_code(answer) == "print(2 + 2)"


def test_bare_blocks_run_when_nothing_is_labelled() -> None:
    assert extract_code("```\nx = 1\n```\n```\ny = 2\n```") == "x = 1\n\ny = 2"


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


def test_several_execute_blocks_are_joined() -> None:
    assert extract_code("<execute>a = 1</execute> then <execute>b = 2</execute>") == (
        "a = 1\n\nb = 2"
    )


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
            label = draw(st.sampled_from(["bash", "output", "json", "text", "pytb"]))
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
    label=st.sampled_from(["python", "py", "python3", "ipython", "Python"]),
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
