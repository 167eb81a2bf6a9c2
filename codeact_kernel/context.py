"""What the model sees: the system prompt, the conversation so far, within a token budget.

The messages follow the CodeAct convention (CodeActInstruct): the system prompt, then per
request a user message with the request, per step an assistant message with the model's
answer and a user message "Observation:\\n…", and the final answer as an assistant
message. The cells the user ran before a request open its user message, so the model
knows what changed in between. Consecutive messages of one role are merged, so roles
alternate strictly after the system message (some APIs require it).

Every request ends on the assistant's side: with its final answer, or with a bracketed
note of why it has none (failed, interrupted). So the next request always opens a user
message of its own, and an interrupted request's note and the next request never merge
into one message. What the user saw of an answer they interrupted is kept, marked so by
that note; an answer whose code never ran says so in the observation that follows it,
as does an answer cut off at the output limit.

Images: for a vision model, the images the current request's actions displayed ride
along with their observation; images of earlier requests are never sent again.

Budget (`estimate_tokens`, and a flat cost per image). A model answer longer than
`ANSWER_CHARS` (a runaway model's, current or earlier) is always cut to its head and
tail around its action, as the executor cuts observations; the action itself is cut
only when it alone is longer. Then, in this order until the messages fit:

1. whole earlier requests, oldest first (a note says they were left out);
2. the current request's images, oldest first (the latest step's go last);
3. the prose of the current request's answers, around their actions, oldest first,
   down to 1,000 characters each;
4. the observations of the current request's earlier steps, head and tail kept;
5. the user's cells shown with the current request, head and tail kept;
6. the current request's latest observation, head and tail kept;
7. the current request's answers further, their actions too, oldest first;
8. the oldest of the user's cells (many, after Run All), the newest kept (a note says
   how many are left out).

The system prompt (with the namespace summary, itself capped by its own limits) and the
latest request are never cut. When they alone exceed the budget they are sent anyway: a
model that reads half a request does the wrong thing silently, while a server that
rejects a too-long prompt gives the user an error they can act on (shorten the request or
raise `context_tokens`).

Cost: a call costs what fits the budget, however long the session. Earlier requests are
taken newest first and the walk stops at the first that does not fit, so those left out
are never looked at. The redacted parts of a finished request, its messages and their
token count are kept (`_IdentityCache`) while the request, its steps (a step does not
change once done) and the secrets stay the same, and so are those of the current
request's finished steps: the next call redacts only what is new.

Secrets: every message goes through a `secrets.Redactor` before it is counted, so no
value of a secret ever reaches the model, whatever printed it: values passed in `secrets`
(`namespace.secret_values`), secret-looking environment variables (the kernel's own key
lives there), and whatever `secrets.py` recognises on sight.

Text: every text is made valid UTF-8 first (a lone surrogate, as a file name printed
from `os.listdir` carries, becomes U+FFFD), so nothing a turn holds can make the request
unsendable, now or in any later request.
"""

from __future__ import annotations

import functools
import itertools
import re
import weakref
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from typing import Generic, TypeVar

from .actions import close_open_block, extract_code, parse_answer, valid_text
from .events import Step, Turn
from .executor import cut_middle
from .providers.base import Message, Role, estimate_tokens
from .secrets import Redactor, find_secrets

__all__ = [
    "ANSWER_CHARS",
    "IMAGE_TOKENS",
    "OBSERVATION",
    "build_messages",
    "convert_system_prompt",
    "step_exchange",
    "system_prompt",
    "turn_messages",
]

OBSERVATION = "Observation:\n"

