"""What every built-in provider shares; each subclass adds only its HTTP dialect.

As simonw/llm's models do, a provider class declares what it needs from the outside
world: its name, the environment variables its key and base URL come from (the one
to prefer first), its default base URL, and how a base URL the user wrote becomes the
one requests go under. The registry reads these declarations to resolve settings and
to show the endpoint without building a model or an HTTP client; the instance uses
them for its requests and its error messages.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import ConfigurationError
from .base import LENGTH, Message, ProviderConfig, StreamItem
from .http import (
    Endpoint,
    check_key,
    empty_answer,
    foreign_format,
    get_json,
    limit_before_text,
    parse_url,
    stopped_before_text,
    tool_call_answer,
    truncated,
)
from .retry import RetryPolicy

if TYPE_CHECKING:  # annotations only: the client is the caller's
    import httpx


class HttpModel(ABC):
    """A model behind an HTTP API: config, client, retries, endpoint and key checks."""

    #: The `provider` part of `provider:model`.
    provider: ClassVar[str]
    #: Environment variables of the key and the base URL, the one to prefer first; the
    #: CODEACT_ ones serve every provider, the provider's customary ones follow.
    key_variables: ClassVar[tuple[str, ...]] = ("CODEACT_API_KEY",)
    url_variables: ClassVar[tuple[str, ...]] = ("CODEACT_BASE_URL",)
    default_base_url: ClassVar[str]
    #: How error messages name a server that speaks this dialect.
    server_label: ClassVar[str]
    #: The vendor's own API, if there is one: messages name the vendor, and it needs a key.
    vendor_host: ClassVar[str | None] = None
    vendor_label: ClassVar[str] = ""
    #: Ends "No API key for <vendor>. Set <variable> to your key…": where to get one.
    key_help: ClassVar[str] = "."
    #: What a base URL of this dialect looks like, as " (…)" after "Check the base URL".
    base_url_hint: ClassVar[str] = ""

    def __init__(
        self,
        config: ProviderConfig,
        client: httpx.AsyncClient,
        *,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._config = config
        self._client = client
        self._retry = retry or RetryPolicy()
        self._base_url = self.normalize_base_url(config.base_url)
        self._official = (
            self.vendor_host is not None and parse_url(self._base_url).host == self.vendor_host
        )
        self._endpoint = Endpoint(
            label=self.vendor_label if self._official else self.server_label,
            url=self._base_url,
            config=config,
            key_variables=self.key_variables,
            unreachable_hint=self._unreachable_hint(),
            missing_model_hint=self._missing_model_hint(),
            base_url_hint=self.base_url_hint,
            list_models=self.list_models,
        )

    @classmethod
    def normalize_base_url(cls, url: str | None) -> str:
        """The base URL requests go under, given the configured one (None: the default).

        Needs no client, so the status report can show it without building a model.
        Raises `ConfigurationError` when `url` cannot be a base URL.
        """
        return cls._api_root((url or cls.default_base_url).strip().rstrip("/"))

    @staticmethod
    @abstractmethod
    def _api_root(url: str) -> str:
        """`url` (stripped, no trailing slash) made the root this dialect's paths hang off."""

    @property
    def name(self) -> str:
        """The full `provider:model` name, for display and provenance."""
        return f"{self.provider}:{self._config.model}"

    @property
    def endpoint(self) -> str:
        """The base URL it talks to (never contains the key)."""
        return self._base_url

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, endpoint={self._base_url!r})"

    @abstractmethod
    def stream(
        self, messages: Sequence[Message], *, stop: Sequence[str] = ()
    ) -> AsyncIterator[StreamItem]:
        """Stream the answer to `messages`; see `Model.stream`."""

    @abstractmethod
    async def list_models(self) -> list[str]:
        """The models the endpoint serves; see `Model.list_models`."""

    def _unreachable_hint(self) -> str:
        if self._official:
            return "Check the network connection and any proxy settings."
        first, *others = self.url_variables
        return f"Is the server running, and is {first}{_or(others)} right?"

    def _missing_model_hint(self) -> str:
        return ""

    def _headers(self) -> dict[str, str]:
        """Request headers: the key as a bearer token, which most servers expect."""
        if self._config.api_key:
            return {"authorization": f"Bearer {self._config.api_key}"}
        return {}

    def _require_key(self) -> None:
        """Refuse, before any request, a key that cannot be sent or a vendor API without one."""
        check_key(self._config)
        if not self._config.api_key and self._official:
            *generic, own = self.key_variables
            raise ConfigurationError(
                f"No API key for {self.vendor_label}. Set {own}{_or(generic)} to your key"
                f"{self.key_help}"
            )

    def _post(self, path: str, body: dict[str, Any], *, accept: str | None = None) -> httpx.Request:
        """The streamed request to `path`, with this endpoint's headers and timeouts."""
        headers = self._headers()
        if accept:
            headers["accept"] = accept
        return self._client.build_request(
            "POST",
            f"{self._base_url}{path}",
            json=body,
            headers=headers,
            timeout=self._endpoint.stream_timeout(),
        )

    async def _get_json(self, path: str) -> Any:
        """One GET of a JSON document under the base URL (model listings)."""
        self._require_key()
        return await get_json(
            self._client, f"{self._base_url}{path}", self._endpoint, self._headers()
        )

    @property
    def _max_tokens(self) -> int | None:
        """The output limit to ask for; None: ask for none."""
        return self._config.max_tokens or None

    def _answer(
        self,
        finished: bool,
        pieces: Sequence[str],
        *,
        stop: str | None = None,
        tool_call: bool = False,
        unread: str | None = None,
    ) -> str:
        """The whole answer, once the stream has ended; an error if it broke off or is empty.

        `stop` is the `Truncated.reason` of an answer that did not end normally: one with
        some text is returned (the caller yields `Truncated`), one without any is an
        error that says why. `tool_call` says the answer called a tool, which CodeAct does
        not offer: without text, that is what the error says. `unread` is the first event
        or line the provider did not understand: a stream of nothing else is another API's.
        """
        if not finished and not pieces and unread is not None:
            raise foreign_format(self._endpoint, unread)
        if not finished:
            raise truncated(self._endpoint, shown=bool(pieces))
        if not pieces and stop == LENGTH:
            raise limit_before_text(self._endpoint, self._max_tokens)
        if not pieces and stop is not None:
            raise stopped_before_text(self._endpoint, stop)
        if not pieces and tool_call:
            raise tool_call_answer(self._endpoint)
        if not pieces:
            raise empty_answer(self._endpoint)
        return "".join(pieces)


def model_ids(payload: Any) -> list[str]:
    """The `id`s of a `{"data": [{"id": …}, …]}` listing (OpenAI's and Anthropic's shape)."""
    data = payload.get("data") if isinstance(payload, dict) else None
    return [str(m["id"]) for m in data or [] if isinstance(m, dict) and "id" in m]


def _or(alternatives: Sequence[str]) -> str:
    """Names that would do as well, as " (or A or B)"; "" when there are none."""
    return f" (or {' or '.join(alternatives)})" if alternatives else ""
