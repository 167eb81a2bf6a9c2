"""The summary of a run, per mode: a table for the terminal, Markdown and CSV.

Success is counted over the episodes the model was judged on: a provider error (the
endpoint failed after its retries) is not the model's failure, so it is left out of
the denominator and shown in its own column. Mean turns and tokens are over every
judged episode, successful or not, as in the paper's table.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import fmean

from .episode import Episode

CAUSES = ("wrong_answer", "turn_limit", "invalid_action", "provider_error")


@dataclass(frozen=True)
class ModeSummary:
    mode: str
    episodes: int
    judged: int
    successes: int
    mean_turns: float
    mean_tokens: float
    failures: dict[str, int]

    @property
    def success_rate(self) -> float:
        """Percent of judged episodes that succeeded (0 when none was judged)."""
        return 100.0 * self.successes / self.judged if self.judged else 0.0


def summarize(episodes: Sequence[Episode], modes: Sequence[str]) -> list[ModeSummary]:
    """One summary per mode that has episodes, in the order of `modes`."""
    summaries = []
    for mode in modes:
        ran = [e for e in episodes if e.mode == mode]
        if not ran:
            continue
        judged = [e for e in ran if e.error != "provider_error"]
        summaries.append(
            ModeSummary(
                mode=mode,
                episodes=len(ran),
                judged=len(judged),
                successes=sum(1 for e in judged if e.success),
                mean_turns=fmean(e.turns for e in judged) if judged else 0.0,
                mean_tokens=fmean(e.input_tokens + e.output_tokens for e in judged)
                if judged
                else 0.0,
                failures={cause: sum(1 for e in ran if e.error == cause) for cause in CAUSES},
            )
        )
    return summaries


HEADER = (
    "mode",
    "episodes",
    "success %",
    "mean turns",
    "mean tokens",
    "wrong answer",
    "turn limit",
    "invalid action",
    "provider error",
)


def _rows(summaries: Sequence[ModeSummary]) -> list[tuple[str, ...]]:
    return [
        (
            s.mode,
            str(s.episodes),
            f"{s.success_rate:.1f}",
            f"{s.mean_turns:.2f}",
            f"{s.mean_tokens:.0f}",
            *(str(s.failures[cause]) for cause in CAUSES),
        )
        for s in summaries
    ]


def table(summaries: Sequence[ModeSummary]) -> str:
    """A plain-text table, columns aligned, for the terminal."""
    rows = [HEADER, *_rows(summaries)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(summaries: Sequence[ModeSummary], *, model: str) -> str:
    """The table as Markdown, under a heading naming the model."""
    lines = [
        f"# codeact bench: {model}",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join([":---", *(["---:"] * (len(HEADER) - 1))]) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in _rows(summaries)]
    lines += [
        "",
        "Success % is over the episodes the model was judged on (provider errors excluded); "
        "mean turns and tokens likewise.",
    ]
    return "\n".join(lines) + "\n"


def csv_text(summaries: Sequence[ModeSummary]) -> str:
    """The summary as CSV, with machine-friendly column names."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            "mode",
            "episodes",
            "judged",
            "successes",
            "success_pct",
            "mean_turns",
            "mean_tokens",
            *CAUSES,
        ]
    )
    for s in summaries:
        writer.writerow(
            [
                s.mode,
                s.episodes,
                s.judged,
                s.successes,
                f"{s.success_rate:.1f}",
                f"{s.mean_turns:.2f}",
                f"{s.mean_tokens:.0f}",
                *(s.failures[cause] for cause in CAUSES),
            ]
        )
    return out.getvalue()