_EMPTY_NAMESPACE = "# (nothing defined yet)"
_OMITTED = "[{count} earlier request(s) of this session are left out to fit the context budget.]"
_CELLS_OMITTED = "[{count} earlier cell(s) are left out to fit the context budget.]"
_STOPPED = "[This request ended without a final answer: {reason}.]"
_INTERRUPTED = "it was interrupted"
_NOT_RUN = "[This action did not run.]"
_CUT_ACTION = (
    "[Your answer was cut off at the output limit before it ended, so its code was not "
    "run. Write a complete action that is shorter: do the work in smaller steps.]"
)
_CUT_PROSE = (
    "[Your answer was cut off at the output limit before it ended. Nothing was run. "
    "Go on from where it stopped, more briefly.]"
)
_INTERRUPTED_ACTION = (
    "[The user interrupted the request while this answer was being written: its code did not run.]"
)
_BROKEN_ACTION = "[This answer broke off before it ended: its code did not run.]"

# Per-message overhead of chat formats (role markers, separators), and a flat cost per
# image: providers charge images by size, which the estimate cannot know.
_MESSAGE_TOKENS = 4
IMAGE_TOKENS = 800
# What the note about left-out requests costs, whatever the count in it.
_NOTE_TOKENS = _MESSAGE_TOKENS + estimate_tokens(_OMITTED)
# Successive head+tail sizes tried when shortening, in characters.
_OBSERVATION_LIMITS = (2000, 1000, 500, 200)
_CELL_LIMITS = (2000, 500, 100)
_PROSE_LIMITS = (2000, 1000)
_ANSWER_LIMITS = (2000, 500, 200)
# Longest model answer kept as it is (about 4,000 tokens).
ANSWER_CHARS = 16_000

_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


# --- prompts ---------------------------------------------------------------------


@functools.cache
def _prompt(name: str) -> str:
    return (resources.files("codeact_kernel") / "prompts" / name).read_text(encoding="utf-8")


def _fill(template: str, **values: str) -> str:
    # One pass, so text substituted for one placeholder (a variable holding "{{tools}}")
    # is never substituted again.
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def system_prompt(action_format: str, namespace: str, tools: str = "") -> str:
    """The system prompt for `action_format`, with the namespace summary and tools."""
    if action_format not in ("markdown", "execute"):
        raise ValueError(f"Unknown action format {action_format!r}: use 'markdown' or 'execute'.")
    tools_section = _fill(_prompt("tools.md"), tools=tools.strip()) if tools.strip() else ""
    text = _fill(
        _prompt(f"system_{action_format}.md"),
        namespace=namespace.strip("\n") or _EMPTY_NAMESPACE,
        tools=tools_section.strip(),
    )
    # An empty tools section leaves a gap of blank lines.
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def convert_system_prompt(text: str, source_format: str, target_format: str) -> str:
    """`text`, a system prompt made for `source_format`, as `target_format` makes it: the
    same namespace and tools, the other action instructions. `text` unchanged when it
    is not one this version makes (a newer prompt, one changed by hand)."""
    if source_format == target_format:
        return text
    for tools in (_TOOLS_MARK, ""):
        template = system_prompt(source_format, _NAMESPACE_MARK, tools)
        pattern = re.escape(template)
        for mark, group in ((_NAMESPACE_MARK, "namespace"), (_TOOLS_MARK, "tools")):
            pattern = pattern.replace(re.escape(mark), f"(?P<{group}>.*)", 1)
        match = re.fullmatch(pattern, text, re.DOTALL)
        if match is not None:
            found = match.groupdict()
            return system_prompt(target_format, found["namespace"], found.get("tools") or "")
    return text


# Stand-ins that no prompt contains, to find where the namespace and tools went.
_NAMESPACE_MARK = "\x00namespace\x00"
_TOOLS_MARK = "\x00tools\x00"


# --- parts -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Part:
    """A piece of one message; consecutive parts of one role become one message.

    Parts are never changed, so that those of finished requests can be cached;
    shortening makes a new part from the `original` text.
    """

    role: Role
    text: str
    images: tuple[str, ...] = ()
    header: str = ""
    original: str | None = None

    @property
    def content(self) -> str:
        return self.header + self.text

    @functools.cached_property
    def tokens(self) -> int:
        return estimate_tokens(self.content) + _MESSAGE_TOKENS + len(self.images) * IMAGE_TOKENS

    def cut(self, limit: int) -> _Part:
        """Head and tail of the original text within `limit` characters."""
        original = self.text if self.original is None else self.original
        return replace(self, text=cut_middle(original, limit), original=original)


