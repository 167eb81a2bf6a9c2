"""The paper's figure for one run: success rate and mean turns per action mode.

Matplotlib is an optional extra (`pip install 'codeact-kernel[bench]'`): without it
`plot` raises `PlotUnavailable`, which says what to install, and the table is printed
all the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .report import ModeSummary

INSTALL_HINT = "the plot needs matplotlib: pip install 'codeact-kernel[bench]'"
# One colour per mode, the same in every plot.
COLOURS = {"code": "#2a7ab9", "json": "#e08a2c", "text": "#7a9a3a"}


class PlotUnavailable(RuntimeError):
    """Matplotlib is not installed."""


def plot(summaries: Sequence[ModeSummary], out: Path, *, title: str, note: str = "") -> list[Path]:
    """Write `out/plot.png` and `out/plot.svg`; return their paths."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display, whatever the environment says
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise PlotUnavailable(INSTALL_HINT) from error

    modes = [s.mode for s in summaries]
    colours = [COLOURS.get(mode, "#888888") for mode in modes]
    figure, (success, turns) = plt.subplots(1, 2, figsize=(8, 3.6), layout="constrained")
    bars = success.bar(modes, [s.success_rate for s in summaries], color=colours)
    success.bar_label(bars, fmt="%.1f%%", padding=2)
    success.set_ylim(0, 110)
    success.set_ylabel("success rate (%)")
    success.set_title("Success (higher is better)")
    bars = turns.bar(modes, [s.mean_turns for s in summaries], color=colours)
    turns.bar_label(bars, fmt="%.2f", padding=2)
    turns.set_ylim(0, max([s.mean_turns for s in summaries] + [1.0]) * 1.25)
    turns.set_ylabel("mean turns per episode")
    turns.set_title("Turns (lower is better)")
    for axes in (success, turns):
        axes.spines[["top", "right"]].set_visible(False)
    figure.suptitle(title)
    if note:
        figure.text(0.5, -0.02, note, ha="center", va="top", fontsize=8, style="italic")
    paths = [out / "plot.png", out / "plot.svg"]
    for path in paths:
        figure.savefig(path, dpi=150, bbox_inches="tight", metadata=_metadata(path))
    plt.close(figure)
    return paths


def _metadata(path: Path) -> dict[str, str | None]:
    # SVGs otherwise carry the date they were made: the same run would differ each time.
    return {"Date": None} if path.suffix == ".svg" else {}
