"""The real `tierwise mcp --transport http` in a subprocess, and the `mcp` SDK's client to it: shared by the MCP
HTTP tests (their fixtures are in tests/mcp/conftest.py) and the ensemble tests that call tools over HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from tests.harness import free_port

TOKEN = "t0k-" + "x" * 40
SECRET_KEYS = ("db_password_hunter2", "aws_secret_key_id")  # keys of a YAML file outside the folders
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "attacker", "version": "1"}}}
MCP_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


@dataclass
class McpHttp:
    url: str
    port: int
    proc: subprocess.Popen[bytes]
    home: Path
    err: Path  # its stderr: a file, as a pipe nobody reads stops the server once 64 KiB of log lines fill it

    def stderr(self) -> str:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        return self.err.read_text(errors="replace")


def start(project: Path, *args: str, token: str | None = TOKEN, host: str = "127.0.0.1") -> McpHttp:
    """The real `tierwise mcp --transport http` on a free port. A port free when picked may be taken by another
    test's server before this one binds it (two xdist workers): the server that answers must be this one (a
    401 to a request without the token; another server says 404), else it is started again on another port."""
    for _ in range(5):
        try:
            s = _start_once(project, *args, token=token, host=host)
        except AssertionError as e:
            if "in use" in str(e).lower():  # (errno EADDRINUSE: the port went to another test first)
                continue
            raise
        try:
            with urllib.request.urlopen(urllib.request.Request(  # noqa: S310 (loopback)
                    s.url, data=json.dumps(INIT).encode(), headers=MCP_HEADERS, method="POST"), timeout=30):
                pass
        except urllib.error.HTTPError as e:
            if e.code == 401:
                return s
        except OSError:
            pass
        s.proc.kill()
        s.proc.communicate(timeout=30)
    raise AssertionError("the MCP server did not come up as itself on any of 5 free ports")


def _start_once(project: Path, *args: str, token: str | None, host: str) -> McpHttp:
    port = free_port()
    home = project.parent / "home"
    env = {"TIERWISE_HOME": str(home), "TIERWISE_LIBRARY": str(project / "lib"), "PATH": os.environ["PATH"]}
    if os.environ.get("PYTHONPATH"):  # a worktree's code, not the installed one
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    if token is not None:
        env["TIERWISE_MCP_TOKEN"] = token
    exe = Path(sys.executable).parent / "tierwise"
    err = project.parent / f"mcp-stderr-{port}.log"
    proc = subprocess.Popen(
        [str(exe), "mcp", "--transport", "http", "--host", host, "--port", str(port),
         "-c", str(project / "tierwise.yaml"), "--project", str(project), *args],
        env=env, cwd=str(project), stdout=subprocess.DEVNULL, stderr=err.open("wb"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("server exited: " + err.read_text(errors="replace"))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as c:
                # A port in the ephemeral range with nothing listening yet can be connected to itself (TCP
                # simultaneous open, when the kernel picks that very port as the local one): not the server.
                if c.getsockname() != c.getpeername():
                    break
        except OSError:
            pass
        time.sleep(0.1)
    else:
        proc.kill()
        proc.wait()
        raise AssertionError("the MCP server did not listen within 60 s: " + err.read_text(errors="replace")[-2000:])
    return McpHttp(f"http://127.0.0.1:{port}/mcp", port, proc, home, err)


@asynccontextmanager
async def client(url: str, token: str | None = TOKEN) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with create_mcp_http_client(headers=headers) as http:
        async with Client(streamable_http_client(url, http_client=http), read_timeout_seconds=30) as c:
            yield c


async def tool_text(c: Client, tool: str, /, **args: Any) -> tuple[bool, str]:
    """(is_error, everything the tool answered as text): what an attacker gets to read."""
    r = await c.call_tool(tool, args)
    text = " ".join(getattr(b, "text", "") for b in r.content)
    if r.structured_content is not None:
        text += json.dumps(r.structured_content)
    return bool(r.is_error), text


async def raw_post(url: str, headers: dict[str, str]) -> aiohttp.ClientResponse:
    async with aiohttp.ClientSession() as s, s.post(url, json=INIT, headers={**MCP_HEADERS, **headers}) as r:
        await r.read()
        return r


