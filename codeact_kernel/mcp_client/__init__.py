"""MCP servers' tools as plain Python functions at `mcp.<server>.<tool>` (DESIGN.md §7).

- config.py: the `mcpServers` configuration (file, `c.CodeAct.mcp_servers`, `%codeact mcp
  add`) and `${VAR}` expansion; no SDK needed.
- names.py: servers', tools' and parameters' names made Python identifiers.
- schema.py: a tool's `inputSchema` as an `inspect.Signature`, and its arguments checked
  against it before the call.
- connection.py: one server's client session on the session's background loop (the only
  module that imports the `mcp` SDK, an optional extra).
- functions.py: the `mcp` object of the user namespace and the tool functions.
- servers.py: a session's servers: configured, started at first use, stopped at the end.

The package is not named `mcp`, so that `import mcp` always means the SDK.
"""
