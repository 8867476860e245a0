"""A client's own tags and names — the feature tag (`X-Tierwise-Feature`, `metadata.tierwise_feature`), the
`model` it asked for, an MCP evaluation's note — are its text like a prompt: with a `privacy:` section every
protected value in them is replaced before the ledger, `tierwise requests`/`trace`, the savings report, the
dashboard's API, spans and the ensembles' evaluation files keep them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
import yaml
from click.testing import CliRunner

from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401
from tests.harness import two_tier_config
from tests.observability.otlp_receiver import OTLPReceiver, attrs

PRIVACY = {"classes": {"secrets": {}, "customer": {"detectors": ["CUSTOMER_ID", "EMAIL_ADDRESS"]}},
           "user": {"patterns": {"CUSTOMER_ID": [r"CUST-\d{6}"]}}}
VALUES = ("CUST-123456", "bob@example.com")


def clean(text: str) -> bool:
    return not any(v in text for v in VALUES)


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    r = OTLPReceiver().start()
    yield r
    r.stop()


def test_a_feature_tag_and_a_model_name_are_cleaned_everywhere_they_are_kept(
        gateway, openai_up, anthropic_up, receiver, tmp_path):  # noqa: F811
    """Before: the ledger's `feature` and `requested_model` columns were not among the fields the privacy seal
    cleans, so a tag or a model name holding a customer id or an address was kept as sent (and shown by
    `tierwise requests --json`, `tierwise report --by feature`, the MCP savings report, the dashboard's trace of
    an older request) and the server span's `gen_ai.request.model` carried it to the collector."""
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={
        "main": {"policy": "fallback", "targets": ["local"], "retries": 0}},
        privacy=PRIVACY, observability={"dashboard": {"enabled": True},
                                        "tracing": {"endpoint": receiver.url, "interval": 0.05}})
    (tmp_path / "tierwise.yaml").write_text(yaml.safe_dump(cfg))
    g = gateway(cfg)
    openai_up.default = Reply(text="local answer")
    client = oai(g)
    r = client.chat.completions.with_raw_response.create(  # an unknown model name: the default route answers
        model="assistant (bob@example.com)", messages=[{"role": "user", "content": "hi"}],
        extra_headers={"x-tierwise-feature": "billing CUST-123456"})
    by_header = r.headers["x-tierwise-request-id"]
    r = client.chat.completions.with_raw_response.create(
        model="main", messages=[{"role": "user", "content": "hi"}],
        metadata={"tierwise_feature": "bob@example.com"})
    by_metadata = r.headers["x-tierwise-request-id"]
    g.flush()

    first, second = g.ledger.get(by_header), g.ledger.get(by_metadata)
    assert first.feature == "billing <CUSTOMER_ID>" and first.requested_model == "assistant (<EMAIL_ADDRESS>)"
    assert second.feature == "<EMAIL_ADDRESS>" and second.requested_model == "main"  # a route's name as it is

    from tierwise.cli import main
    from tierwise.ledger.report import savings_report

    report = json.dumps(savings_report(g.ledger, "feature"))
    assert "billing <CUSTOMER_ID>" in report and clean(report), report
    listed = CliRunner().invoke(main, ["requests", "-c", str(tmp_path / "tierwise.yaml"), "--json"])
    assert listed.exit_code == 0 and "assistant (<EMAIL_ADDRESS>)" in listed.output and clean(listed.output), \
        listed.output
    g.gateway.observer.live.by_id.clear()  # an older request: the dashboard reads it from the ledger
    trace = httpx.get(g.url + f"/dashboard/api/trace?id={by_header}").text
    assert "billing <CUSTOMER_ID>" in trace and clean(trace), trace

    assert receiver.wait_for(lambda: len([s for s in receiver.spans if s.kind == 2]) >= 2)
    asked = {attrs(s.attributes)["gen_ai.request.model"] for s in receiver.spans if s.kind == 2}
    assert asked == {"assistant (<EMAIL_ADDRESS>)", "main"}, asked


def test_an_mcp_evaluation_note_is_cleaned_in_the_ledger_and_the_evaluations_file(tmp_path: Path, monkeypatch):
    """The MCP `record_evaluation` tool's `note` is an agent's free text about a run: it went as sent into the
    ensemble's evaluations file (and back in the tool's answer), and had no length bound."""
    import asyncio

    from tests.ensembles.conftest import stub_config, write_ensemble, write_profile
    from tests.ensembles.upstream import StubUpstream
    from tests.harness import make_config
    from tests.mcp.test_mcp_tools import call, call_error
    from tierwise.ensembles.library import Library
    from tierwise.ensembles.service import EnsembleService
    from tierwise.gateway import Gateway
    from tierwise.ledger.store import Ledger
    from tierwise.mcp_server import build_mcp_server

    up = StubUpstream(answer=lambda model, prompt: "ok", latency=0.0).start()
    try:
        for folder in ("ensembles", "profiles"):
            (tmp_path / ".tierwise" / folder).mkdir(parents=True)
        write_profile(tmp_path, "worker", model="small", system_prompt="be brief", temperature=0)
        write_ensemble(tmp_path, {"name": "triage", "description": "classify",
                                  "agents": [{"name": "only", "profile": "worker", "prompt": "triage"}]})
        monkeypatch.setenv("TIERWISE_HOME", str(tmp_path / "global"))
        cfg = make_config({**stub_config(up.url), "privacy": PRIVACY}, tmp_path)
        gw = Gateway(cfg, ledger=Ledger.open(str(tmp_path / "ledger.db")))

        async def drive() -> tuple[dict, str]:
            from mcp import Client

            async with Client(build_mcp_server(EnsembleService(gw, Library(tmp_path)))) as c:
                run = await call(c, "invoke_ensemble", ensemble="triage", input="a ticket")
                ev = await call(c, "record_evaluation", ensemble="triage", verdict="bad", run_id=run["run_id"],
                                note="wrong for CUST-123456, ask bob@example.com")
                too_long = await call_error(c, "record_evaluation", ensemble="triage", verdict="bad",
                                            note="x" * 5000)
                return ev, too_long

        try:
            ev, too_long = asyncio.run(drive())
            gw.ledger.flush()
            row = gw.ledger.get("ens_" + ev["recorded"]["run_id"])
        finally:
            asyncio.run(gw.close())
    finally:
        up.stop()
    assert "2000" in too_long
    saved = (tmp_path / ".tierwise" / "evaluations" / "triage.jsonl").read_text()
    assert "wrong for <CUSTOMER_ID>, ask <EMAIL_ADDRESS>" in saved and clean(saved), saved
    assert clean(json.dumps(ev)), ev
    reason = row.extra["feedback"][0]["reason"]
    assert reason == "wrong for <CUSTOMER_ID>, ask <EMAIL_ADDRESS>", reason
