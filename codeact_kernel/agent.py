"""The CodeAct loop: generate → parse → execute, until the model answers without code.

Frontend-free: it takes a request, a model, an executor and settings, and yields typed
events (events.py). A failure in any phase becomes the next observation where the
model can act on it (a traceback, a timeout, a declined action); failures it cannot
act on (the endpoint, the budgets) end the request with a `Failed` event.
Cancellation (an interrupt) propagates as `asyncio.CancelledError`; the turn record
keeps everything that happened up to then.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field

from .actions import extract_code, stop_sequences
from .context import build_messages
from .errors import (
    ApprovalUnavailable,
    CodeActError,
    ContextTooLong,
    RetryBudgetExhausted,
    StepBudgetExhausted,
    StreamError,
)
from .events import (
    ActionObserved,
    ActionSkipped,
    CodeAction,
    Event,
    Failed,
    Finished,
    ModelText,
    Observation,
    Progress,
    RequestStarted,
    Step,
    StepStarted,
    Turn,
    UsageReport,
)
from .executor import Executor
from .frontend import Approval
from .providers.base import Model, Notice, TextDelta, Usage
from .settings import Settings

Approver = Callable[[int, str], Awaitable[Approval]]

DECLINED = "[The user declined to run this action. Ask what they want or take another approach.]"


@dataclass
class Agent:
    """One request's worth of CodeAct, run by `run()`.

    `namespace` returns the current summary of the user's variables and `secrets` the
    values never to send; both are called before every model call, since actions
    change the namespace.
    """

    model: Model
    executor: Executor
    settings: Settings
    approve: Approver | None = None
    namespace: Callable[[], str] = lambda: ""
    secrets: Callable[[], Collection[str]] = tuple
    tools: str = ""
    vision: bool = False
    _budget: int = field(init=False, default=0)

    async def run(self, turn: Turn, history: Sequence[Turn] = ()) -> AsyncGenerator[Event, None]:
        """Answer `turn.request`, recording every step in `turn` as it happens."""
        started = time.monotonic()
        usage = Usage()
        self._budget = self.settings.context_tokens
        failures = 0
        yield RequestStarted(turn.request, self.model.name)
        for number in range(1, self.settings.max_steps + 1):
            step = Step(number)
            turn.steps.append(step)
            yield StepStarted(number)
            try:
                async for event in self._generate(turn, history, step):
                    yield event
            except CodeActError as error:
                step.error = str(error)
                turn.fail(error)
                usage += step.usage
                yield Failed(error, number, usage, time.monotonic() - started)
                return
            usage += step.usage
            yield UsageReport(number, step.usage, usage)

            code = extract_code(step.model_text)
            if code is None:
                turn.final = step.model_text
                yield Finished(step.model_text, number, usage, time.monotonic() - started)
                return
            step.code = code
            yield CodeAction(number, code)

            try:
                approval = await self._approval(number, code)
            except CodeActError as error:
                step.error = str(error)
                turn.fail(error)
                yield Failed(error, number, usage, time.monotonic() - started)
                return
            if approval is Approval.STOP:
                # Stopping at the prompt is an interrupt of the whole request.
                raise asyncio.CancelledError
            if approval is Approval.SKIP:
                step.skipped = True
                step.observation = Observation(text=DECLINED, ok=True)
                yield ActionSkipped(number, code)
                continue

            observation = await self.executor.run(code)
            step.observation = observation
            yield ActionObserved(number, code, observation)
            if observation.interrupted:
                raise asyncio.CancelledError
            failures = 0 if observation.ok else failures + 1
            if failures > self.settings.max_retries:
                exhausted = RetryBudgetExhausted(
                    f"{failures} actions in a row failed (max_retries = "
                    f"{self.settings.max_retries}); the last one raised "
                    f"{observation.error_name}. Read the traceback above, fix the cause or "
                    "rephrase the request, or raise max_retries."
                )
                turn.fail(exhausted)
                yield Failed(exhausted, number, usage, time.monotonic() - started)
                return
        out_of_steps = StepBudgetExhausted(
            f"The model used all {self.settings.max_steps} steps (max_steps) without a final "
            "answer. The work so far is in your namespace; ask a follow-up to continue, or "
            "raise max_steps."
        )
        turn.fail(out_of_steps)
        yield Failed(out_of_steps, self.settings.max_steps, usage, time.monotonic() - started)

    async def _generate(
        self, turn: Turn, history: Sequence[Turn], step: Step
    ) -> AsyncIterator[Event]:
        """Stream one model answer into `step`; shrink the context once if it is too long."""
        shrunk = False
        while True:
            messages = build_messages(
                request=turn.request,
                history=history,
                current=turn.steps[:-1],
                user_cells=turn.user_cells,
                namespace=self.namespace(),
                action_format=self.settings.action_format,
                budget_tokens=self._budget,
                tools=self.tools,
                secrets=self.secrets(),
                vision=self.vision,
            )
            stop = stop_sequences(self.settings.action_format)
            try:
                async for item in self.model.stream(messages, stop=stop):
                    if isinstance(item, TextDelta):
                        step.model_text += item.text
                        yield ModelText(step.number, item.text)
                    elif isinstance(item, Notice):
                        yield Progress(step.number, item.message)
                    elif isinstance(item, Usage):
                        step.usage = item
            except ContextTooLong:
                if shrunk or step.model_text:
                    raise
                shrunk = True
                self._budget = max(self._budget // 2, 1)
                yield Progress(step.number, "context too long for the model, retrying shorter")
                continue
            if not step.model_text.strip():
                raise StreamError(
                    "The model returned an empty answer. Try again, or check that the model "
                    "name is right and the server is healthy."
                )
            return

    async def _approval(self, number: int, code: str) -> Approval:
        if self.settings.approval != "ask":
            return Approval.RUN
        if self.approve is None:
            raise ApprovalUnavailable(
                "approval is 'ask' but nothing can ask the user; set approval to auto."
            )
        return await self.approve(number, code)
