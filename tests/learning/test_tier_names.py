"""One name for the tiers wherever a user reads them: `local` and `frontier`, as `tierwise boundary`, the
reflective route's config (`local:`, `frontier:`) and the docs say.

newuser37: a rating of an answer from the frontier model came back as tier `remote` (the provider's `locality`)
from `POST /v1/tierwise/feedback`, `tierwise feedback` and `Tierwise.feedback`, and `tierwise eval ledger` listed
"feedback on remote answers", while `tierwise boundary` called the same tier `frontier`."""

from __future__ import annotations

import httpx2 as httpx
import yaml
from click.testing import CliRunner

from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401
from tests.harness import two_tier_config
from tierwise.learning.evidence import feedback  # what `tierwise eval ledger` lists ratings by


def _frontier_only(openai_up, anthropic_up, tmp_path) -> dict:  # noqa: F811
    """Route `main` on the frontier model alone (it answers "frontier answer"), the config also in tmp_path's
    tierwise.yaml."""
    anthropic_up.default = Reply(text="frontier answer")
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={
        "main": {"policy": "fallback", "targets": ["frontier"], "retries": 0}})
    (tmp_path / "tierwise.yaml").write_text(yaml.safe_dump(cfg))
    return cfg


def test_feedback_on_a_frontier_answer_names_the_tier_frontier(gateway, openai_up, anthropic_up, tmp_path):  # noqa: F811
    from tierwise.cli import main

    cfg = _frontier_only(openai_up, anthropic_up, tmp_path)
    g = gateway(cfg)
    ids = []
    for _ in range(2):
        r = oai(g).chat.completions.with_raw_response.create(model="main", messages=[{"role": "user", "content": "hi"}])
        ids.append(r.headers["x-tierwise-request-id"])
    g.flush()
    resp = httpx.post(g.url + "/v1/tierwise/feedback", json={"request_id": ids[0], "rating": "good"},
                      headers={"authorization": "Bearer test"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["tier"] == "frontier", resp.json()
    res = CliRunner().invoke(main, ["feedback", "-c", str(tmp_path / "tierwise.yaml"), ids[1], "poor"])
    assert res.exit_code == 0, res.output
    assert "tier frontier" in res.output and "remote" not in res.output, res.output
    g.flush()
    assert {f["tier"] for f in feedback(g.ledger, route="main")} == {"frontier"}
    assert g.ledger.get(ids[0]).locality == "remote"  # the ledger's own column keeps the provider's locality


def test_a_library_result_names_its_tier_as_feedback_does(openai_up, anthropic_up, tmp_path):  # noqa: F811
    import asyncio

    from tierwise.library import Tierwise

    _frontier_only(openai_up, anthropic_up, tmp_path)

    async def app():
        async with Tierwise(tmp_path / "tierwise.yaml") as tw:
            r = await tw.chat("main", [{"role": "user", "content": "hi"}])
            return r, await tw.feedback(r.request_id, "good")

    r, linked = asyncio.run(app())
    assert (r.locality, r.tier, linked["tier"]) == ("remote", "frontier", "frontier"), (r.locality, linked)
