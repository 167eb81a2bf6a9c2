"""Real MCP servers for the tests: the SDK-written demo server (tests/mcp_demo_server.py)
over stdio and over streamable HTTP on 127.0.0.1, and `mcp-server-time` from PyPI.

Config entries are in the common `mcpServers` shape; stdio servers run with this
interpreter, so nothing depends on PATH.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DEMO = Path(__file__).resolve().parent / "mcp_demo_server.py"
HTTP_TOKEN = "demo-token-0123456789abcdef0123456789"


def demo_entry(**extra: Any) -> dict[str, Any]:
    """The demo server over stdio."""
    return {"command": sys.executable, "args": [str(DEMO)], **extra}


def time_entry() -> dict[str, Any]:
    """`mcp-server-time`, the published server, with a fixed local timezone."""
    return {
        "command": sys.executable,
        "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"],
    }


def http_entry(url: str, token_variable: str = "DEMO_TOKEN") -> dict[str, Any]:
    """The demo server over HTTP, its token read from `token_variable`."""
    return {"url": url, "headers": {"X-Demo-Token": f"${{{token_variable}}}"}}


def write_config(path: Path, servers: Mapping[str, Any]) -> Path:
    path.write_text(json.dumps({"mcpServers": dict(servers)}, indent=2))
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class HttpDemo:
    """The demo server over streamable HTTP; `stop()` and `start()` to take it away."""

    def __init__(self, token: str = HTTP_TOKEN) -> None:
        self.port = free_port()
        self.token = token
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def start(self) -> HttpDemo:
        command = [sys.executable, str(DEMO), "--http", str(self.port), "--token", self.token]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return self
            if self.process.poll() is not None:
                raise RuntimeError("the HTTP demo server exited")
            time.sleep(0.05)
        raise TimeoutError("the HTTP demo server did not listen within 30 s")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def __enter__(self) -> HttpDemo:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def children_of(pid: int) -> set[int]:
    """Every live descendant of process `pid` (Linux /proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            # The command may hold spaces and parentheses: the fields follow the last ")".
            fields = stat[stat.rindex(")") + 2 :].split()
            if fields[0] != "Z":
                parents[int(entry)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2 :].split()[0] != "Z"


def wait_gone(pids: set[int], timeout: float = 10.0) -> set[int]:
    """The processes of `pids` still alive after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = {pid for pid in pids if alive(pid)}
        if not left:
            return set()
        time.sleep(0.1)
    return {pid for pid in pids if alive(pid)}
