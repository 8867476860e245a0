"""`tierwise mcp --transport http` attacked over real HTTP: a stranger without the token, a web
page rebinding DNS, and a connected (perhaps prompt-injected) MCP client reaching for the host.

The server is the real CLI in a subprocess; clients are the `mcp` package's own client (with
and without the bearer header) and raw aiohttp for requests no well-behaved client sends.
"""

from __future__ import annotations

import json
import os
import select
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.ensembles.conftest import write_ensemble
from tests.harness import free_port
from tests.mcp.http_server import (
    SECRET_KEYS,
    TOKEN,
    McpHttp,
    client,
    raw_post,
    start,
    tool_text,
)

# ---------------------------------------------------------------------------- who may connect


def test_a_client_without_the_token_cannot_flood_the_header_parser(server: McpHttp):
    """The token is checked after the headers are parsed: the MCP server has the gateway's
    header bounds (uvicorn alone kept every header line of a never-ending block)."""
    line = (b"x-pad: " + b"a" * 60 + b"\r\n") * 1000
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.settimeout(15)
        s.sendall(b"POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\n")
        sent = 0
        while sent < 16 * 1024 * 1024:
            if select.select([s], [], [], 0)[0]:
                break
            try:
                s.sendall(line)
            except OSError:
                break
            sent += len(line)
        try:
            answer = s.recv(4096)
        except OSError:
            answer = b""
    assert sent < 16 * 1024 * 1024, "the MCP server read 16 MB of one request's header block"
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431"), answer


async def test_no_token_or_a_wrong_one_gets_401_and_the_right_one_works(shared_server: tuple[McpHttp, Path]):
    server, _ = shared_server  # (read-only probes, as below)
    for headers in ({}, {"Authorization": "Bearer " + TOKEN[:-1] + "y"}, {"Authorization": "Bearer " + TOKEN + "x"},
                    {"Authorization": "Bearer " + TOKEN[:-1]}, {"Authorization": "Basic " + TOKEN},
                    {"Authorization": "Bearer"}, {"Authorization": TOKEN}):
        r = await raw_post(server.url, headers)
        assert r.status == 401, headers
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    async with aiohttp.ClientSession() as s:  # every path and method, not only POST /mcp
        for method, path in (("GET", "/mcp"), ("DELETE", "/mcp"), ("GET", "/"), ("GET", "/mcp/../admin")):
            async with s.request(method, f"http://127.0.0.1:{server.port}{path}") as r:
                assert r.status == 401, (method, path)
    with pytest.raises(Exception):  # noqa: B017 - the SDK's client cannot even initialise
        async with client(server.url, token=None) as c:
            await c.list_tools()
    with pytest.raises(Exception):  # noqa: B017
        async with client(server.url, token="wrong-" + TOKEN) as c:
            await c.list_tools()
    async with client(server.url) as c:
        assert "invoke_ensemble" in {t.name for t in (await c.list_tools()).tools}
        err, text = await tool_text(c, "list_ensembles")
        assert not err and "triage" in text


async def test_foreign_host_and_origin_are_refused_even_with_the_token(shared_server: tuple[McpHttp, Path]):
    server, _ = shared_server
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert (await raw_post(server.url, {**auth, "Host": f"evil.example:{server.port}"})).status == 421
    assert (await raw_post(server.url, {**auth, "Host": f"127.0.0.1.evil.example:{server.port}"})).status == 421
    assert (await raw_post(server.url, {**auth, "Origin": "http://evil.example"})).status == 403
    assert (await raw_post(server.url, {**auth, "Origin": "null"})).status == 403
    # A rebinding page never has the token: refused before anything else.
    assert (await raw_post(server.url, {"Host": f"evil.example:{server.port}"})).status == 401
    ok = await raw_post(server.url, {**auth, "Origin": f"http://127.0.0.1:{server.port}"})
    assert ok.status == 200


def test_a_non_loopback_bind_needs_an_explicit_flag(project: Path):
    exe = Path(sys.executable).parent / "tierwise"
    env = {**os.environ, "TIERWISE_HOME": str(project.parent / "home"), "TIERWISE_MCP_TOKEN": TOKEN}
    r = subprocess.run([str(exe), "mcp", "--transport", "http", "--host", "0.0.0.0", "--port", str(free_port()),
                        "-c", str(project / "tierwise.yaml"), "--project", str(project)],
                       env=env, capture_output=True, timeout=60)
    assert r.returncode == 2 and b"--allow-remote" in r.stderr


