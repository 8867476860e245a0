"""Shift detection on the shared sentence embedding (issue 22, point 1): a router that embeds saves a profile of
its training prompts in its embedding space as well as in the LSA space; `tierwise eval` reports the far share in
both; a gateway `learned` route told to watch the embedding space measures it per request (in the trace) and
demotes itself on traffic unlike the training prompts. Real HTTP, the official openai SDK."""

from __future__ import annotations

import json
import time

import numpy as np
from click.testing import CliRunner

from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401
from tests.harness import two_tier_config, unavailable
from tests.routers.test_shift import dataset, other, support
from tierwise.cli import main
from tierwise.routers import load_router, make_router, save_router
from tierwise.routers.features import embedding_available
from tierwise.routers.shift import attach_profile, router_embedding

WINDOW, MIN_REQUESTS, DEMOTE_ABOVE = 20, 10, 0.25


def test_a_router_that_embeds_is_watched_in_its_embedding_space(gateway, openai_up, anthropic_up,  # noqa: F811
                                                                  tmp_path):
    if not embedding_available():
        unavailable("the embeddings extra is not installed (scripts/test.sh installs it)")
    train = support(300, 0)
    path = save_router(attach_profile(make_router("knn-embedding").fit(dataset(train)), train), tmp_path / "emb")
    r = load_router(path)
    assert set(r.profile.spaces) == {"lsa", "embedding"}
    p = r.profile.percentiles(support(100, 1) + other(30), router_embedding(r))["embedding"]
    near, far = p[:100], p[100:]
    assert np.mean(near > 0.95) < 0.15 and np.mean(far > 0.95) > 0.9

    mine = tmp_path / "mine.jsonl"
    mine.write_text("".join(json.dumps({"prompt": q, "strong": 1, "weak": i % 2}) + "\n" for i, q in enumerate(other(40))))
    res = CliRunner().invoke(main, ["eval", str(mine), "-r", str(path), "--ci", "0", "--json"])
    assert res.exit_code == 0, res.output
    check = json.loads(res.stdout)["saved_routers"][0]  # stdout only: a library may warn on stderr
    assert check["far_share_embedding"] > 0.9 and check["far_share_lsa"] > 0.9

    g = gateway(two_tier_config(openai_up.url, anthropic_up.url, routes={"main": {
        "policy": "learned", "router": str(path), "strong": "frontier", "weak": "local", "target_share": 0.3,
        "shift": {"space": "embedding", "window": WINDOW, "min_requests": MIN_REQUESTS,
                  "demote_above": DEMOTE_ABOVE, "promote_below": 0.1}}}))
    openai_up.default = Reply(text="local answer")
    anthropic_up.default = Reply(text="frontier answer")
    client = oai(g)

    def ask(prompt):
        resp = client.chat.completions.with_raw_response.create(
            model="main", messages=[{"role": "user", "content": prompt}])
        rid = resp.headers["x-tierwise-request-id"]
        for _ in range(300):
            g.flush()
            rec = g.ledger.get(rid)
            if rec is not None:
                return resp.parse().choices[0].message.content, next(s for s in rec.steps if s["kind"] == "decision")
            time.sleep(0.02)
        raise AssertionError(f"no ledger row for {rid}")

    first = [ask(q) for q in support(WINDOW, 2)]
    assert not any(step["detail"]["shift"]["demoted"] for _, step in first)
    assert all(0.0 <= step["detail"]["shift"]["percentile"]["embedding"] <= 1.0 for _, step in first)
    second = [ask(q) for q in other(WINDOW)]
    demoted = [step["detail"]["shift"]["demoted"] for _, step in second]
    at = demoted.index(True)
    assert at + 1 <= int(DEMOTE_ABOVE * WINDOW) + 1
    assert all(demoted[at:])
    for answer, step in second[at:]:
        assert answer == "frontier answer" and step["detail"]["tier"] == "strong"
        assert step["detail"]["shift"]["percentile"]["embedding"] > 0.9
        assert "off the router's training distribution" in step["detail"]["demotion_reason"]
