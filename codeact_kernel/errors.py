"""Errors raised by codeact_kernel.

Every error the package raises on purpose derives from `CodeActError`, so a frontend
can turn any of them into a clear error reply (`ename` is the class name, `evalue`
the message, which always says what to do next)::

    CodeActError
    ├── ConfigurationError        settings are missing or invalid (no model, bad model name)
    ├── ProviderError             the model endpoint failed
    │   ├── ConnectionFailed      the endpoint could not be reached
    │   ├── AuthenticationFailed  the key was rejected (401/403)
    │   ├── ModelNotFound         the endpoint does not serve that model (404)
    │   ├── RateLimited           429 after the retries ran out
    │   ├── ContextTooLong        the request exceeds the model's context window
    │   ├── ProviderTimeout       connect, idle or total timeout
    │   ├── StreamError           the stream broke, was malformed or carried an error event
    │   └── ServerError           any other HTTP error status
    ├── AgentError                the agent loop could not finish the request
    │   ├── StepBudgetExhausted   `max_steps` actions ran without a final answer
    │   ├── RetryBudgetExhausted  `max_retries` consecutive actions failed
    │   └── ApprovalUnavailable   `approval = ask` but the frontend cannot ask
    └── McpToolError              an MCP tool reported an error (the server's message)
        └── McpServerError        its server could not start, crashed or stopped answering

`McpToolError` is what code calling `mcp.<server>.<tool>(...)` catches; its
`McpServerError` subclass says the server itself failed (it restarts on the next call).
"""

from __future__ import annotations


class CodeActError(Exception):
    """Base class of every error codeact_kernel raises on purpose."""


class ConfigurationError(CodeActError):
    """Settings are missing or invalid."""


class ProviderError(CodeActError):
    """The model endpoint failed. `status` is the HTTP status when there was one."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ConnectionFailed(ProviderError):
    """The endpoint could not be reached."""


class AuthenticationFailed(ProviderError):
    """The endpoint rejected the API key."""


class ModelNotFound(ProviderError):
    """The endpoint does not serve the requested model."""


class RateLimited(ProviderError):
    """The endpoint kept answering 429 after the retries ran out."""


class ContextTooLong(ProviderError):
    """The request does not fit the model's context window."""


class ProviderTimeout(ProviderError):
    """A connect, idle or total timeout fired."""


class StreamError(ProviderError):
    """The response stream broke off, was malformed or carried an error event."""


class ServerError(ProviderError):
    """Any other HTTP error status."""


class AgentError(CodeActError):
    """The agent loop could not finish the request."""


class StepBudgetExhausted(AgentError):
    """`max_steps` actions ran without a final answer."""


class RetryBudgetExhausted(AgentError):
    """`max_retries` consecutive actions failed."""


class ApprovalUnavailable(AgentError):
    """Approval is required but the frontend offers no way to ask for it."""


class McpToolError(CodeActError):
    """An MCP tool reported an error; the message is the server's.

    `server` and `tool` name the tool as the server knows it.
    """

    def __init__(self, message: str, *, server: str = "", tool: str = "") -> None:
        super().__init__(message)
        self.server = server
        self.tool = tool


class McpServerError(McpToolError):
    """An MCP server could not start, crashed or stopped answering (with its stderr tail)."""
