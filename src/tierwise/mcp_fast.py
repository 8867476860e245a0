"""`tierwise mcp` over stdio answers the MCP handshake before the MCP SDK has loaded.

Importing the SDK (its protocol types for every revision, its client, starlette) and building the
gateway takes 1-2 s; Claude Code starts its first turn without a server that has not listed its
tools by then. So the main thread answers `initialize`, the tool, prompt and resource lists and `ping` at once from
`mcp_manifest.json` (what this very SDK version answers, recorded by `python -m tierwise.mcp_fast
--write` and checked by tests/mcp/test_mcp_startup.py), while a thread imports the SDK and builds
the server. Then the SDK takes over the pipe: it is handed the client's `initialize` again (its
own reply to that is dropped: the client already has ours) and every message that arrived
meanwhile, in order, followed by the rest of stdin. A tool call that arrives early waits for it.

With no manifest, a manifest of another SDK version, or a protocol revision it does not hold,
nothing is answered early and the SDK does the whole handshake itself, as before.

While serving, fd 0 reads the null device and fd 1 is stderr, as the SDK's own stdio transport
arranges, so a handler's stray print never corrupts the wire.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import select
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

MANIFEST = Path(__file__).with_name("mcp_manifest.json")
# Bytes the early reader holds for the SDK before it has loaded; past this it just waits.
EARLY_BYTES_CAP = 8 << 20
# What a client asks right after `initialize` (Claude Code lists prompts and resources too, and
# registers a server's tools only when every list it asked for has come back).
LISTS = ("tools/list", "prompts/list", "resources/list", "resources/templates/list")


def load_manifest(path: Path = MANIFEST) -> dict[str, Any] | None:
    """The recorded handshake answers, if they were recorded with the MCP SDK installed here
    (and $TIERWISE_MCP_NO_MANIFEST is not set: then the SDK answers everything, as when recording)."""
    if os.environ.get("TIERWISE_MCP_NO_MANIFEST"):
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and _sdk_is(data.get("sdk")) else None


def _sdk_is(version: Any) -> bool:
    """Whether the `mcp` package Python would import is release `version`: its folder has the
    `mcp-<version>.dist-info` beside it. Not importlib.metadata: importing it (email, zipfile, csv,
    ...) and scanning sys.path cost about a quarter of everything run before the first answer."""
    if not isinstance(version, str) or not version or os.sep in version:
        return False
    spec = importlib.util.find_spec("mcp")  # finds the package without importing it
    places = list(spec.submodule_search_locations or []) if spec is not None else []
    return len(places) == 1 and os.path.isdir(os.path.join(os.path.dirname(places[0]), f"mcp-{version}.dist-info"))


class _Early:
    """What the main thread answers before the SDK is ready, and what it keeps for the SDK."""

    def __init__(self, manifest: dict[str, Any] | None) -> None:
        self.by_version: dict[str, Any] = (manifest or {}).get("versions", {})
        self.version: str | None = None
        self.init_id: Any = None

    def handle(self, line: bytes) -> tuple[bytes | None, bool]:
        """(reply to write now or None, whether the SDK must see this line)."""
        try:
            msg = json.loads(line)
        except ValueError:
            return None, True
        if not isinstance(msg, dict) or "id" not in msg or not isinstance(msg.get("method"), str):
            return None, True
        method, params = msg["method"], msg.get("params") or {}
        if method == "initialize" and self.version is None and isinstance(params, dict):
            version = params.get("protocolVersion")
            recorded = self.by_version.get(version) if isinstance(version, str) else None
            if recorded is None:
                return None, True
            self.version, self.init_id = version, msg["id"]
            return _reply(msg["id"], recorded["initialize"]), True
        if self.version is None:
            return None, True
        recorded = self.by_version[self.version]
        if method in LISTS and method in recorded and not (isinstance(params, dict) and params.get("cursor")):
            return _reply(msg["id"], recorded[method]), False
        if method == "ping":
            return _reply(msg["id"], {}), False
        return None, True


def _reply(msg_id: Any, result: Any) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": msg_id, "result": result}, separators=(",", ":")).encode() + b"\n"


class _Prefixed(io.RawIOBase):
    """The SDK's stdin: the bytes read early first, then the real pipe."""

    def __init__(self, fd: int, prefix: bytes) -> None:
        self.fd, self.prefix = fd, prefix

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self.prefix:
            n = min(len(b), len(self.prefix))
            b[:n], self.prefix = self.prefix[:n], self.prefix[n:]
            return n
        data = os.read(self.fd, len(b))
        b[: len(data)] = data
        return len(data)


class _Wire(io.TextIOBase):
    """The SDK's stdout: whole lines to the pipe, except the SDK's reply to the replayed `initialize`."""

    def __init__(self, out: BinaryIO, drop_id: Any) -> None:
        self.out, self.drop_id, self.dropping = out, drop_id, drop_id is not None
        self.pending = ""
        self.lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        with self.lock:
            self.pending += s
            while "\n" in self.pending:
                line, self.pending = self.pending.split("\n", 1)
                if self.dropping and self._is_init_reply(line):
                    self.dropping = False
                    continue
                self.out.write(line.encode() + b"\n")
        return len(s)

    def _is_init_reply(self, line: str) -> bool:
        try:
            msg = json.loads(line)
        except ValueError:
            return False
        return isinstance(msg, dict) and msg.get("id") == self.drop_id and "method" not in msg

    def flush(self) -> None:
        self.out.flush()


