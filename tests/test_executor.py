"""The executor runs actions in a real IPython shell and observes what they did."""

from __future__ import annotations

import asyncio
import time

import pytest
from IPython.core.interactiveshell import InteractiveShell

from codeact_kernel.events import Observation
from codeact_kernel.executor import EMPTY_OUTPUT, ShellExecutor, cut_middle, strip_ansi


@pytest.fixture
def shell(ipython: InteractiveShell) -> InteractiveShell:
    ipython.user_ns.pop("x", None)
    return ipython


def run(shell: InteractiveShell, code: str, **kwargs: float) -> Observation:
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