async def test_a_remote_bind_still_needs_the_token(project: Path):
    s = start(project, "--allow-remote", "--allowed-host", "127.0.0.1", host="0.0.0.0")
    try:
        assert (await raw_post(s.url, {})).status == 401
        async with client(s.url) as c:
            assert not (await tool_text(c, "list_ensembles"))[0]
    finally:
        s.proc.kill()
        s.proc.wait()


async def test_a_short_token_from_the_environment_is_refused(project: Path):
    with pytest.raises(AssertionError, match="at least 32"):
        start(project, token="hunter2")


async def test_the_generated_token_is_kept_0600_and_not_printed_to_a_log(project: Path):
    first = start(project, token=None)
    token_file = first.home / "mcp-token"
    try:
        token = token_file.read_text().strip()
        assert len(token) >= 32 and stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert (await raw_post(first.url, {})).status == 401
        async with client(first.url, token=token) as c:
            assert not (await tool_text(c, "list_ensembles"))[0]
    finally:
        err = first.stderr()
    # stderr is a pipe here (a service manager's log): the line to paste reads the file, the token is not printed
    # (session 29: it was, into whatever kept the server's stderr)
    assert token not in err
    hint = f'claude mcp add --transport http tierwise {first.url} --header "Authorization: Bearer $(cat {token_file})"'
    assert hint in err
    shell = subprocess.run(["bash", "-c", f'echo "Authorization: Bearer $(cat {token_file})"'],
                           capture_output=True, text=True, check=True)
    assert shell.stdout.strip() == f"Authorization: Bearer {token}"  # the pasted line sends the token
    second = start(project, token=None)
    try:
        async with client(second.url, token=token) as c:  # the same token across restarts
            assert not (await tool_text(c, "list_ensembles"))[0]
    finally:
        err = second.stderr()
    assert token not in err and str(token_file) in err
    token_file.chmod(0o644)  # readable by others: no longer a secret, refuse to serve with it
    with pytest.raises(AssertionError, match="0600"):
        start(project, token=None)


# ---------------------------------------------------------------------------- what a client can reach


SHELL = "name: pwn\nagents:\n  - name: a\n    script: [\"/bin/sh\", \"-c\", \"touch {marker}\"]\n"


async def test_a_shell_ensemble_is_refused_at_create_and_at_invoke(server: McpHttp, project: Path):
    marker = project.parent / "PWNED"
    attempts = {
        "sh": SHELL.format(marker=marker),
        "python_c": f"name: pwn\nagents:\n  - name: a\n    script: [python3, -c, \"open('{marker}','w')\"]\n",
        "abs": "name: pwn\nagents:\n  - name: a\n    script: /bin/sh\n",
        "home": "name: pwn\nagents:\n  - name: a\n    script: ~/evil.py\n",
        "climb": "name: pwn\nagents:\n  - name: a\n    script: ../../evil.py\n",
        "yaml_as_script": "name: pwn\nagents:\n  - name: a\n    script: triage.yaml\n",
        "trusted_key": "name: pwn\ntrusted: true\nagents:\n  - name: a\n    script: [/bin/sh, -c, id]\n",
    }
    async with client(server.url) as c:
        for why, text in attempts.items():
            err, answer = await tool_text(c, "create_ensemble", name="pwn", yaml_text=text)
            assert err, (why, answer)
            assert not (project / ".tierwise" / "ensembles" / "pwn.yaml").exists(), why
        # Planted by other means (an older tierwise, a careless commit): still never runs untrusted.
        write_ensemble(project, SHELL.format(marker=marker), name="pwn")
        err, answer = await tool_text(c, "invoke_ensemble", ensemble="pwn", input="x")
        assert err and "trusted" in answer
        err, answer = await tool_text(c, "validate_ensemble", ensemble="pwn")
        assert '"valid": false' in answer
    assert not marker.exists()


@pytest.mark.parametrize("ref", ["/etc/passwd", "../x.yaml", "../secret.yaml", "{abs}", "../../x.yaml",
                                 "link", "link.yaml", "x.yaml", "*", ""])
