"""`local_only` on a route that chooses its tier: docs/privacy.md says a refused remote call makes the route
"move on to its next target, so local targets still serve". A `reflective` route (the learning loop starts every
task type on the frontier) and a `learned` route (a router score says strong) have a local tier, yet a request
holding `local_only` data got a 403 from both: the team that configured privacy and the learning loop from the
docs saw every such request fail. Now the local tier answers it, the trace says why, and nothing reaches the
remote double."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.doubles import Reply
from tests.gateway.conftest import ant, oai
from tests.privacy.support import SEEDS, leaked, privacy_config
from tierwise.evaluation.loaders import load_jsonl
from tierwise.routers import make_router, save_router

FIXTURE = Path(__file__).resolve().parents[1] / "evaluation" / "fixtures" / "tiny_outcomes.jsonl"
MSG = f"Please mail {SEEDS['EMAIL_ADDRESS']} a haiku about autumn."


def _routes(kind: str, tmp_path: Path) -> dict:
    if kind == "reflective":
        return {"main": {"policy": "reflective", "local": "local", "frontier": "frontier"}}
    router = str(save_router(make_router("linear").fit(load_jsonl(FIXTURE)), tmp_path / "router"))
    return {"main": {"policy": "learned", "router": router, "strong": "frontier", "weak": "local",
                     "threshold": -1e9}}  # every request scores "strong"


@pytest.mark.parametrize("kind", ["reflective", "learned"])
@pytest.mark.parametrize("stream", [False, True])
def test_local_only_data_is_served_by_the_local_tier(gateway, openai_up, anthropic_up, tmp_path, kind, stream):
    openai_up.default = Reply(text="local haiku")
    anthropic_up.default = Reply(text="frontier haiku")
    g = gateway(privacy_config(openai_up.url, anthropic_up.url, _routes(kind, tmp_path),
                               policy={"pii": "local_only", "secrets": "block"}))
    if stream:
        with ant(g).messages.stream(model="main", max_tokens=100, messages=[{"role": "user", "content": MSG}]) as s:
            text = "".join(s.text_stream)
            rid = s.response.headers["x-tierwise-request-id"]
    else:
        raw = oai(g).chat.completions.with_raw_response.create(model="main",
                                                               messages=[{"role": "user", "content": MSG}])
        text, rid = raw.parse().choices[0].message.content, raw.headers["x-tierwise-request-id"]
    assert text == "local haiku"  # before: 403 permission_error "data of class 'pii' is local_only"
    assert not any(leaked(r.raw, [SEEDS["EMAIL_ADDRESS"]]) for r in anthropic_up.requests)
    g.flush()
    rec = g.ledger.get(rid)
    assert rec is not None and rec.status == 200 and rec.locality == "local"
    assert "local_only" in rec.reason and "-> " in rec.reason, rec.reason
    assert rec.privacy and rec.privacy[0]["action"] == "refused"


def test_a_clean_request_still_takes_the_frontier(gateway, openai_up, anthropic_up, tmp_path):
    openai_up.default = Reply(text="local haiku")
    anthropic_up.default = Reply(text="frontier haiku")
    g = gateway(privacy_config(openai_up.url, anthropic_up.url, _routes("reflective", tmp_path),
                               policy={"pii": "local_only", "secrets": "block"}))
    r = oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": "A haiku about autumn."}])
    assert r.choices[0].message.content == "frontier haiku"
