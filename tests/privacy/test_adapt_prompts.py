"""`learned.adapt` keeps its judged pairs' prompts in memory and in the route's state file (beside the ledger).
The ledger's copy of the same prompt (its shadow record) has every protected value replaced by `<ENTITY>` when a
`privacy:` section is configured; the state file kept the client's text as sent: a redacted request's e-mail
address, card number or API key lay in plain text on disk (review26a). Now a pair's prompt is cleaned as the
ledger cleans it before the route keeps it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.doubles import Reply
from tests.gateway.conftest import oai
from tests.harness import wait_for
from tests.privacy.support import SEEDS, leaked, privacy_config
from tierwise.evaluation.loaders import load_jsonl
from tierwise.routers import make_router, save_router

FIXTURE = Path(__file__).resolve().parents[1] / "evaluation" / "fixtures" / "tiny_outcomes.jsonl"
PROTECTED = [SEEDS["EMAIL_ADDRESS"], SEEDS["CREDIT_CARD"]]


def test_an_adapting_route_keeps_no_protected_value_of_a_prompt(gateway, openai_up, anthropic_up, tmp_path):
    router = str(save_router(make_router("linear").fit(load_jsonl(FIXTURE)), tmp_path / "router"))
    routes = {"main": {"policy": "learned", "router": router, "strong": "frontier", "weak": "local",
                       "target_share": 0.5, "shadow_rate": 1.0,
                       "validation": {"window": 50, "min_pairs": 10, "rounds": 50, "demote": False},
                       "adapt": {"min_pairs": 10, "window": 50}}}
    g = gateway(privacy_config(openai_up.url, anthropic_up.url, routes))
    openai_up.default = Reply(text="local answer")
    anthropic_up.default = Reply(text="Checked.\nVERDICT: good")
    route = g.gateway.resolve("main")
    for i in range(3):
        msg = f"Question {i}: mail {SEEDS['EMAIL_ADDRESS']} the receipt for card {SEEDS['CREDIT_CARD']}."
        oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": msg}])
        assert wait_for(lambda: not route._background, timeout=30)
    pairs = route.validator.pairs()
    assert len(pairs) == 3 and all(p.prompt.startswith("Question ") for p in pairs)  # the text the fit needs
    assert all("<EMAIL_ADDRESS>" in p.prompt for p in pairs)
    assert not [p.prompt for p in pairs if leaked(p.prompt.encode(), PROTECTED)]  # before: all three, verbatim
    route.memory.write(route.memory.dump())
    state = route.memory.path.read_bytes()
    assert json.loads(state)["pairs"] and not leaked(state, PROTECTED)
    g.flush()  # the ledger's shadow records: cleaned as before
    assert not any(leaked(json.dumps(r.shadow).encode(), PROTECTED) for r in g.ledger.query(kind="shadow"))


def test_a_state_file_of_raw_prompts_is_cleaned_and_rewritten_when_the_gateway_starts(gateway, openai_up, anthropic_up,
                                                                                       tmp_path):
    """A state file written before review26a holds the clients' prompts as sent. The routes are built before the
    privacy boundary, so a restarted gateway kept them as they were, in memory and in every file it wrote after
    (review26a: "delete it to start fresh"). Now the boundary cleans every restored prompt and the file is
    rewritten as the gateway starts, before any request."""
    from tests.harness import make_config
    from tierwise.routers.route_memory import FORMAT, memory_path, router_fingerprint

    router = save_router(make_router("linear").fit(load_jsonl(FIXTURE)), tmp_path / "router")
    routes = {"main": {"policy": "learned", "router": str(router), "strong": "frontier", "weak": "local",
                       "target_share": 0.5, "shadow_rate": 1.0,
                       "validation": {"window": 50, "min_pairs": 10, "rounds": 50, "demote": False},
                       "adapt": {"min_pairs": 10, "window": 50}}}
    cfg = privacy_config(openai_up.url, anthropic_up.url, routes)
    raw = [SEEDS["EMAIL_ADDRESS"], SEEDS["PHONE_NUMBER"]]
    prompts = [f"Question {i}: write to {raw[0]} or call {raw[1]} about order {i}." for i in range(12)]
    c = make_config(cfg, tmp_path)
    file = memory_path(c.ledger.resolved_path(c.base_dir), "main")
    file.write_text(json.dumps({  # as session 26's adapt-wire wrote it: no `prompts_cleaned`, no `adapt`
        "format": FORMAT, "router": router_fingerprint(router), "target_share": 0.5, "saved_at": 0,
        "refit": {"scores": [], "key_names": [], "keys": []},
        "pairs": [[len(p), (i % 4) / 4, 0.5, 1.0, float(i % 2), "", p] for i, p in enumerate(prompts)]}))
    assert leaked(file.read_bytes(), raw)
    g = gateway(cfg)
    route = g.gateway.resolve("main")
    state = file.read_bytes()  # rewritten as the gateway started
    assert not leaked(state, raw), leaked(state, raw)  # before: both values, in all 12 prompts
    assert json.loads(state)["prompts_cleaned"] is True
    kept = [p.prompt for p in route.validator.pairs()]
    assert len(kept) == 12 and all("<EMAIL_ADDRESS>" in p and "<PHONE_NUMBER>" in p for p in kept)
    assert route.adapter.live is not None and not [p for p in route.adapter.live[2] if leaked(p.prompt.encode(), raw)]
    openai_up.default = Reply(text="local answer")
    anthropic_up.default = Reply(text="Checked.\nVERDICT: good")
    oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": "What is 6 * 7?"}])
    assert wait_for(lambda: not route._background, timeout=30)
    g.stop()
    state = file.read_bytes()
    assert len(json.loads(state)["pairs"]) == 13 and not leaked(state, raw)