@dataclass(frozen=True)
class _CellsPart(_Part):
    """The user's cells, shortened cell by cell so that each keeps its fence."""

    blocks: tuple[str, ...] = ()

    def cut(self, limit: int) -> _Part:
        return replace(self, text=_cells_text([cut_middle(block, limit) for block in self.blocks]))

    def newest(self, room: int) -> _Part:
        """The newest cells, cut to the smallest size, that fit in `room` tokens with a
        note of how many are left out: those are never looked at."""
        smallest = _CELL_LIMITS[-1]
        used = _MESSAGE_TOKENS + estimate_tokens(_cells_text([], len(self.blocks)))
        kept: list[str] = []
        for block in reversed(self.blocks):
            cut = cut_middle(block, smallest)
            used += estimate_tokens(f"{_fence(cut)}\n\n")
            if used > room:
                break
            kept.append(cut)
        return replace(self, text=_cells_text(kept[::-1], len(self.blocks) - len(kept)))


@dataclass(frozen=True)
class _AnswerPart(_Part):
    """A model answer: its prose is cut around its action, the action itself last."""

    def cut(self, limit: int) -> _Part:
        original = self.text if self.original is None else self.original
        return replace(self, text=_cut_answer(original, limit), original=original)

    def cut_all(self, limit: int) -> _Part:
        original = self.text if self.original is None else self.original
        return replace(self, text=_cut_answer(original, limit, limit), original=original)


def _cut_answer(text: str, prose: int, action: int | None = None) -> str:
    """`text` with each stretch of prose cut to `prose` characters (head and tail), and
    each action to `action` (None: whole)."""
    parsed = parse_answer(text)
    text = parsed.text
    pieces: list[str] = []
    position = 0
    for block in parsed.actions:
        pieces.append(cut_middle(text[position : block.start], prose))
        whole = text[block.start : block.end]
        pieces.append(whole if action is None else cut_middle(whole, action))
        position = block.end
    pieces.append(cut_middle(text[position:], prose))
    return "".join(pieces)


