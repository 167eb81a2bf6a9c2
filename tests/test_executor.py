"""The executor runs actions in a real IPython shell and observes what they did."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

from codeact_kernel.events import Observation
from codeact_kernel.executor import (
    EMPTY_OUTPUT,
    EXIT_REFUSED,
    ShellExecutor,
    as_terminal_shows,
    cut_middle,
    strip_ansi,
)
from codeact_kernel.interrupts import RequestInterrupts


@pytest.fixture
def shell(ipython: InteractiveShell) -> InteractiveShell:
    ipython.user_ns.pop("x", None)
    return ipython


def run(shell: InteractiveShell, code: str, **kwargs: Any) -> Observation:
    # Not asyncio.run: it installs a SIGINT handler of its own, which a kernel does not.
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(ShellExecutor(shell, **kwargs).run(code))  # type: ignore[arg-type]
    finally:
        loop.close()


def test_runs_in_the_user_namespace_and_observes_stdout(shell: InteractiveShell) -> None:
    observation = run(shell, "x = 21 * 2\nprint('x is', x)")
    assert shell.user_ns["x"] == 42
    assert observation.ok
    assert observation.text == "x is 42"
    assert observation.outputs[0] == {
        "output_type": "stream",
        "name": "stdout",
        "text": "x is 42\n",
    }


def test_result_traceback_and_empty_output(shell: InteractiveShell) -> None:
    result = run(shell, "6 * 7")
    assert result.ok and "42" in result.text and result.text.startswith("Out[")
    failure = run(shell, "1 / 0")
    assert not failure.ok and failure.error_name == "ZeroDivisionError"
    assert "ZeroDivisionError" in failure.text and "\x1b[" not in failure.text
    assert run(shell, "y = 1").text == EMPTY_OUTPUT


def test_syntax_error_is_an_observation(shell: InteractiveShell) -> None:
    observation = run(shell, "def f(:")
    assert not observation.ok
    assert observation.error_name == "SyntaxError"
    assert "SyntaxError" in observation.text


PIXEL_PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4"
    "DwABBAEAwS2OUAAAAABJRU5ErkJggg=="
)


def test_images_become_placeholders(shell: InteractiveShell) -> None:
    code = (
        "from IPython.display import display, Image\n"
        "import base64\n"
        f"display(Image(base64.b64decode('{PIXEL_PNG}')))"
    )
    observation = run(shell, code)
    assert "[image/png image shown to the user]" in observation.text
    assert observation.images and observation.outputs[0]["output_type"] == "display_data"


def test_images_in_base64_lines_reach_the_model_whole(shell: InteractiveShell) -> None:
    lines = "\n".join(PIXEL_PNG[i : i + 20] for i in range(0, len(PIXEL_PNG), 20)) + "\n"
    code = f"display({{'image/png': {lines!r}}}, raw=True)"
    observation = run(shell, code)
    assert observation.images == (PIXEL_PNG,)


def test_a_line_left_open_is_not_overwritten_by_the_next_output(
    shell: InteractiveShell,
) -> None:
    code = "import sys\nsys.stdout.write('Loading model...\\r')\nsys.stdout.flush()\n6 * 7"
    observation = run(shell, code)
    lines = observation.text.splitlines()
    assert lines[0] == "Loading model..."
    assert lines[1].endswith(": 42"), lines


def test_long_output_is_cut_head_and_tail(shell: InteractiveShell) -> None:
    observation = run(shell, "print('a' * 3000 + 'b' * 3000)", observation_chars=1000)
    assert observation.text.startswith("a" * 500)
    assert observation.text.endswith("b" * 500)
    assert "characters truncated" in observation.text
    assert len(observation.text) < 1100


def test_step_timeout_interrupts_the_action(shell: InteractiveShell) -> None:
    started = time.monotonic()
    observation = run(shell, "import time\ntime.sleep(30)", step_timeout=0.5)
    assert time.monotonic() - started < 5
    assert observation.timed_out and not observation.ok and not observation.interrupted
    assert "step_timeout" in observation.text


def test_history_and_execution_count(shell: InteractiveShell) -> None:
    before = shell.execution_count
    observation = run(shell, "z = 5")
    assert observation.execution_count == before
    assert shell.execution_count == before + 1


def test_helpers() -> None:
    assert strip_ansi("\x1b[0;31mError\x1b[0m") == "Error"
    # Hyperlinks (rich, `ls --hyperlink`), titles, cursor and charset escapes.
    assert strip_ansi("\x1b]8;;https://x.org\x1b\\link\x1b]8;;\x1b\\ done") == "link done"
    assert strip_ansi("\x1b]0;title\x07ok") == "ok"
    assert strip_ansi("\x1b[?25lwait\x1b[?25h\x1b(B\x1b7\x1b8") == "wait"
    assert strip_ansi("[brackets] and \\ stay") == "[brackets] and \\ stay"
    assert cut_middle("abc", 10) == "abc"
    cut = cut_middle("x" * 50 + "y" * 50, 20)
    assert cut.startswith("x" * 10) and cut.endswith("y" * 10)


def test_output_through_a_stream_kept_from_an_earlier_action_is_observed(
    shell: InteractiveShell,
) -> None:
    run(
        shell,
        "import logging, sys\n"
        "kept_log = logging.getLogger('codeact-test-kept')\n"
        "kept_log.addHandler(logging.StreamHandler(sys.stderr))\n"
        "kept_log.propagate = False",
    )
    observation = run(shell, "kept_log.warning('seen in step two')")
    assert "seen in step two" in observation.text


# --- hostile actions (issue 9) -------------------------------------------------------

KEY = "sk-test-HIDDEN-0123456789abcdef"


def test_exit_and_quit_leave_the_shell_running(shell: InteractiveShell) -> None:
    for code in ("exit()", "quit()", "get_ipython().ask_exit()"):
        observation = run(shell, f"{code}\nprint('after')")
        assert observation.ok, observation.text
        assert EXIT_REFUSED in observation.text
        assert observation.text.endswith("after"), "the rest of the action ran, as in IPython"
        assert not shell.exit_now
        assert getattr(shell, "keep_running", True)
    assert "ask_exit" not in vars(shell), "IPython's own exit is back for the user"


def test_sys_exit_is_an_ordinary_exception(shell: InteractiveShell) -> None:
    observation = run(shell, "import sys\nsys.exit(3)")
    assert not observation.ok and observation.error_name == "SystemExit"
    assert "SystemExit: 3" in observation.text
    assert not shell.exit_now


@pytest.mark.parametrize(
    ("code", "shown"),
    [
        ("print('caf\\udce9.txt')", "caf\ufffd.txt"),
        ("print('lone \\ud800 high')", "lone \ufffd high"),
        ("print('pair \\ud83d\\ude00')", "pair \U0001f600"),
        ("import os\nos.write(1, b'raw \\xff\\xfe bytes\\n')", "raw \ufffd\ufffd bytes"),
        ("raise ValueError('caf\\udce9')", "ValueError: caf\ufffd"),
    ],
)
def test_output_that_is_not_valid_utf8_reaches_the_model_as_text(
    shell: InteractiveShell, code: str, shown: str
) -> None:
    observation = run(shell, code)
    assert shown in observation.text
    observation.text.encode("utf-8")
    json.dumps([observation.outputs, observation.text], ensure_ascii=False).encode("utf-8")


def test_a_latin1_file_name_from_listdir(shell: InteractiveShell, tmp_path: Path) -> None:
    (Path(os.fsdecode(bytes(tmp_path) + b"/caf\xe9.txt"))).write_text("x")
    code = f"import os\nfor name in os.listdir({bytes(tmp_path)!r}):\n    print(os.fsdecode(name))"
    observation = run(shell, code)
    assert "caf\ufffd.txt" in observation.text
    observation.text.encode("utf-8")


def test_capture_costs_linear_time(shell: InteractiveShell) -> None:
    """Ten times the output may not take much more than ten times as long: quadratic
    capture (100,000 prints in 28 s) takes a hundred times as long."""

    def seconds(lines: int, code: str, limit: float = 0.0) -> float:
        started = time.perf_counter()
        observation = run(shell, code.format(lines=lines), step_timeout=limit)
        assert not observation.timed_out, f"{lines} lines took longer than {limit:.1f} s"
        return time.perf_counter() - started

    for code in (
        "for i in range({lines}):\n    print(i)",
        "import sys\nfor i in range({lines}):\n    sys.stderr.write(f'\\rstep {{i}}')",
    ):
        small = min(seconds(10_000, code) for _ in range(3))
        # Linear: about 10 times as long; quadratic: about 100 times. The limit stops
        # a regression early instead of letting it run for minutes.
        seconds(100_000, code, limit=max(30 * small, 1.0))


def test_progress_bars_settle_before_the_observation_is_cut(shell: InteractiveShell) -> None:
    code = (
        "import sys, time\n"
        "for epoch in range(1, 4):\n"
        "    for i in range(400):\n"
        "        sys.stdout.write(f'\\repoch {epoch} [{\"=\" * (i // 20):<20}] {i}/400')\n"
        "    print(f'\\repoch {epoch} done: loss {1 / epoch:.3f}')\n"
        "print('spinner |\\b/\\b-\\b\\\\\\bok')\n"
        "print('RESULT 42')"
    )
    observation = run(shell, code, observation_chars=300)
    assert "truncated" not in observation.text
    for epoch in (1, 2, 3):
        assert f"epoch {epoch} done: loss" in observation.text
    assert "spinner ok" in observation.text
    assert observation.text.endswith("RESULT 42")
    stream = "".join(o["text"] for o in observation.outputs if o["output_type"] == "stream")
    assert stream.count("\r") > 1000, "the user's outputs keep every update"


def test_tqdm_leaves_its_final_line(shell: InteractiveShell) -> None:
    pytest.importorskip("tqdm")
    code = (
        "from tqdm import tqdm\n"
        "total = 0\n"
        "for i in tqdm(range(2000), mininterval=0, ascii=True):\n"
        "    total += i\n"
        "print('total', total)"
    )
    observation = run(shell, code, observation_chars=400)
    assert "truncated" not in observation.text
    assert "2000/2000" in observation.text
    assert observation.text.endswith("total 1999000")


def test_as_terminal_shows() -> None:
    assert as_terminal_shows("plain\ntext") == "plain\ntext"
    assert as_terminal_shows("a\r\nb\r\n") == "a\nb\n"
    assert as_terminal_shows("10%\r50%\r100%\ndone") == "100%\ndone"
    assert as_terminal_shows("downloading 100%\r\ndone") == "downloading 100%\ndone"
    assert as_terminal_shows("0\r1\r2\r\nnext") == "2\nnext", "a bare return changes nothing"
    assert as_terminal_shows("working\r       \rDone") == "Done"
    assert as_terminal_shows("ab\bc") == "ac"
    assert as_terminal_shows("\b\bx") == "x"
    assert as_terminal_shows("a\rb\bc") == "c"
    # What is not written over stays, as on a terminal and in JupyterLab.
    assert as_terminal_shows("downloading 100%\rdone") == "doneloading 100%"
    assert as_terminal_shows("abc\r") == "abc"
    # ANSI erase-in-line: to the end, to the start, the whole line.
    assert as_terminal_shows("downloading 100%\r\x1b[Kdone") == "done"
    assert as_terminal_shows("\r\x1b[K3\r\x1b[0K2\r\x1b[K1\n") == "1\n"
    assert as_terminal_shows("long line\x1b[2K\rok") == "ok"
    assert as_terminal_shows("abcdef\x1b[1Kxy") == "      xy"
    assert as_terminal_shows("abcdef\b\b\x1b[Kz") == "abcdz"
    # Keras: backspaces over the last update, then the next one.
    assert as_terminal_shows("1/3 [=>..]" + "\b" * 10 + "3/3 [====]\n") == "3/3 [====]\n"


def test_settling_lines_costs_linear_time() -> None:
    def seconds(updates: int) -> float:
        bar = "".join(f"\r{i:7d} [{'#' * (i * 40 // updates):<40}]" for i in range(updates))
        started = time.perf_counter()
        assert as_terminal_shows(bar + "\n").startswith(f"{updates - 1:7d} [####")
        return time.perf_counter() - started

    small = min(seconds(20_000) for _ in range(3))
    assert seconds(200_000) < 30 * small + 0.5
    assert as_terminal_shows("x" * 10_000_000 + "\ry") == "y" + "x" * 9_999_999


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("import os\nos.system('echo fd-out-1')", "fd-out-1"),
        ("import subprocess\nsubprocess.run(['echo', 'fd-out-2'])", "fd-out-2"),
        ("import subprocess\nsubprocess.run('echo fd-err-3 >&2', shell=True)", "fd-err-3"),
        ("import os\nos.write(2, b'fd-err-4\\n')", "fd-err-4"),
    ],
)
def test_what_subprocesses_write_is_observed(
    shell: InteractiveShell, code: str, expected: str
) -> None:
    observation = run(shell, code)
    assert expected in observation.text
    streams = "".join(o["text"] for o in observation.outputs if o["output_type"] == "stream")
    assert streams.count(expected) == 1


def test_subprocess_output_keeps_its_place_among_prints(shell: InteractiveShell) -> None:
    code = (
        "import os, subprocess\n"
        "print('one')\n"
        "os.system('echo two')\n"
        "print('three')\n"
        "subprocess.run(['echo', 'four'])\n"
        "print('five')"
    )
    for _ in range(5):
        observation = run(shell, code)
        assert observation.text.split() == ["one", "two", "three", "four", "five"]


def test_a_background_process_outlives_its_action(shell: InteractiveShell) -> None:
    code = "import subprocess\nlate = subprocess.Popen('sleep 0.3; echo late-line', shell=True)"
    observation = run(shell, code)
    assert observation.text == EMPTY_OUTPUT
    later = run(shell, "late.wait()\nprint('waited')")
    # It reaches whatever runs then (its own reader forwards it, so in no fixed order).
    assert sorted(later.text.split()) == ["late-line", "waited"]


@pytest.mark.parametrize(
    "code",
    [
        "print(os.environ['HIDDEN_KEY'])",
        "print('key:', os.environ['HIDDEN_KEY'], file=sys.stderr)",
        "os.environ['HIDDEN_KEY']",
        "display({'text/plain': os.environ['HIDDEN_KEY'], 'text/html': 'key'}, raw=True)",
        "raise ValueError(os.environ['HIDDEN_KEY'])",
        "os.system('echo $HIDDEN_KEY')",
        "k = os.environ['HIDDEN_KEY']\nsys.stdout.write(k[:9])\nsys.stdout.write(k[9:] + '\\n')",
        "k = os.environ['HIDDEN_KEY']\nfor c in k:\n    sys.stdout.write(c)",
        "for c in os.environ['HIDDEN_KEY']:\n    sys.stdout.write(c)\n    sys.stdout.flush()",
        "k = os.environ['HIDDEN_KEY']\nprint(k[:5], end='', flush=True)\nprint(k[5:])",
        "k = os.environ['HIDDEN_KEY']\nos.write(1, k[:6].encode())\nos.write(1, k[6:].encode())",
        "display({'application/json': {'key': [os.environ['HIDDEN_KEY']]}}, raw=True)",
        "display({'image/svg+xml': '<svg>' + os.environ['HIDDEN_KEY'] + '</svg>'}, raw=True)",
        "display({'text/plain': 'k', 'text/javascript': os.environ['HIDDEN_KEY']}, raw=True)",
    ],
)
# A key of no known shape is masked only because it is the kernel's own.
@pytest.mark.parametrize("key", [KEY, "local-server-pass-4242"], ids=["shaped", "shapeless"])
def test_the_kernels_key_is_masked_in_what_actions_show(
    shell: InteractiveShell,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    code: str,
    key: str,
) -> None:
    monkeypatch.setenv("HIDDEN_KEY", key)
    run(shell, "import os, sys\nfrom IPython.display import display")
    capfd.readouterr()
    observation = run(shell, code, hide=[key])
    shown = capfd.readouterr()
    assert key not in shown.out + shown.err
    assert key not in json.dumps(observation.outputs)
    assert key not in "".join(o.get("text", "") for o in observation.outputs)
    assert key not in observation.text
    assert "***" in json.dumps(observation.outputs)


@pytest.mark.parametrize(
    "code",
    [
        "print(data)",
        "display({'application/json': {'columns': [data]}}, raw=True)",
        "display({'text/html': '<td>' + data + '</td>'}, raw=True)",
    ],
)
def test_the_users_key_shaped_data_is_shown_as_it_is_and_part_of_the_key_is_not(
    shell: InteractiveShell, capfd: pytest.CaptureFixture[str], code: str
) -> None:
    data = "sk_product_surrogate_key_id"  # a column name, not a secret
    run(shell, f"from IPython.display import display\ndata = {data!r}")
    capfd.readouterr()
    observation = run(shell, code, hide=[KEY])
    assert data in json.dumps(observation.outputs)
    assert data in capfd.readouterr().out + json.dumps(observation.outputs)

    run(shell, f"data = {KEY[:-1]!r}")  # the key without its last character
    observation = run(shell, code, hide=[KEY])
    assert KEY[:-1] not in json.dumps(observation.outputs)
    assert KEY[:-1] not in capfd.readouterr().out


def test_a_failed_actions_traceback_as_stderr_text(shell: InteractiveShell) -> None:
    as_text = run(shell, "1 / 0", errors_as_text=True)
    assert as_text.error_name == "ZeroDivisionError"
    assert [o["output_type"] for o in as_text.outputs] == ["error"], "recorded as an error"
    assert "ZeroDivisionError" in as_text.text


def test_the_sigint_policy_comes_back_after_every_action() -> None:
    cancelled: list[bool] = []
    before = signal.getsignal(signal.SIGINT)
    with RequestInterrupts(lambda: cancelled.append(True)) as interrupts:
        policy = signal.getsignal(signal.SIGINT)
        for change in (
            lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
            lambda: signal.signal(signal.SIGINT, signal.default_int_handler),
            lambda: signal.signal(signal.SIGINT, lambda *_: None),
            lambda: signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}),
        ):
            with interrupts.action(lambda: None):
                change()
            assert signal.getsignal(signal.SIGINT) == policy
            assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, ())
            signal.raise_signal(signal.SIGINT)
    assert len(cancelled) == 4, "each interrupt reached the policy, none raised"
    assert signal.getsignal(signal.SIGINT) == before


def test_an_interrupted_actions_traceback_ends_in_the_users_code(
    shell: InteractiveShell,
) -> None:
    code = "import time\nprint('sleeping', flush=True)\ntime.sleep(30)"
    loop = asyncio.new_event_loop()
    main = threading.main_thread().ident
    assert main is not None
    threading.Timer(0.5, signal.pthread_kill, (main, signal.SIGINT)).start()
    try:
        with RequestInterrupts(lambda: None) as interrupts:
            executor = ShellExecutor(shell, watch=interrupts.action)
            observation = loop.run_until_complete(executor.run(code))
    finally:
        loop.close()
    assert observation.interrupted
    (error,) = [o for o in observation.outputs if o["output_type"] == "error"]
    traceback = strip_ansi("\n".join(error["traceback"]))
    assert "interrupts.py" not in traceback and "_on_sigint" not in traceback
    assert "_on_sigint" not in observation.text
    last_frame = traceback.rstrip().splitlines()[-3:]
    assert any("time.sleep(30)" in line for line in last_frame), traceback


# Code Python's compiler gives up on, which IPython raises out of `run_cell`.
TOO_DEEP = {
    "a sum of 5,000 terms": "deep_total = 1" + "+1" * 5000,
    "a sum of 200,000 terms": "deep_total = 1" + "+1" * 200_000,
    "100,000 attributes": "deep_total = a" + ".b" * 100_000,
}


@pytest.mark.parametrize("errors_as_text", [False, True], ids=["error output", "as text"])
@pytest.mark.parametrize("code", TOO_DEEP.values(), ids=list(TOO_DEEP))
def test_an_action_too_deep_for_the_compiler_is_an_ordinary_failure(
    shell: InteractiveShell, capfd: pytest.CaptureFixture[str], code: str, errors_as_text: bool
) -> None:
    capfd.readouterr()
    observation = run(shell, code, errors_as_text=errors_as_text)
    assert not observation.ok and observation.error_name == "RecursionError"
    assert observation.text.startswith("RecursionError: maximum recursion depth exceeded")
    assert EMPTY_OUTPUT not in observation.text
    assert [o["output_type"] for o in observation.outputs] == ["error"]
    shown = strip_ansi("".join(capfd.readouterr()))
    assert "RecursionError: maximum recursion depth exceeded" in shown, "the user sees it"
    assert "executor.py" not in shown + observation.text
    assert "deep_total" not in shell.user_ns
    assert run(shell, "print('next')").text == "next"


STREAMS_TAKEN = {
    "stderr None": "sys.stderr = None",
    "stdout None": "sys.stdout = None",
    "both None": "sys.stdout = sys.stderr = None",
    "stderr deleted": "del sys.stderr",
    "stderr a StringIO": "sys.stderr = io.StringIO()",
    "stderr no stream": "sys.stderr = object()",
    "stdout closed": "sys.stdout.close()",
}


@pytest.mark.parametrize("errors_as_text", [False, True], ids=["error output", "as text"])
@pytest.mark.parametrize("change", STREAMS_TAKEN.values(), ids=list(STREAMS_TAKEN))
def test_whatever_an_action_does_to_the_streams_its_traceback_is_shown(
    shell: InteractiveShell, capfd: pytest.CaptureFixture[str], change: str, errors_as_text: bool
) -> None:
    streams = sys.stdout, sys.stderr
    capfd.readouterr()
    observation = run(shell, f"import io, sys\n{change}\n1 / 0", errors_as_text=errors_as_text)
    assert (sys.stdout, sys.stderr) == streams, "the user's streams are back"
    assert observation.error_name == "ZeroDivisionError"
    assert "----> 3 1 / 0" in observation.text
    assert observation.text.endswith("ZeroDivisionError: division by zero")
    assert "AttributeError" not in observation.text and "executor.py" not in observation.text
    shown = strip_ansi("".join(capfd.readouterr()))
    assert "ZeroDivisionError: division by zero" in shown, "the user sees it"
    assert "executor.py" not in shown


def test_results_displays_and_refusals_are_shown_without_the_streams(
    shell: InteractiveShell, capfd: pytest.CaptureFixture[str]
) -> None:
    code = (
        "import sys\nfrom IPython.display import display\nsys.stdout = sys.stderr = None\n"
        "display('displayed')\nexit()\n6 * 7"
    )
    capfd.readouterr()
    observation = run(shell, code)
    assert observation.ok, observation.text
    assert observation.text.splitlines() == [
        "'displayed'",
        EXIT_REFUSED,
        f"Out[{observation.execution_count}]: 42",
    ]
    shown = capfd.readouterr()
    assert "'displayed'" in shown.out and "42" in shown.out and EXIT_REFUSED in shown.err


TEE_PATHS = {
    "a missing attribute": ("sys.stdout.no_such_attribute", "AttributeError"),
    "bytes written": ("sys.stdout.write(b'bytes')", "TypeError: write() argument must be str"),
    "writelines of bytes": ("sys.stderr.writelines([b'bytes'])", "TypeError"),
    "caught and raised again": (
        "try:\n    sys.stdout.no_such_attribute\nexcept AttributeError as error:\n"
        "    raise ValueError('wrapped') from error",
        "ValueError: wrapped",
    ),
}


@pytest.mark.parametrize(("code", "error"), TEE_PATHS.values(), ids=list(TEE_PATHS))
def test_tracebacks_through_the_streams_end_in_the_users_code(
    shell: InteractiveShell, capfd: pytest.CaptureFixture[str], code: str, error: str
) -> None:
    capfd.readouterr()
    observation = run(shell, f"import sys\n{code}")
    assert error in observation.text
    shown = strip_ansi("".join(capfd.readouterr()))
    for seen in (observation.text, shown):
        assert "capture.py" not in seen and "Tee" not in seen, seen
    (output,) = [o for o in observation.outputs if o["output_type"] == "error"]
    frames = strip_ansi("\n".join(output["traceback"]))
    # The failing line is the user's, and no frame follows it.
    assert re.search(r"----> \d+ .*sys\.std(out|err)\.\w+.*\n(.*\n)*?\w+Error", frames), frames
    assert "File " not in frames, frames
