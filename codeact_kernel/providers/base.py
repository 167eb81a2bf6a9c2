"""The one interface every model provider implements.

A provider turns a list of chat messages into a stream of text deltas and, at the
end, one `Usage` record. It owns nothing but its HTTP dialect: the `httpx.AsyncClient`
is injected, so tests hand it an `httpx.MockTransport` or point it at a loopback server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from ..events import Usage

if TYPE_CHECKING:  # httpx loads only when a model is first used: kernel start stays fast
    import httpx

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Message:
    """One chat message. Images ride along as PNG/JPEG base64 for vision models."""

    role: Role
    content: str
    images: tuple[str, ...] = ()


@dataclass(frozen=True)
class TextDelta:
    """A piece of the model's answer, in arrival order."""

    text: str


@dataclass(frozen=True)
class Notice:
    """Progress worth showing the user while nothing streams ("rate-limited, retrying in 2 s")."""

    message: str


#: `Truncated.reason` of an answer that ended at the output limit.
LENGTH = "length"
#: `Truncated.reason` of an answer the model stopped to refuse (Anthropic's "refusal").
REFUSAL = "refusal"
#: `Truncated.reason` of an answer the server paused to be continued (Anthropic's "pause_turn").
PAUSE = "pause"


@dataclass(frozen=True)
class Truncated:
    """The answer did not end where the model chose: at the output limit (OpenAI
    `finish_reason: "length"`, Anthropic `stop_reason: "max_tokens"`, Ollama
    `done_reason: "length"`), or stopped for another reason (a content filter, a refusal,
    a pause, a reason this client does not know). Nothing of such an answer runs.

    Yielded after the last `TextDelta` and before the `Usage`.
    """

    #: The output limit that was asked for (`max_tokens`), None when none was sent.
    limit: int | None = None
    #: Why it stopped: `LENGTH`, `REFUSAL`, `PAUSE`, or the server's own word (OpenAI's
    #: "content_filter", a reason this client does not know).
    reason: str = LENGTH


StreamItem = TextDelta | Usage | Notice | Truncated


@dataclass(frozen=True)
class ProviderConfig:
    """What a provider needs to reach its endpoint, and how long an answer may be.

    `api_key` is deliberately left out of `repr` so that it cannot leak into logs
    or tracebacks that print the config. The defaults are the settings' defaults;
    timeouts are in seconds, 0 (or None) meaning no limit. How the timeouts work
    together is told in `providers/http.py`.
    """

    model: str
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    api_key_source: str | None = None
    connect_timeout: float = 5.0
    idle_timeout: float = 30.0
    first_token_timeout: float = 120.0
    total_timeout: float | None = None
    max_retries: int = 2
    #: The longest answer to ask for, in tokens; None asks for no limit.
    max_tokens: int | None = 4096
    #: Sampling temperature; None leaves the endpoint's default.
    temperature: float | None = None


@runtime_checkable
class Model(Protocol):
    """A configured model: `provider:model` plus how to reach it."""

    @property
    def name(self) -> str:
        """The full `provider:model` name, for display and provenance."""
        ...

    @property
    def endpoint(self) -> str:
        """The base URL it talks to (never contains the key)."""
        ...

    def stream(
        self, messages: Sequence[Message], *, stop: Sequence[str] = ()
    ) -> AsyncIterator[StreamItem]:
        """Yield `TextDelta`s as they arrive (and `Notice`s), then exactly one `Usage`.

        Raises a `ProviderError` subclass on failure; text already yielded stays valid.
        """
        ...

    async def list_models(self) -> list[str]:
        """The names of the models the endpoint serves (without the `provider:` prefix).

        Raises a `ProviderError` subclass when the endpoint fails, as `stream` does, and
        a plain `ProviderError` that says so when the provider has no way to list its
        models (a service with one fixed model, say); every built-in provider can.
        """
        ...


class ProviderFactory(Protocol):
    """A provider as registered: it declares where its settings come from, and builds models.

    The declarations let settings be resolved and the endpoint shown without building
    a model or an HTTP client. Built-in providers are `HttpModel` subclasses, each
    class being its own factory; a plug-in may subclass it too.
    """

    @property
    def key_variables(self) -> tuple[str, ...]:
        """Environment variables that may hold the API key, the one to prefer first."""
        ...

    @property
    def url_variables(self) -> tuple[str, ...]:
        """Environment variables that may hold the base URL, the one to prefer first."""
        ...

    def normalize_base_url(self, url: str | None) -> str:
        """The base URL requests go under, given the configured one (None: the default).

        Raises `ConfigurationError` when `url` cannot be one.
        """
        ...

    def __call__(self, config: ProviderConfig, client: httpx.AsyncClient) -> Model:
        """A model reached through `client`, which the caller owns and closes."""
        ...


def estimate_tokens(text: str) -> int:
    """A rough token count for servers that report none, and for the context budget:
    about four characters a token in English and code, but a token or more a character
    in Chinese, Japanese or Korean. Counting every non-ASCII character as a token errs
    on the safe side for the rest (an accented letter), so that a prompt in any script
    stays within the budget."""
    if not text:
        return 0
    ascii_count = len(text.encode("ascii", "ignore"))
    return max(1, (ascii_count + 3) // 4 + len(text) - ascii_count)