def _capped(text: str) -> str:
    """An answer within `ANSWER_CHARS`, its action cut only when it alone is longer."""
    if len(text) <= ANSWER_CHARS:
        return text
    return _cut_answer(text, ANSWER_CHARS // 4, ANSWER_CHARS)


@dataclass(frozen=True)
class _Clean:
    """Makes a text safe to send: valid UTF-8, then redacted. Equal for equal secrets,
    so caches may key on it."""

    redact: Redactor

    def __call__(self, text: str) -> str:
        return self.redact(valid_text(text))


@dataclass(frozen=True)
class _Block:
    """The parts of a finished request (or of one step) and what they cost together."""

    parts: tuple[_Part, ...]
    tokens: int

    @classmethod
    def of(cls, parts: Sequence[_Part]) -> _Block:
        return cls(tuple(parts), sum(part.tokens for part in parts))

    @functools.cached_property
    def messages(self) -> tuple[Message, ...]:
        # Kept with the block, so that the many small requests that may fit the budget
        # cost a list extension each, not a message each.
        return tuple(_merge(self.parts))


# --- messages --------------------------------------------------------------------


def build_messages(
    *,
    request: str,
    history: Sequence[Turn],
    current: Sequence[Step],
    user_cells: Sequence[str],
    namespace: str,
    action_format: str,
    budget_tokens: int,
    tools: str = "",
    secrets: Collection[str] = (),
    vision: bool = False,
) -> list[Message]:
    """The messages for the next model call (see the module docstring for the rules).

    `history` are the earlier turns of this session, oldest first; `current` the steps
    of this request so far; `user_cells` the cells the user ran since the last request.
    `secrets` are values to redact (`namespace.secret_values(user_ns)`); with `vision`,
    images from the current request's observations are attached.
    """
    clean = _cleaner(secrets)
    system = _Part("system", clean(system_prompt(action_format, namespace, tools)))
    cells = _cells_parts(user_cells, clean)
    latest = _Part("user", clean(request))
    steps = [part for step in current for part in _current_step(step, clean, vision).parts]
    fixed = system.tokens + latest.tokens + sum(part.tokens for part in [*cells, *steps])
    earlier, dropped = _fit_history(history, clean, budget_tokens - fixed)

    budget = _Budget(budget_tokens, fixed + sum(block.tokens for block in earlier))
    if dropped:
        budget.used += _NOTE_TOKENS
    observations = [i for i, part in enumerate(steps) if part.header == OBSERVATION]
    answers = [i for i, part in enumerate(steps) if isinstance(part, _AnswerPart)]
    _drop_images(steps, observations, budget)
    _shrink(steps, answers, _PROSE_LIMITS, budget)
    _shrink(steps, observations[:-1], _OBSERVATION_LIMITS, budget)
    _shrink(cells, range(len(cells)), _CELL_LIMITS, budget)
    _shrink(steps, observations[-1:], _OBSERVATION_LIMITS, budget)
    _shrink(steps, answers, _ANSWER_LIMITS, budget, whole=True)
    _leave_out_cells(cells, budget)

    messages = [Message("system", system.content)]
    if dropped:
        messages.append(Message("user", _OMITTED.format(count=dropped)))
    for block in earlier:
        _extend(messages, block.messages)
    _extend(messages, _merge([*cells, latest, *steps]))
    return messages


def turn_messages(turn: Turn, secrets: Collection[str] = ()) -> list[Message]:
    """`turn` as the conversation holds it after the system prompt: what every later
    request sends of it (whole, before any cut for the budget), and what its own calls
    sent step by step. What a trajectory record keeps (trajectory.py)."""
    return _merge(_turn_parts(turn, _cleaner(secrets)))


def step_exchange(
    step: Step, secrets: Collection[str] = (), *, final: bool = False
) -> tuple[str, str]:
    """The step as the model sees it: (its answer, what it was told after "Observation:").

    Either is empty when the step has none (a final answer, `final`, has no
    observation; a step that never produced text has neither).
    """
    parts = _step_parts(step, _cleaner(secrets), vision=False, answer=final)
    answer = next((part.content for part in parts if part.role == "assistant"), "")
    observed = next((part.text for part in parts if part.role == "user"), "")
    return answer, observed


def _cleaner(secrets: Collection[str]) -> _Clean:
    # The secret-looking environment variables (the kernel's own key lives there) always.
    return _Clean(Redactor.of([*secrets, *find_secrets(())]))


def _fit_history(history: Sequence[Turn], clean: _Clean, room: int) -> tuple[list[_Block], int]:
    """The latest turns that fit in `room` tokens, oldest first, and how many are left out.

    Newest first, stopping at the first turn that does not fit (with the note that says
    turns were left out): the turns before it are never looked at. The one exception
    is when the rest might fit without the note; that check stops as soon as they
    exceed the room, which takes no more than a few turns.
    """
    kept: list[_Block] = []
    used = 0
    for turn in _newest_first(history, len(history)):
        block = _finished_turn(turn, clean)
        if used + block.tokens + _NOTE_TOKENS > room:
            break
        kept.append(block)
        used += block.tokens
    else:
        return kept[::-1], 0
    rest: list[_Block] = []
    for turn in _newest_first(history, len(history) - len(kept)):
        rest.append(_finished_turn(turn, clean))
        used += rest[-1].tokens
        if used > room:
            return kept[::-1], len(history) - len(kept)
    return [*rest[::-1], *kept[::-1]], 0


def _newest_first(history: Sequence[Turn], end: int) -> Iterator[Turn]:
    # By index: `reversed(history[:end])` would copy the whole history first.
    for index in range(end - 1, -1, -1):
        yield history[index]


@dataclass
class _Budget:
    limit: int
    used: int

    def fits(self) -> bool:
        return self.used <= self.limit

    def swap(self, parts: list[_Part], index: int, part: _Part) -> None:
        self.used += part.tokens - parts[index].tokens
        parts[index] = part


def _drop_images(parts: list[_Part], indices: Sequence[int], budget: _Budget) -> None:
    """Take images off `parts`, the oldest first, until the budget fits."""
    for index in indices:
        while parts[index].images and not budget.fits():
            budget.swap(parts, index, replace(parts[index], images=parts[index].images[1:]))


def _shrink(
    parts: list[_Part],
    indices: Sequence[int],
    limits: Sequence[int],
    budget: _Budget,
    *,
    whole: bool = False,
) -> None:
    """Cut `parts` at `indices` to ever smaller sizes, oldest first, until the budget fits
    (answers: their prose, or with `whole` their actions too)."""
    for limit in limits:
        for index in indices:
            if budget.fits():
                return
            part = parts[index]
            if len(part.text) > limit:
                cut = part.cut_all(limit) if whole and isinstance(part, _AnswerPart) else None
                budget.swap(parts, index, cut or part.cut(limit))


def _leave_out_cells(cells: list[_Part], budget: _Budget) -> None:
    """Keep only the newest of the user's cells when, cut, they still do not fit."""
    if cells and not budget.fits() and isinstance(cells[0], _CellsPart):
        room = budget.limit - (budget.used - cells[0].tokens)
        budget.swap(cells, 0, cells[0].newest(room))


def _merge(parts: Sequence[_Part]) -> list[Message]:
    messages: list[Message] = []
    for role, run in itertools.groupby(parts, key=lambda part: part.role):
        group = list(run)
        content = "\n\n".join(part.content for part in group)
        messages.append(Message(role, content, tuple(i for part in group for i in part.images)))
    return messages


def _extend(messages: list[Message], more: Sequence[Message]) -> None:
    """Append `more` to `messages`, merging the two that meet when their roles do."""
    if messages and more and messages[-1].role == more[0].role:
        last, first = messages[-1], more[0]
        content = f"{last.content}\n\n{first.content}"
        messages[-1] = Message(last.role, content, last.images + first.images)
        more = more[1:]
    messages.extend(more)


# --- turns and steps as parts -------------------------------------------------------------


def _finished_turn(turn: Turn, clean: _Clean) -> _Block:
    # The steps by identity: a step is complete before its turn is, while the turn itself
    # may still be completed after it ended (an interrupt records its error after).
    key = (clean, turn.request, turn.user_cells, turn.final, turn.error, *turn.steps)
    return _TURNS.get(turn, key, lambda: _Block.of(_turn_parts(turn, clean)))


def _current_step(step: Step, clean: _Clean, vision: bool) -> _Block:
    key = (clean, vision, _step_fingerprint(step))
    return _STEPS.get(step, key, lambda: _Block.of(_step_parts(step, clean, vision=vision)))


def _step_fingerprint(step: Step) -> tuple[object, ...]:
    # What the parts are made of. Compared by `==`, which finds the very same strings and
    # observation at once, so checking a cached step costs next to nothing.
    return (
        step.model_text,
        step.code,
        step.observation,
        step.error,
        step.truncated,
        step.interrupted,
    )


def _turn_parts(turn: Turn, clean: _Clean) -> list[_Part]:
    parts = [*_cells_parts(turn.user_cells, clean), _Part("user", clean(turn.request))]
    for index, step in enumerate(turn.steps):
        answer = turn.final is not None and index == len(turn.steps) - 1
        parts += _step_parts(step, clean, vision=False, answer=answer)
    if turn.final is not None and parts[-1].role == "user":
        parts.append(_AnswerPart("assistant", _capped(clean(turn.final))))
    elif turn.final is None:
        # On the assistant's side, so that this request and the next stay two messages
        # (after an interrupted answer, it marks where the user stopped it).
        reason = turn.error or _INTERRUPTED
        parts.append(_Part("assistant", clean(_STOPPED.format(reason=reason.rstrip(".")))))
    return parts


def _step_parts(step: Step, clean: _Clean, *, vision: bool, answer: bool = False) -> list[_Part]:
    """An assistant part for the step and a user part with what came of it (images only
    for a vision model: they cost many tokens and text-only servers reject them).

    A step without an action that ran is the final answer (`answer`: the last step of
    a finished turn, whose text *is* the answer), an answer cut off at the output limit,
    or one that ended early: interrupted by the user, or broken off by a failed stream.
    That one is kept as the user saw it (the turn's closing note says why it ended); if
    it had code, the observation says that the code did not run. A step that never
    produced text leaves nothing.
    """
    text = _capped(clean(close_open_block(step.model_text).strip()))
    said = _AnswerPart("assistant", text)
    if step.observation is not None:
        images = step.observation.images if vision else ()
        observation = clean(step.observation.text)
        return [said, _Part("user", observation, images, OBSERVATION)]
    if step.truncated and text:
        note = _CUT_ACTION if extract_code(step.model_text) is not None else _CUT_PROSE
        return [said, _Part("user", note, (), OBSERVATION)]
    if step.error is not None and step.code is not None:
        return [said, _Part("user", clean(step.error), (), OBSERVATION)]
    if step.code is not None:
        return [said, _Part("user", _NOT_RUN, (), OBSERVATION)]
    if (step.interrupted or step.error is not None) and text:
        if extract_code(step.model_text) is None:
            return [said]
        note = _INTERRUPTED_ACTION if step.interrupted else _BROKEN_ACTION
        return [said, _Part("user", note, (), OBSERVATION)]
    if answer and text:
        return [said]
    return []


def _cells_parts(cells: Sequence[str], clean: _Clean) -> list[_Part]:
    sources = [cell.strip("\n") for cell in cells if cell.strip()]
    if not sources:
        return []
    blocks = tuple(clean(source) for source in sources)
    return [_CellsPart("user", _cells_text(blocks), blocks=blocks)]


def _cells_text(blocks: Sequence[str], left_out: int = 0) -> str:
    fenced = [_fence(block) for block in blocks]
    if left_out:
        fenced.insert(0, _CELLS_OMITTED.format(count=left_out))
    return _fill(_prompt("user_cells.md"), cells="\n\n".join(fenced)).strip()


def _fence(code: str) -> str:
    # A fence longer than any backtick run inside, so the cell cannot close it early.
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}python\n{code}\n{fence}"


