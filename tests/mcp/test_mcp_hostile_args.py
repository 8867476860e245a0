"""An MCP client's hostile tool arguments over real HTTP (session 22, attack-mcp): the `mcp` SDK's own client
against the real `tierwise mcp --transport http` in a subprocess.

Ensemble YAML is an MCP client's to write (`create_ensemble`, `validate_ensemble`): a few hundred bytes of
YAML anchors expand to millions of values that validation, the JSON Schema check and each request's
encoding then walk in full; a deeply nested flow value overflowed PyYAML's recursion and came back as an
unexplained tool failure (after seconds of traceback rendering in the server).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.mcp.http_server import McpHttp, client, tool_text


def alias_bomb(levels: int) -> str:
    """An agent's output_schema whose anchors expand to 9**levels values: 626 bytes at 7 levels."""
    lines = ["l0: &l0 {type: string}"]
    lines += [f"l{i}: &l{i} {{anyOf: [{', '.join([f'*l{i - 1}'] * 9)}]}}" for i in range(1, levels + 1)]
    defs = "\n".join("        " + line for line in lines)
    return f"name: bomb\nagents:\n  - name: a\n    model: small\n    output_schema:\n      defs:\n{defs}\n      type: string\n"


async def test_an_alias_bomb_is_refused_before_it_is_walked(shared_server: tuple[McpHttp, Path]):
    server, project = shared_server  # (nothing is written when the bomb is refused)
    async with client(server.url) as c:
        # 531,441 values from 480 bytes (before: accepted as valid after seconds of CPU; 8 levels took minutes)
        is_error, text = await tool_text(c, "validate_ensemble", yaml_text=alias_bomb(6))
        assert not is_error and '"valid": false' in text, text
        assert "more than 100,000 values once its aliases" in text, text
        is_error, text = await tool_text(c, "create_ensemble", name="bomb", yaml_text=alias_bomb(9))
        assert is_error and "more than 100,000 values once its aliases" in text, text
        assert not (project / ".tierwise" / "ensembles" / "bomb.yaml").exists()


@pytest.mark.parametrize("nested", ["{a: " * 3000 + "1" + "}" * 3000, "[" * 3000 + "]" * 3000])
async def test_a_deeply_nested_value_is_a_clear_problem(shared_server: tuple[McpHttp, Path], nested: str):
    server, _ = shared_server  # (validation and a listing only)
    text_in = f"name: deep\nagents:\n  - name: a\n    model: small\n    output_schema: {nested}\n"
    async with client(server.url) as c:
        is_error, text = await tool_text(c, "validate_ensemble", yaml_text=text_in)
        # (before: "Error executing tool validate_ensemble", a RecursionError's traceback in the server's log)
        assert not is_error and "nested deeper than" in text, text
        is_error, text = await tool_text(c, "list_ensembles")  # and the server goes on
        assert not is_error and "triage" in text


async def test_token_holders_open_a_bounded_number_of_sessions(server: McpHttp):
    """Each session holds a server task and its streams (~40 KiB measured): the mcp package's default
    bound was 10,000 (~400 MB). Ours holds: never more than 100 open. (One client holds at most 25 of them since
    wire8, tests/mcp/test_mcp_http_sessions.py: five loopback addresses here. At the bound a new session closes an idle
    one of the client holding the most since review34c, before the fifth client got 503: refusals with every session
    busy are tests/mcp/test_mcp_sessions_fair_cap.py's.)"""
    import aiohttp

    from tests.mcp.http_server import INIT, MCP_HEADERS, TOKEN
    MAX_SESSIONS = 100  # tierwise.mcp_http.MAX_SESSIONS (a literal: this test ran against the code before it)
    PER_CLIENT = 25  # tierwise.mcp_http.MAX_SESSIONS_PER_CLIENT

    headers = {**MCP_HEADERS, "Authorization": f"Bearer {TOKEN}"}
    opened: list[str] = []
    for i in range(5):
        connector = aiohttp.TCPConnector(local_addr=(f"127.0.0.{i + 1}", 0))
        async with aiohttp.ClientSession(connector=connector) as s:
            for _ in range(PER_CLIENT):
                async with s.post(server.url, json=INIT, headers=headers) as r:
                    await r.read()
                    assert r.status == 200, r.status
                    opened.append(r.headers["mcp-session-id"])
    ended = []
    async with aiohttp.ClientSession() as s:
        for sid in opened:
            async with s.delete(server.url, headers={**headers, "mcp-session-id": sid}) as r:
                ended.append(r.status)
    # the 100 the bound allows are open at the end; the others were closed to make room
    assert sorted(ended) == [200] * MAX_SESSIONS + [404] * (5 * PER_CLIENT - MAX_SESSIONS), ended


async def test_an_evaluations_run_id_is_a_run_id_not_a_payload(server: McpHttp, project: Path):
    """Only `note` was bounded: a 100,000-character `run_id` went into the evaluations file and the ledger."""
    async with client(server.url) as c:
        is_error, text = await tool_text(c, "record_evaluation", ensemble="triage", verdict="good",
                                         run_id="r" * 100_000)
        assert is_error and "run_id must be a run id" in text, text[:300]
        is_error, text = await tool_text(c, "record_evaluation", ensemble="triage", verdict="good",
                                         run_id="../../etc/passwd")
        assert is_error and "run_id must be a run id" in text, text[:300]
        is_error, text = await tool_text(c, "record_evaluation", ensemble="triage", verdict="good",
                                         run_id="20261205-194120-c3bb81")
        assert not is_error, text
    saved = (project / ".tierwise" / "evaluations" / "triage.jsonl").read_bytes()
    assert len(saved) < 1000 and b"rrrr" not in saved


async def test_created_ensembles_are_bounded_in_size_and_number(server: McpHttp, project: Path):
    """A token holder wrote ensemble files of any size (up to the body bound) and any number of them."""
    from tests.ensembles.conftest import write_ensemble

    folder = project / ".tierwise" / "ensembles"
    for i in range(999):  # (the operator's own files count too; `triage` is the 1,000th)
        write_ensemble(project, {"name": f"e{i}", "agents": [{"name": "x", "model": "small"}]})

    def one(name: str, prompt: str = "hi") -> str:
        return f"name: {name}\nagents:\n  - name: x\n    model: small\n    prompt: \"{prompt}\"\n"

    async with client(server.url) as c:
        is_error, text = await tool_text(c, "create_ensemble", name="more", yaml_text=one("more"))
        # (before: created, and so the next ones)
        assert is_error and "1,000 ensembles already" in text, text[:300]
        is_error, text = await tool_text(c, "create_ensemble", name="e1", yaml_text=one("e1", "p" * 1_100_000),
                                         overwrite=True)
        assert is_error and "at most 1,048,576 bytes" in text, text[:300]
        is_error, text = await tool_text(c, "create_ensemble", name="e1", yaml_text=one("e1", "new"), overwrite=True)
        assert not is_error, text  # replacing one stays possible
    assert not (folder / "more.yaml").exists() and "new" in (folder / "e1.yaml").read_text()
