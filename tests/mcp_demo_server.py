"""An MCP server for the tests, written with the SDK (`MCPServer`).

Tools: typed parameters with defaults (`add`), structured output (`stats`), an error
(`fail`), a slow tool (`slow`), one that kills the server (`crash`), an image (`plot`),
text without an output schema (`shout`), its process id (`pid`), an environment
variable's presence (`has_env`), two text parts (`parts`), an `isError` result (`refuse`),
and names Python cannot use as they are (`get-item.v2` with parameters `from` and
`user-id`, and `get_item_v2`, which becomes the same identifier).

    python tests/mcp_demo_server.py                    stdio
    python tests/mcp_demo_server.py --http PORT [--token T]
                                                       streamable HTTP on 127.0.0.1:PORT/mcp,
                                                       answering only requests whose
                                                       X-Demo-Token header is T

Every start prints `demo server starting` to stderr, so tests can see the stderr tail.
"""

from __future__ import annotations

import argparse
import base64
import inspect
import os
import sys
import time
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ImageContent, TextContent
from pydantic import BaseModel, Field

# A 1×1 PNG.
PIXEL = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201a3b5d2"
        "2a0000000049454e44ae426082"
    )
).decode()

server = MCPServer("demo", version="1.0")


class Stats(BaseModel):
    count: int
    total: float
    unit: str


@server.tool()
def add(a: int, b: int = 2) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def stats(
    values: Annotated[list[float], Field(description="The numbers to sum.")],
    unit: Literal["m", "s"] = "m",
    scale: Annotated[float, Field(gt=0)] = 1.0,
) -> Stats:
    """Count and sum numbers.

    The total is scaled by `scale`.
    """
    return Stats(count=len(values), total=sum(values) * scale, unit=unit)


@server.tool()
def fail(message: str) -> str:
    """Always fails with `message`."""
    raise ToolError(message)


@server.tool()
def slow(seconds: float) -> str:
    """Sleep for `seconds`, then answer."""
    time.sleep(seconds)
    return f"slept {seconds}"


@server.tool()
def crash() -> str:
    """Kill the server process."""
    print("demo server: crashing on purpose", file=sys.stderr, flush=True)
    os._exit(3)


@server.tool()
def plot() -> CallToolResult:
    """An image and a caption."""
    return CallToolResult(
        content=[
            ImageContent(type="image", data=PIXEL, mime_type="image/png"),
            TextContent(type="text", text="a one-pixel plot"),
        ]
    )


@server.tool(structured_output=False)
def shout(text: str) -> str:
    """Upper-case `text` (plain text, no output schema)."""
    return text.upper()


@server.tool()
def pid() -> int:
    """This server's process id."""
    return os.getpid()


@server.tool()
def has_env(name: str) -> bool:
    """Whether the environment variable `name` is set (its value is never returned)."""
    return bool(os.environ.get(name))


@server.tool()
def parts() -> CallToolResult:
    """Two text parts."""
    return CallToolResult(
        content=[TextContent(type="text", text="first"), TextContent(type="text", text="second")]
    )


@server.tool()
def refuse(reason: str) -> CallToolResult:
    """A result that reports an error itself (`isError`), as servers without exceptions do."""
    return CallToolResult(is_error=True, content=[TextContent(type="text", text=reason)])


def get_item(**arguments: str) -> str:
    """Parameters named as Python cannot name them: `from` and `user-id`."""
    return f"{arguments['from']}/{arguments.get('user-id', 'me')}"


# The schema's names come from the aliases; the SDK calls the function with them.
get_item.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [
        inspect.Parameter(
            "from_", inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[str, Field(alias="from")]
        ),
        inspect.Parameter(
            "user_id",
            inspect.Parameter.KEYWORD_ONLY,
            default="me",
            annotation=Annotated[str, Field(alias="user-id")],
        ),
    ],
    return_annotation=str,
)
server.add_tool(get_item, name="get-item.v2")
# A name that becomes the same identifier as the one above: it gets another.
server.add_tool(lambda: "plain", name="get_item_v2", description="No parameters.")


def _http_app(port: int, token: str | None) -> Any:
    app = server.streamable_http_app(host="127.0.0.1")
    if token is None:
        return app

    async def guarded(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            if headers.get(b"x-demo-token", b"").decode() != token:
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b"bad token"})
                return
        await app(scope, receive, send)

    return guarded


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int)
    parser.add_argument("--token")
    options = parser.parse_args()
    print("demo server starting", file=sys.stderr, flush=True)
    if options.http is None:
        server.run()
        return
    import uvicorn

    uvicorn.run(
        _http_app(options.http, options.token),
        host="127.0.0.1",
        port=options.http,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