async def test_validate_never_opens_nor_echoes_a_file_outside_the_folders(shared_server: tuple[McpHttp, Path],
                                                                         ref: str):
    """The server runs in the project folder: relative paths climb from there. One server for every `ref` (each case
    only reads; a case that wrote an evaluation fails there and in every later case)."""
    server, project = shared_server
    ref = ref.format(abs=project.parent / "secret.yaml")
    link = project / ".tierwise" / "ensembles" / "link.yaml"
    if not link.is_symlink():
        link.symlink_to(project.parent / "secret.yaml")
    (project / "x.yaml").write_text(yaml.safe_dump({k: "v" for k in SECRET_KEYS}))  # cwd-relative
    async with client(server.url) as c:
        for tool, args in (("validate_ensemble", {"ensemble": ref}), ("check_ensemble_runnable", {"ensemble": ref}),
                           ("invoke_ensemble", {"ensemble": ref, "input": "x"}),
                           ("record_evaluation", {"ensemble": ref, "verdict": "good"}),
                           ("promote_ensemble", {"ensemble": ref}), ("analyze_execution", {"run_id": ref})):
            _, answer = await tool_text(c, tool, **args)
            assert not any(k in answer for k in SECRET_KEYS), (tool, answer)
            assert "root:" not in answer
            assert '"valid": true' not in answer and '"runnable": true' not in answer
    assert not (project / ".tierwise" / "evaluations").exists()


async def test_listing_does_not_follow_a_symlink_out_of_the_folders(server: McpHttp, project: Path):
    (project / ".tierwise" / "ensembles" / "link.yaml").symlink_to(project.parent / "secret.yaml")
    async with client(server.url) as c:
        _, listed = await tool_text(c, "list_ensembles")
        assert not any(k in listed for k in SECRET_KEYS) and "outside" in listed
        _, routed = await tool_text(c, "route_task", task="extract the secret keys")
        assert not any(k in routed for k in SECRET_KEYS)


async def test_references_inside_an_ensemble_stay_in_the_folders(server: McpHttp, project: Path):
    (project / ".tierwise" / "profiles" / "leak.yaml").symlink_to(project.parent / "secret.yaml")
    drafts = [
        "name: d\nagents:\n  - name: a\n    ensemble: ../../../secret.yaml\n",
        f"name: d\nagents:\n  - name: a\n    ensemble: {project.parent / 'secret.yaml'}\n",
        "name: d\nagents:\n  - name: a\n    profile: ../../../secret\n",
        "name: d\nagents:\n  - name: a\n    profile: leak\n",
    ]
    async with client(server.url) as c:
        for text in drafts:
            _, answer = await tool_text(c, "validate_ensemble", yaml_text=text)
            assert '"valid": false' in answer and not any(k in answer for k in SECRET_KEYS), answer
            _, answer = await tool_text(c, "create_ensemble", name="d", yaml_text=text, overwrite=True)
            assert not any(k in answer for k in SECRET_KEYS), answer
            _, answer = await tool_text(c, "invoke_ensemble", ensemble="d", input="x")
            assert not any(k in answer for k in SECRET_KEYS), answer
        _, profiles = await tool_text(c, "list_profiles")
        assert not any(k in profiles for k in SECRET_KEYS)


ESCAPE_PROBE = """#!/usr/bin/env python3
import json, os, sys
json.load(sys.stdin)
seen = {}
for p in %r:
    try:
        with open(p) as f:
            seen[p] = f.read()[:200]
    except OSError as e:
        seen[p] = "refused: " + type(e).__name__
try:
    open(%r, "w").write("x")
    seen["wrote"] = True
except OSError:
    seen["wrote"] = False
print(json.dumps({"success": True, "data": seen, "error": None}))
"""


def plant_probe(project: Path) -> tuple[Path, Path]:
    """probe.py in the project's ensemble folder (placed by the operator), and the marker it tries to write."""
    marker = project.parent / "ESCAPED"
    secret = project.parent / "home" / "mcp-token"
    folder = project / ".tierwise" / "ensembles"
    (folder / "probe.py").write_text(ESCAPE_PROBE % ([str(secret), str(project / "tierwise.yaml")], str(marker)))
    write_ensemble(project, {"name": "probe", "agents": [{"name": "p", "script": "probe.py"}]})
    return folder, marker


