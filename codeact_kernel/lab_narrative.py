"""The prompt cell's narrative when the JupyterLab extension builds the step cells.

It is the inline rendering without code blocks, with one difference that keeps the
notebook in reading order: once a step's action starts, that step's streamed prose
leaves the prompt cell (the extension shows it with the step's cell, from
`action_start.explanation`), and a final answer that follows actions leaves it too
(the extension puts it in a Markdown cell after the steps, `request_end.answer_cell`).
"""

from __future__ import annotations

from .render_inline import InlineFrontend


class LabNarrative(InlineFrontend):
    """`InlineFrontend(show_code=False)` whose step displays can be emptied."""

    def __init__(self, model: str) -> None:
        # Approval is asked by the lab frontend itself, never by the narrative.
        super().__init__(model, ask=None, show_code=False)

    def clear_step(self) -> None:
        """Empty the current step's display, keeping its notes (a dropped action…)."""
        self._flush()
        handle = self._handle
        self._pieces, self._length = [], 0
        if handle is None:
            return
        markdown = self._markdown()
        # An empty bundle renders as nothing in JupyterLab; the display stays in place
        # so a later update for it (there is none by design) could not go astray.
        bundle = {"text/markdown": markdown, "text/plain": markdown} if markdown.strip() else {}
        handle.update(bundle, raw=True)
        self._sent = markdown