def serve_stdio(build: Callable[[], Any], *, close: Callable[[], Awaitable[None]] | None = None,
                manifest: dict[str, Any] | None = None) -> None:
    """Serve the MCPServer that `build()` returns (run in a thread) over this process's stdio;
    `close()` runs in the serving event loop when the client leaves."""
    if os.name == "nt":  # select() takes no pipes there: the SDK serves everything, as before
        server = build()
        import anyio

        async def plain() -> None:
            try:
                await server.run_stdio_async()
            finally:
                if close is not None:
                    await close()

        anyio.run(plain)
        return
    manifest = load_manifest() if manifest is None else manifest
    sys.stdout.flush()
    wire = os.fdopen(os.dup(1), "wb", buffering=0)
    in_fd = os.dup(0)
    os.dup2(2, 1)  # fd 1 is stderr while serving: stray prints never reach the wire
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)  # children and handlers read EOF, not the client's messages
    os.close(null)

    built: dict[str, Any] = {}
    wake_r, wake_w = os.pipe()  # the build thread says it is done: no polling while it imports

    def work() -> None:
        try:
            built["server"] = build()
        except BaseException as e:  # SystemExit from a config error included: re-raised below
            built["error"] = e
        finally:
            os.write(wake_w, b"x")

    thread = threading.Thread(target=work, name="mcp-build", daemon=True)
    thread.start()
    early = _Early(manifest)
    kept: list[bytes] = []
    buf = b""
    held = 0
    while held < EARLY_BYTES_CAP:
        ready, _, _ = select.select([in_fd, wake_r], [], [])
        if wake_r in ready:
            break
        chunk = os.read(in_fd, 65536)
        if not chunk:  # the client left: the SDK will see EOF after what was kept
            break
        buf += chunk
        held += len(chunk)
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            reply, keep = early.handle(line)
            if reply is not None:
                wire.write(reply)
            if keep:
                kept.append(line + b"\n")
    thread.join()
    os.close(wake_r)
    os.close(wake_w)
    try:
        if "error" in built:
            raise built["error"]
        _run_sdk(built["server"], _Prefixed(in_fd, b"".join(kept) + buf), _Wire(wire, early.init_id), close)
    finally:
        wire.close()
        os.close(in_fd)


def _run_sdk(server: Any, raw_in: io.RawIOBase, out: _Wire, close: Callable[[], Awaitable[None]] | None) -> None:
    import anyio
    from mcp.server.stdio import stdio_server

    stdin = io.TextIOWrapper(io.BufferedReader(raw_in), encoding="utf-8", errors="replace")

    async def run() -> None:
        try:
            wire = anyio.wrap_file(cast(IO[str], out))  # a text file object, as the SDK's stdout is
            async with stdio_server(anyio.wrap_file(stdin), wire) as (read, write):
                low = server._lowlevel_server  # what MCPServer.run_stdio_async runs, on our streams
                await low.run(read, write, low.create_initialization_options())
        finally:
            if close is not None:
                await close()

    anyio.run(run)


# ---------------------------------------------------------------------------- recording the manifest


def record(argv: list[str], cwd: str, versions: list[str] | None = None) -> dict[str, Any]:
    """Ask a `tierwise mcp` started with `argv` in `cwd` (no early answers) for its handshake, per
    protocol revision. The tools do not depend on the config: the built-in starter config serves."""
    import subprocess
    from importlib import metadata

    from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

    out: dict[str, Any] = {"sdk": metadata.version("mcp"), "versions": {}}
    env = {k: v for k, v in os.environ.items() if k != "TIERWISE_CONFIG"}
    env["TIERWISE_MCP_NO_MANIFEST"] = "1"
    for v in versions or list(HANDSHAKE_PROTOCOL_VERSIONS):
        msgs = [{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                    "protocolVersion": v, "capabilities": {}, "clientInfo": {"name": "record", "version": "0"}}},
                {"jsonrpc": "2.0", "method": "notifications/initialized"},
                *({"jsonrpc": "2.0", "id": 2 + i, "method": m} for i, m in enumerate(LISTS))]
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        answers: dict[Any, Any] = {}
        try:
            assert proc.stdin is not None and proc.stdout is not None
            for m in msgs:  # the pipe stays open until both answers are in, as a client keeps it
                proc.stdin.write(json.dumps(m) + "\n")
            proc.stdin.flush()
            while len(answers) < 1 + len(LISTS):
                line = proc.stdout.readline()
                if not line:
                    break
                msg = json.loads(line)
                if "id" in msg:
                    answers[msg["id"]] = msg
        finally:
            proc.kill()
            _, err = proc.communicate(timeout=30)
        if 1 not in answers or 2 not in answers or "result" not in answers[2]:
            raise RuntimeError(f"no handshake from {argv}: {err[-2000:]}")
        entry = {"initialize": answers[1]["result"]}
        for i, m in enumerate(LISTS):  # a list the SDK refuses (an error) is left to the SDK
            if "result" in answers.get(2 + i, {}):
                entry[m] = answers[2 + i]["result"]
        out["versions"][answers[1]["result"]["protocolVersion"]] = entry
    return out


def server_argv(project: str) -> list[str]:
    return [sys.executable, "-m", "tierwise.cli", "mcp", "--project", project]


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        data = record(server_argv(d), d)
    if "--write" in sys.argv:
        MANIFEST.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {MANIFEST} (mcp {data['sdk']}, revisions {', '.join(data['versions'])})")
    else:
        print(json.dumps(data, indent=1, sort_keys=True))