async def test_scripts_escaping_the_folder_are_refused_and_untrusted_ones_run_sandboxed(project: Path):
    outside = project.parent / "outside"
    outside.mkdir()
    folder, marker = plant_probe(project)
    (outside / "evil.py").write_text(ESCAPE_PROBE % ([], str(marker)))
    (folder / "tools").mkdir()
    (folder / "tools" / "evil.py").symlink_to(outside / "evil.py")
    (folder / "tools_out").symlink_to(outside)
    token_file = project.parent / "home" / "mcp-token"  # what the probe reaches for
    token_file.parent.mkdir()
    token_file.write_text(TOKEN)
    token_file.chmod(0o600)
    s = start(project, token=None)
    token = TOKEN
    try:
        async with client(s.url, token=token) as c:
            for script in ("tools/evil.py", "tools_out/evil.py", "../../outside/evil.py", str(outside / "evil.py")):
                text = f"name: esc\nagents:\n  - name: a\n    script: {script}\n"
                err, answer = await tool_text(c, "create_ensemble", name="esc", yaml_text=text, overwrite=True)
                assert err and ("outside" in answer or "relative" in answer), (script, answer)
                write_ensemble(project, text, name="esc")  # planted: refused at invoke as well
                err, answer = await tool_text(c, "invoke_ensemble", ensemble="esc", input="x")
                assert err, (script, answer)
                assert not marker.exists(), script

            r = await c.call_tool("invoke_ensemble", {"ensemble": "probe", "input": "x"})
            assert not r.is_error and r.structured_content is not None, r.content
            seen = r.structured_content["output"]
            assert seen["wrote"] is False and not marker.exists()
            assert all(str(v).startswith("refused") for k, v in seen.items() if k != "wrote"), seen
            assert token not in json.dumps(r.structured_content)
    finally:
        s.proc.kill()
        s.proc.wait()


async def test_only_the_operator_makes_an_ensemble_trusted(project: Path):
    folder, marker = plant_probe(project)
    write_ensemble(project, {"name": "ops", "agents": [{"name": "p", "script": "probe.py"}]})
    home_ens = project.parent / "home" / "ensembles"
    home_ens.mkdir(parents=True)
    (home_ens / "shared.yaml").write_text(yaml.safe_dump({"name": "shared", "agents": [
        {"name": "p", "model": "small"}]}))
    cfg = yaml.safe_load((project / "tierwise.yaml").read_text())
    cfg["ensembles"] = {"trusted": [".tierwise/ensembles/ops.yaml", str(home_ens / "shared.yaml")]}
    (project / "tierwise.yaml").write_text(yaml.safe_dump(cfg))
    s = start(project, token=None)
    try:
        token = (s.home / "mcp-token").read_text().strip()
        async with client(s.url, token=token) as c:
            # The trusted file runs the same probe on the host: the probe does see what the sandbox hid.
            err, answer = await tool_text(c, "invoke_ensemble", ensemble="ops", input="x")
            assert not err and marker.exists() and token in answer
            marker.unlink()
            before = (folder / "ops.yaml").read_text()
            for args in ({"name": "ops", "overwrite": True}, {"name": "ops"}):  # replace it, keep its trust
                err, answer = await tool_text(c, "create_ensemble", **args,
                                              yaml_text="name: ops\nagents:\n  - name: p\n    script: [/bin/sh, -c, id]\n")
                assert err
            assert (folder / "ops.yaml").read_text() == before
            # Shadow the trusted global file by name, then promote over it: refused.
            err, _ = await tool_text(c, "create_ensemble", name="shared",
                                     yaml_text="name: shared\nagents:\n  - name: p\n    script: probe.py\n")
            assert not err
            for _ in range(3):
                assert not (await tool_text(c, "record_evaluation", ensemble="shared", verdict="good"))[0]
            err, answer = await tool_text(c, "promote_ensemble", ensemble="shared", to="global", confirm=True)
            assert err and "trusted" in answer
            assert "model: small" in (home_ens / "shared.yaml").read_text()
            r = await c.call_tool("invoke_ensemble", {"ensemble": "shared", "input": "x"})  # the shadow: untrusted
            assert not r.is_error and r.structured_content is not None
            assert r.structured_content["output"]["wrote"] is False and not marker.exists()
    finally:
        s.proc.kill()
        s.proc.wait()


