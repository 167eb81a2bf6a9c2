"""The CodeAct loop: generate → parse → execute, until the model answers without code.

Frontend-free: it takes a request, a model, an executor and settings, and yields typed
events (events.py). A failure in any phase becomes the next observation where the
model can act on it (a traceback, a timeout, a declined action); failures it cannot
act on (the endpoint, the budgets) end the request with a `Failed` event.
Cancellation (an interrupt) propagates as `asyncio.CancelledError`, after one
`Interrupted` event; the turn record keeps everything that happened up to then,
including the text of an answer the user saw stream before they stopped it.

Misbehaving models (see actions.py for where an answer ends):
- an answer cut at the output limit (`Truncated`) before it ended for us never runs,
  whether its code looks complete or not: the model is told and answers again, and the
  step counts as a failed one for `max_retries`, so a model that always overruns cannot
  loop (a limit hit after the answer's first action closed cuts only text that is not
  ours anyway);
- an answer the server stopped for another reason (a content filter, a refusal, a
  reason we do not know) never runs either, even past its first action, since the
  verdict may be on what came before: with code, the model is told and answers again
  as above; prose is the answer, with a note that it may be incomplete (asking again
  would be stopped again); a paused answer goes on as a cut one does;
- the secrets the session knows (the key first) are masked in the answer as it
  streams, so that a model that writes one shows and leaves it nowhere;
- an answer ends on our side where it ends for us, whatever the server does with the
  stop sequences: after its first action, or where it starts writing its own
  "Observation:". The user sees nothing past that point; the stream is read a moment
  longer for its usage report, then closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field, replace

from .actions import AnswerStream, extract_code, first_action_end
from .capture import Masker
from .context import build_messages, step_exchange
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
    ActionsDropped,
    ActionSkipped,
    AnswerTruncated,
    CodeAction,
    Event,
    Failed,
    Finished,
    Interrupted,
    ModelText,
    Observation,
    Progress,
    RequestStarted,
    Step,
    StepStarted,
    Turn,
    UsageReport,
    goes_on,
    stop_cause,
)
from .executor import Executor
from .frontend import Approval, Approved, Decision
from .providers.base import LENGTH, Message, Model, Notice, TextDelta, Truncated, Usage
from .providers.usage import estimated_usage
from .settings import Settings

Approver = Callable[[int, str], Awaitable[Decision]]

DECLINED = "[The user declined to run this action. Ask what they want or take another approach.]"

# After the answer ended on our side, the stream is read this much longer for the
# usage report that ends it; a model that goes on writing is cut off.
_DRAIN_SECONDS = 0.5
_DRAIN_CHARACTERS = 2000


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
    system: str = field(init=False, default="")
    """The system prompt of the request's first model call, as sent (redacted)."""
    _budget: int = field(init=False, default=0)

    async def run(self, turn: Turn, history: Sequence[Turn] = ()) -> AsyncGenerator[Event, None]:
        """Answer `turn.request`, recording every step in `turn` as it happens."""
        yield RequestStarted(turn.request, self.model.name)
        try:
            async with contextlib.aclosing(self._steps(turn, history)) as events:
                async for event in events:
                    yield event
        except asyncio.CancelledError:
            step = turn.steps[-1] if turn.steps else None
            if step is not None:
                step.interrupted = True
            # Frontends that throttle their updates show everything the user was sent.
            yield Interrupted(step.number if step is not None else 0)
            raise

    async def _steps(self, turn: Turn, history: Sequence[Turn]) -> AsyncGenerator[Event, None]:
        started = time.monotonic()
        usage = Usage()
        self._budget = self.settings.context_tokens
        failures = 0
        for number in range(1, self.settings.max_steps + 1):
            step = Step(number)
            turn.steps.append(step)
            yield StepStarted(number)
            try:
                async with contextlib.aclosing(self._generate(turn, history, step)) as events:
                    async for event in events:
                        yield event
            except CodeActError as error:
                step.error = str(error)
                turn.fail(error)
                usage += step.usage
                yield Failed(error, turn.actions, usage, time.monotonic() - started)
                return
            usage += step.usage
            yield UsageReport(number, step.usage, usage)

            if step.truncated and not self._goes_on(step):
                # Prose that a filter or a refusal stopped is the answer: asking again
                # would be stopped again. The user was told it may be incomplete; the
                # conversation keeps it as the answer it is.
                step.truncated = False
                turn.final = step.model_text
                yield Finished(step.model_text, turn.actions, usage, time.monotonic() - started)
                return
            if step.truncated:
                # Complete-looking code from a cut answer may still be the wrong code
                # (a loop without its last lines): it never runs, and a model that always
                # overruns must not loop until max_steps.
                failures += 1
                if failures > self.settings.max_retries:
                    advice = (
                        "Ask for less at a time, raise the output limit (max_tokens), or "
                        "raise max_retries."
                        if step.stop_reason == LENGTH
                        else "Rephrase the request, or try another model."
                    )
                    exhausted = RetryBudgetExhausted(
                        f"{failures} answers in a row failed (max_retries = "
                        f"{self.settings.max_retries}); the last one stopped before it ended "
                        f"({stop_cause(step.stop_reason)}). {advice}"
                    )
                    turn.fail(exhausted)
                    yield Failed(exhausted, turn.actions, usage, time.monotonic() - started)
                    return
                continue

            code = extract_code(step.model_text)
            if code is None:
                turn.final = step.model_text
                yield Finished(step.model_text, turn.actions, usage, time.monotonic() - started)
                return
            step.code = code
            yield CodeAction(number, code)

            try:
                approval = await self._approval(number, code)
            except CodeActError as error:
                step.error = str(error)
                turn.fail(error)
                yield Failed(error, turn.actions, usage, time.monotonic() - started)
                return
            if approval is Approval.STOP:
                # Stopping at the prompt is an interrupt of the whole request.
                raise asyncio.CancelledError
            if approval is Approval.SKIP:
                step.skipped = True
                step.observation = Observation(text=DECLINED, ok=True)
                yield ActionSkipped(number, code, *step_exchange(step, self.secrets()))
                continue

            if isinstance(approval, Approved):
                # The user edited the action before approving it: what they approved runs.
                code = step.code = approval.code
            observation = await self.executor.run(code)
            if isinstance(approval, Approved):
                observation = replace(observation, text=approval.note + observation.text)
            step.observation = observation
            yield ActionObserved(number, code, observation, *step_exchange(step, self.secrets()))
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
                yield Failed(exhausted, turn.actions, usage, time.monotonic() - started)
                return
        out_of_steps = StepBudgetExhausted(
            f"The model used all {self.settings.max_steps} steps (max_steps) without a final "
            "answer. The work so far is in your namespace; ask a follow-up to continue, or "
            "raise max_steps."
        )
        turn.fail(out_of_steps)
        yield Failed(out_of_steps, turn.actions, usage, time.monotonic() - started)

    async def _generate(
        self, turn: Turn, history: Sequence[Turn], step: Step
    ) -> AsyncGenerator[Event, None]:
        """Stream one model answer into `step`; shrink the context once if it is too long."""
        shrunk = False
        while True:
            secrets = self.secrets()
            messages = build_messages(
                request=turn.request,
                history=history,
                current=turn.steps[:-1],
                user_cells=turn.user_cells,
                namespace=self.namespace(),
                action_format=self.settings.action_format,
                budget_tokens=self._budget,
                tools=self.tools,
                secrets=secrets,
                vision=self.vision,
            )
            if not self.system:
                self.system = messages[0].content
            answer = AnswerStream(self.settings.action_format)
            try:
                streamed = self._stream(messages, answer, step, secrets)
                async with contextlib.aclosing(streamed) as events:
                    async for event in events:
                        yield event
            except ContextTooLong:
                if shrunk or answer.text:
                    raise
                shrunk = True
                self._budget = max(self._budget // 2, 1)
                yield Progress(step.number, "context too long for the model, retrying shorter")
                continue
            finally:
                # Whatever ends the stream, the step holds what the user was shown.
                step.model_text = answer.shown
            if not step.model_text.strip():
                if step.truncated and step.stop_reason != LENGTH:
                    raise StreamError(
                        f"The answer stopped before the model wrote any of it "
                        f"({stop_cause(step.stop_reason)}). Rephrase the request, or try "
                        "another model."
                    )
                if step.truncated:
                    # Reasoning models can spend the whole limit before they write a word.
                    raise StreamError(
                        "The model reached the output limit before it wrote any answer. "
                        "Raise the limit (max_tokens) or ask for less at a time."
                    )
                raise StreamError(
                    "The model returned an empty answer. Try again, or check that the model "
                    "name is right and the server is healthy."
                )
            end = first_action_end(step.model_text)
            if end is not None and not step.truncated:
                kept, dropped = step.model_text[:end], step.model_text[end:]
                step.model_text = kept
                yield ActionsDropped(step.number, kept, dropped)
            return

    async def _stream(
        self,
        messages: Sequence[Message],
        answer: AnswerStream,
        step: Step,
        secrets: Collection[str],
    ) -> AsyncGenerator[Event, None]:
        """The model's answer to `messages`, into `answer`, as events; `secrets` masked."""
        stream = self.model.stream(messages, stop=answer.stops)
        # A model may write a secret it should not know (the key, a token it guessed):
        # masked before anything shows or keeps the answer.
        masker = Masker(secrets)
        ended_at: float | None = None
        drained = 0
        usage: Usage | None = None
        truncated: Truncated | None = None
        try:
            async for item in stream:
                if isinstance(item, TextDelta):
                    if ended_at is None:
                        shown = answer.add(masker.feed(item.text))
                        if shown:
                            yield ModelText(step.number, shown)
                        if answer.ended:
                            ended_at = time.monotonic()
                        continue
                    drained += len(item.text)
                    if drained > _DRAIN_CHARACTERS or time.monotonic() - ended_at > _DRAIN_SECONDS:
                        break
                elif isinstance(item, Notice):
                    yield Progress(step.number, item.message)
                elif isinstance(item, Truncated):
                    # A limit hit (or a pause) past the end of the answer is no matter;
                    # a filter or a refusal may judge what came before: nothing runs.
                    if not answer.ended or not goes_on(item.reason):
                        truncated = item
                elif isinstance(item, Usage):
                    usage = item
        except Exception:
            # The stream broke (a cut connection): the end held back as a possible start
            # of a secret is shown too, so the partial answer stays whole on screen.
            held = answer.add(masker.flush()) if ended_at is None else ""
            if held:
                yield ModelText(step.number, held)
            raise
        finally:
            close = getattr(stream, "aclose", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()
        held = answer.add(masker.flush()) if ended_at is None else ""
        if held:
            yield ModelText(step.number, held)
        rest = answer.finish()
        if rest:
            yield ModelText(step.number, rest)
        if truncated is not None:
            step.truncated = True
            step.stop_reason = truncated.reason
            had_code = extract_code(answer.text) is not None
            yield AnswerTruncated(step.number, truncated.limit, had_code, truncated.reason)
        step.usage = usage if usage is not None else estimated_usage(messages, answer.text)

    @staticmethod
    def _goes_on(step: Step) -> bool:
        """Whether the model answers again after `step`, an answer that stopped early."""
        return goes_on(step.stop_reason) or extract_code(step.model_text) is not None

    async def _approval(self, number: int, code: str) -> Decision:
        if self.settings.approval != "ask":
            return Approval.RUN
        if self.approve is None:
            raise ApprovalUnavailable(
                "approval is 'ask' but nothing can ask the user; set approval to auto."
            )
        return await self.approve(number, code)
