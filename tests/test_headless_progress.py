"""What `codeact run` prints: terminal text (as terminal IPython) or JSON lines."""

from __future__ import annotations

import io
import json

from codeact_kernel.headless_progress import JsonReporter, TerminalReporter, footer

FOOTER = {
    "data": {"text/markdown": "<sub>CodeAct · 1 step</sub>", "text/plain": "CodeAct · 1 step"},
    "metadata": {},
}
FINISHED = {"event": "finished", "status": "ok", "steps": 1, "tokens": 1234, "seconds": 2.5}


def test_the_terminal_shows_prose_actions_outputs_and_one_footer() -> None:
    stream = io.StringIO()
    reporter = TerminalReporter(stream=stream)
    reporter.emit({"event": "request_started"})
    reporter.emit({"event": "text_delta", "text": "Computing"})
    reporter.emit({"event": "action", "step": 1, "code": "print(42)"})
    reporter.output("stream", {"name": "stdout", "text": "\x1b[31m42\x1b[0m\n"})
    reporter.emit({"event": "observation", "step": 1, "status": "error", "error_name": "E"})
    reporter.output("display_data", FOOTER)
    reporter.emit(FINISHED)
    assert stream.getvalue() == (
        "Computing\n--- step 1 ---\nprint(42)\n--- output ---\n42\n"
        "--- step 1: error (E) ---\nCodeAct · 1 step\n"
    )


def test_a_request_without_the_kernels_footer_gets_one() -> None:
    stream = io.StringIO()
    reporter = TerminalReporter(stream=stream)
    reporter.emit({"event": "request_started"})
    failed = {"event": "failed", "status": "interrupted", "error": None, "steps": 2}
    reporter.emit(failed)
    assert stream.getvalue() == footer(failed) + "\n"
    assert footer(failed).startswith("CodeAct · stopped: interrupted · 2 steps")
    assert footer(FINISHED) == "CodeAct · 1 step · 1,234 tokens · 2.5 s"


def test_json_is_one_event_per_line_and_no_outputs() -> None:
    stream = io.StringIO()
    reporter = JsonReporter(stream)
    reporter.emit({"event": "text_delta", "text": "é\n"})
    reporter.output("stream", {"name": "stdout", "text": "hidden"})
    reporter.emit(FINISHED)
    lines = stream.getvalue().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"event": "text_delta", "text": "é\n"},
        FINISHED,
    ]
