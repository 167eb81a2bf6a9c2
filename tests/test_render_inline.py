"""How much the inline frontend sends while a model streams: bounded by the answer's
length, however slowly it streams, and the whole text at the end."""

from __future__ import annotations

from typing import Any

import pytest

from codeact_kernel import render_inline
from codeact_kernel.events import Finished, ModelText, StepStarted, Usage
from codeact_kernel.render_inline import InlineFrontend


class _Handle:
    def __init__(self, sent: list[dict[str, Any]], bundle: dict[str, Any]) -> None:
        self.sent = sent
        sent.append(bundle)

    def update(self, bundle: dict[str, Any], raw: bool = False) -> None:
        self.sent.append(bundle)


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every display bundle the frontend sends, first display and updates alike."""
    bundles: list[dict[str, Any]] = []
    monkeypatch.setattr(
        render_inline, "_display", lambda bundle, metadata=None: _Handle(bundles, bundle)
    )
    return bundles


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def stream(frontend: InlineFrontend, answer: str, clock: _Clock, chars_per_second: float) -> None:
    frontend.render(StepStarted(1))
    for start in range(0, len(answer), 20):
        clock.now += 20 / chars_per_second
        frontend.render(ModelText(1, answer[start : start + 20]))
    frontend.render(Finished(answer, 1, Usage(1, 1), 1.0))


def size(bundles: list[dict[str, Any]]) -> int:
    return sum(len(b["text/markdown"]) + len(b["text/plain"]) for b in bundles)


@pytest.mark.parametrize("chars_per_second", [40, 200, 5_000, 1_000_000])
def test_updates_add_up_to_a_bound_on_the_length_however_slow_the_model(
    sent: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, chars_per_second: float
) -> None:
    clock = _Clock()
    monkeypatch.setattr(render_inline.time, "monotonic", clock)
    answer = "".join(f"Paragraph {i}: " + "words and more words " * 10 + "\n\n" for i in range(900))
    frontend = InlineFrontend("m")
    stream(frontend, answer, clock, chars_per_second)
    assert sent[-1]["text/markdown"] == answer
    # Re-sending 200 KB ten times a second at 200 characters a second was ~100 MB.
    assert size(sent) <= 2 * (frontend.growth + 1) * len(answer) + 2 * len(answer)


def test_a_slow_models_text_on_screen_lags_by_a_fraction_at_most(
    sent: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = _Clock()
    monkeypatch.setattr(render_inline.time, "monotonic", clock)
    frontend = InlineFrontend("m")
    frontend.render(StepStarted(1))
    answer = ""
    for i in range(2000):
        clock.now += 0.1  # 200 characters a second
        piece = f"word {i:05} "
        answer += piece
        frontend.render(ModelText(1, piece))
        shown = len(sent[-1]["text/markdown"]) if sent else 0
        assert len(answer) - shown <= max(len(answer) / frontend.growth, frontend.small) + 20


def test_a_short_answer_updates_ten_times_a_second(
    sent: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = _Clock()
    monkeypatch.setattr(render_inline.time, "monotonic", clock)
    frontend = InlineFrontend("m")
    frontend.render(StepStarted(1))
    for i in range(50):
        clock.now += 0.1
        frontend.render(ModelText(1, f"word{i} "))
    assert len(sent) == 50


def test_a_nul_in_the_answer_is_shown_visibly(sent: list[dict[str, Any]]) -> None:
    frontend = InlineFrontend("m")
    frontend.render(StepStarted(1))
    frontend.render(ModelText(1, "```python\nx = 1\x00\n```"))
    frontend.render(Finished("", 1, Usage(1, 1), 1.0))
    assert "x = 1\u2400" in sent[-1]["text/markdown"]