def test_a_body_over_the_bound_is_refused_before_the_mcp_app_reads_it():
    # Before: the mcp package read any body whole into memory (a token holder could send gigabytes).
    import asyncio

    from tierwise.mcp_http import BearerAuth

    seen: list[bytes] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        msg = await receive()
        seen.append(msg["body"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def call(chunks: list[bytes], headers: list[tuple[bytes, bytes]]) -> tuple[int, int]:
        pending = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
        got: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return pending.pop(0) if pending else {"type": "http.disconnect"}

        async def send(m: dict[str, Any]) -> None:
            got.append(m)

        scope = {"type": "http", "headers": [(b"host", b"127.0.0.1"), (b"authorization", b"Bearer " + TOKEN.encode()),
                                             *headers]}
        await BearerAuth(app, TOKEN, max_body=1024)(scope, receive, send)
        return got[0]["status"], len(pending)

    assert asyncio.run(call([b"x" * 600, b"x" * 600, b"x" * 10_000], [])) == (413, 1)  # stopped reading at the bound
    assert asyncio.run(call([b"x"], [(b"content-length", b"999999")])) == (413, 1)  # refused on its length alone
    assert seen == []
    assert asyncio.run(call([b"a" * 500, b"b" * 500], []))[0] == 200 and seen == [b"a" * 500 + b"b" * 500]


def test_a_websocket_gets_no_way_past_the_token():
    """The bearer check guarded `http` only and let every other scope through (meant for lifespan): with a
    websocket library installed, uvicorn hands websocket scopes to the app, and one reached the mcp app
    without a token. (No websocket library is installed here, so the middleware is driven directly.)"""
    import asyncio

    from tierwise.mcp_http import BearerAuth

    reached: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["type"])

    async def call(scope_type: str) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "websocket.connect"}

        async def send(m: dict[str, Any]) -> None:
            got.append(m)

        await BearerAuth(app, TOKEN)({"type": scope_type, "headers": []}, receive, send)
        return got

    assert asyncio.run(call("websocket")) == [{"type": "websocket.close", "code": 1008}]
    assert reached == []
    asyncio.run(call("lifespan"))
    assert reached == ["lifespan"]


async def test_a_name_with_a_trailing_line_break_is_not_a_plain_name(shared_server: tuple[McpHttp, Path]):
    """`$` in a name pattern matches before a final newline: `x\\n` passed as a plain name and
    create_ensemble wrote a file called "x\\n.yaml" (names and run ids end where the text ends)."""
    server, project = shared_server  # (refused names write nothing)
    folder = project / ".tierwise" / "ensembles"
    async with client(server.url) as c:
        for name in ("nl\n", "nl\r\n"):
            err, answer = await tool_text(c, "create_ensemble", name=name,
                                          yaml_text=yaml.safe_dump({"name": name, "agents": [
                                              {"name": "a", "model": "small"}]}))
            assert err and "not a valid ensemble name" in answer, answer
        assert sorted(p.name for p in folder.iterdir() if "nl" in p.name) == []
        err, answer = await tool_text(c, "analyze_execution", run_id="run\n")
        assert err and "not a run id" in answer, answer


async def test_port_0_announces_the_port_it_got(project: Path):
    # Before: `--port 0` announced http://127.0.0.1:0/mcp and a `claude mcp add` line naming port 0.
    exe = Path(sys.executable).parent / "tierwise"
    env = {**os.environ, "TIERWISE_HOME": str(project.parent / "home")}
    env.pop("TIERWISE_MCP_TOKEN", None)
    proc = subprocess.Popen([str(exe), "mcp", "--transport", "http", "--port", "0", "-c", str(project / "tierwise.yaml"),
                             "--project", str(project)], env=env, cwd=str(project), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stderr.readline()  # type: ignore[union-attr]
        url = first.split(" at ")[1].split(" ")[0]
        assert not url.startswith("http://127.0.0.1:0/"), first
        assert f"claude mcp add --transport http tierwise {url} --header" in proc.stderr.readline() + \
            proc.stderr.readline()  # type: ignore[union-attr]
        assert (await raw_post(url, {})).status == 401  # this server, there, wanting the token
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