# --- cache -----------------------------------------------------------------------

_T = TypeVar("_T")


@dataclass(frozen=True, eq=False)
class _Entry(Generic[_T]):
    owner: weakref.ref[object]
    key: tuple[object, ...]
    value: _T


class _IdentityCache(Generic[_T]):
    """Values made from objects that live long and seldom change (the turns of a
    session, the steps of a request), found by the object's identity.

    An entry is used only while its `key` is equal, so it includes everything the value
    was made from (the redactor, the object's content): a changed object or new secrets
    make a new value. An entry holds the object weakly and goes when the object does,
    so a forgotten conversation (`%codeact reset`) takes its cache along.
    """

    def __init__(self) -> None:
        self._entries: dict[int, _Entry[_T]] = {}

    def get(self, owner: object, key: tuple[object, ...], make: Callable[[], _T]) -> _T:
        ident = id(owner)
        entry = self._entries.get(ident)
        if entry is not None and entry.owner() is owner and entry.key == key:
            return entry.value
        value = make()
        # The callback runs before the id can be reused by a new object.
        owner_ref = weakref.ref(owner, lambda _: self._entries.pop(ident, None))
        self._entries[ident] = _Entry(owner_ref, key, value)
        return value

    def __len__(self) -> int:
        return len(self._entries)


_TURNS: _IdentityCache[_Block] = _IdentityCache()
_STEPS: _IdentityCache[_Block] = _IdentityCache()
