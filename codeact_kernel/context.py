"""What the model sees: the system prompt, the conversation so far, within a token budget.

The messages follow the CodeAct convention (CodeActInstruct): the system prompt, then per
request a user message with the request, per step an assistant message with the model's
answer and a user message "Observation:\\n…", and the final answer as an assistant
message. The cells the user ran before a request open its user message, so the model
knows what changed in between. Consecutive messages of one role are merged, so roles
alternate strictly after the system message (some APIs require it).

Budget (`estimate_tokens`), cut in this order until the messages fit:

1. whole earlier requests, oldest first (a note says they were left out);
2. the observations of the current request's earlier steps, head and tail kept;
3. the user's cells shown with the current request, head and tail kept;
4. the current request's latest observation, head and tail kept.

The system prompt (with the namespace summary, itself capped by its own limits) and the
latest request are never cut. When they alone exceed the budget they are sent anyway: a
model that reads half a request does the wrong thing silently, while a server that
rejects a too-long prompt gives the user an error they can act on (shorten the request or
raise `context_tokens`).

Secrets: every message goes through a redactor before it is counted, so no value of a
secret ever reaches the model, whatever printed it: values passed in `secrets`
(`namespace.secret_values`), secret-looking environment variables (the kernel's own key
lives there), anything shaped like a key, passwords in URLs, and string literals
assigned to secret-looking names in code (`db_password = "…"`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources

from .actions import close_open_block
from .events import Step, Turn
from .executor import cut_middle
from .namespace import (
    KEY_PATTERN,
    MIN_SECRET_LENGTH,
    URL_PASSWORD,
    looks_secret_name,
    secret_values,
)
from .providers.base import Message, Role, estimate_tokens

__all__ = ["OBSERVATION", "REDACTED", "build_messages", "redact", "system_prompt"]

OBSERVATION = "Observation:\n"
REDACTED = "[redacted]"

_EMPTY_NAMESPACE = "# (nothing defined yet)"
_OMITTED = "[{count} earlier request(s) of this session are left out to fit the context budget.]"
_STOPPED = "[This request ended without a final answer: {reason}]"
_INTERRUPTED = "it was interrupted"
_NOT_RUN = "[This action did not run.]"

# Per-message overhead of chat formats (role markers, separators), and a flat cost per
# image: providers charge images by size, which the estimate cannot know.
_MESSAGE_TOKENS = 4
_IMAGE_TOKENS = 800
# Successive head+tail sizes tried when shortening, in characters.
_OBSERVATION_LIMITS = (2000, 1000, 500, 200)
_CELL_LIMITS = (2000, 500, 100)

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


# --- redaction -------------------------------------------------------------------

_PEM = re.compile(
    r"-----BEGIN[A-Z ]*PRIVATE KEY-----.*?(?:-----END[A-Z ]*PRIVATE KEY-----|\Z)", re.S
)
# The name is anchored at both ends so that a long word is tried once, not at each of
# its characters (which is quadratic on a 4,000-character observation).
# `name = "…"`, `name: str = "…"`, `["name"] = "…"`, `name="…"` (keyword argument),
# `"name": "…"` (dict, JSON), `NAME=value` (environment listings).
_ASSIGNMENT = re.compile(
    r"""(?<![A-Za-z0-9_])(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?![A-Za-z0-9_])
        (?:['"]?\]?[ \t]*(?::[ \t]*[A-Za-z_][\w.\[\], |]*?[ \t]*)?=(?!=)[ \t]*
          |['"][ \t]*:[ \t]*)
        (?P<value>
            [rRbBuU]{0,2}(?P<literal>
                '''[\s\S]*?''' | \"\"\"[\s\S]*?\"\"\"
              | '(?:[^'\\\n]|\\.)*' | "(?:[^"\\\n]|\\.)*")
          | [^\s'"`,;()\[\]{}]+
        )""",
    re.X,
)
# Unquoted values that are no secret: a variable (`password=pw`) or a number
# (`max_tokens=512`).
_NOT_A_LITERAL = re.compile(r"[A-Za-z_][\w.]*|[-+]?\d[\d_]*(?:\.\d*)?(?:[eE][-+]?\d+)?")


@dataclass(frozen=True)
class _Redactor:
    """Removes secret values from text; built once per `build_messages` call."""

    verbatim: re.Pattern[str] | None

    @classmethod
    def of(cls, secrets: Iterable[str]) -> _Redactor:
        values = sorted(
            {s for s in secrets if len(s.strip()) >= MIN_SECRET_LENGTH}, key=len, reverse=True
        )
        pattern = re.compile("|".join(map(re.escape, values))) if values else None
        return cls(pattern)

    def __call__(self, text: str) -> str:
        if self.verbatim is not None:
            text = self.verbatim.sub(REDACTED, text)
        text = _PEM.sub(REDACTED, text)
        text = KEY_PATTERN.sub(REDACTED, text)
        text = URL_PASSWORD.sub(
            lambda m: m.group(0)[: m.start(1) - m.start(0)] + REDACTED + "@", text
        )
        return _redact_assignments(text)


def _redact_assignments(text: str) -> str:
    pieces: list[str] = []
    done = 0
    start = 0
    while (match := _ASSIGNMENT.search(text, start)) is not None:
        value_start, value_end = match.span("value")
        # A name that is no secret: keep looking inside its value, which may hide one
        # (`note = "password='x'"`).
        start = value_start
        if not looks_secret_name(match.group("name"), strict=True):
            continue
        start = value_end
        literal = match.group("literal")
        if literal is not None:
            quote = 3 if literal[:3] in ("'''", '"""') and len(literal) >= 6 else 1
            body_start, body_end = match.start("literal") + quote, value_end - quote
        elif _NOT_A_LITERAL.fullmatch(match.group("value")):
            continue
        else:
            body_start, body_end = value_start, value_end
        if body_end > body_start:
            pieces.append(text[done:body_start] + REDACTED)
            done = body_end
    pieces.append(text[done:])
    return "".join(pieces)


def redact(text: str, secrets: Collection[str] = ()) -> str:
    """`text` with secret values replaced by `[redacted]` (see the module docstring)."""
    return _Redactor.of(secrets)(text)


# --- messages --------------------------------------------------------------------


@dataclass
class _Part:
    """A piece of one message; consecutive parts of one role become one message."""

    role: Role
    text: str
    images: tuple[str, ...] = ()
    header: str = ""
    original: str = field(default="", repr=False)

    @property
    def content(self) -> str:
        return self.header + self.text

    def tokens(self) -> int:
        return estimate_tokens(self.content) + _MESSAGE_TOKENS + len(self.images) * _IMAGE_TOKENS

    def shorten(self, limit: int) -> None:
        """Keep head and tail of the original text within `limit` characters."""
        self.original = self.original or self.text
        self.text = cut_middle(self.original, limit)


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
    clean = _Redactor.of([*secrets, *secret_values({})])
    system = _Part("system", clean(system_prompt(action_format, namespace, tools)))
    turns = [_turn_parts(turn, clean) for turn in history]
    cells = _cells_part(user_cells, clean)
    latest = _Part("user", clean(request))
    steps = _steps_parts(current, clean, vision=vision, final=None)

    def total(dropped: int) -> int:
        parts = [system, *_flatten(turns[dropped:]), *cells, latest, *steps]
        notes = _MESSAGE_TOKENS + estimate_tokens(_OMITTED) if dropped else 0
        return sum(part.tokens() for part in parts) + notes

    dropped = 0
    while dropped < len(turns) and total(dropped) > budget_tokens:
        dropped += 1
    observations = [part for part in steps if part.header == OBSERVATION]
    if total(dropped) > budget_tokens:
        _shrink(observations[:-1], _OBSERVATION_LIMITS, lambda: total(dropped) <= budget_tokens)
    if total(dropped) > budget_tokens:
        _shrink(cells, _CELL_LIMITS, lambda: total(dropped) <= budget_tokens)
    if total(dropped) > budget_tokens:
        _shrink(observations[-1:], _OBSERVATION_LIMITS, lambda: total(dropped) <= budget_tokens)

    parts = [system]
    if dropped:
        parts.append(_Part("user", _OMITTED.format(count=dropped)))
    parts += [*_flatten(turns[dropped:]), *cells, latest, *steps]
    return _merge(parts)


def _shrink(parts: Sequence[_Part], limits: Sequence[int], fits: Callable[[], bool]) -> None:
    """Cut `parts` to ever smaller sizes, oldest first, until `fits()`."""
    for limit in limits:
        for part in parts:
            if len(part.text) > limit:
                # Images are the first thing to go: they cost the most.
                part.images = ()
                part.shorten(limit)
                if fits():
                    return


def _turn_parts(turn: Turn, clean: _Redactor) -> list[_Part]:
    parts = [*_cells_part(turn.user_cells, clean), _Part("user", clean(turn.request))]
    parts += _steps_parts(turn.steps, clean, vision=False, final=turn.final)
    if turn.final is not None and parts[-1].role == "user":
        parts.append(_Part("assistant", clean(turn.final)))
    elif turn.final is None:
        reason = turn.error or _INTERRUPTED
        parts.append(_Part("user", clean(_STOPPED.format(reason=reason))))
    return parts


def _steps_parts(
    steps: Sequence[Step], clean: _Redactor, *, vision: bool, final: str | None
) -> list[_Part]:
    """An assistant part per step and a user part with what came of it (images only
    for a vision model: they cost many tokens and text-only servers reject them).

    A step with neither observation nor error is either the final answer (the last step
    of a finished turn: its text *is* the answer) or an answer cut off by an interrupt,
    which is left out: its code never ran, and showing it would suggest it had.
    """
    parts: list[_Part] = []
    for index, step in enumerate(steps):
        text = clean(close_open_block(step.model_text).strip())
        if step.observation is not None:
            images = step.observation.images if vision else ()
            observation = clean(step.observation.text)
            parts.append(_Part("assistant", text))
            parts.append(_Part("user", observation, images, OBSERVATION))
        elif step.error is not None and step.code is not None:
            parts.append(_Part("assistant", text))
            parts.append(_Part("user", clean(step.error), (), OBSERVATION))
        elif step.code is not None:
            parts.append(_Part("assistant", text))
            parts.append(_Part("user", _NOT_RUN, (), OBSERVATION))
        elif final is not None and index == len(steps) - 1 and text:
            parts.append(_Part("assistant", text))
    return parts


def _cells_part(cells: Sequence[str], clean: _Redactor) -> list[_Part]:
    sources = [cell.strip("\n") for cell in cells if cell.strip()]
    if not sources:
        return []
    blocks = tuple(clean(source) for source in sources)
    return [_CellsPart("user", _cells_text(blocks), blocks=blocks)]


@dataclass
class _CellsPart(_Part):
    """The user's cells, shortened cell by cell so that each keeps its fence."""

    blocks: tuple[str, ...] = ()

    def shorten(self, limit: int) -> None:
        self.text = _cells_text([cut_middle(block, limit) for block in self.blocks])


def _cells_text(blocks: Sequence[str]) -> str:
    fenced = "\n\n".join(_fence(block) for block in blocks)
    return _fill(_prompt("user_cells.md"), cells=fenced).strip()


def _fence(code: str) -> str:
    # A fence longer than any backtick run inside, so the cell cannot close it early.
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}python\n{code}\n{fence}"


def _flatten(turns: Sequence[list[_Part]]) -> list[_Part]:
    return [part for turn in turns for part in turn]


def _merge(parts: Sequence[_Part]) -> list[Message]:
    messages: list[Message] = []
    for part in parts:
        if messages and messages[-1].role == part.role:
            last = messages[-1]
            content = f"{last.content}\n\n{part.content}"
            messages[-1] = replace(last, content=content, images=last.images + part.images)
        else:
            messages.append(Message(part.role, part.content, part.images))
    return messages
