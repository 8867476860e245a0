"""The semantic tier through real HTTP: a reworded question may reuse an answer, but never across
scopes, never with tools (unless the route allows it), never with a different history, and not for
a question about something else. Uses the real local embedding model and the shipped verifier."""

from __future__ import annotations

import importlib.util

from tests.cache.helpers import cached_config, oai_call
from tests.doubles import Reply
from tests.gateway.conftest import oai
from tests.harness import unavailable

if importlib.util.find_spec("sentence_transformers") is None:
    unavailable("the embeddings extra is not installed (scripts/test.sh installs it)")

ASKED = "What is the capital of France?"
REWORDED = "What's the capital of France?"
OTHER = "What is the capital of Germany?"
TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def semantic_config(openai_url: str, anthropic_url: str, **rc) -> dict:
    # The 2% operating point: at the shipped 1% point the verifier scores REWORDED 0.870 against a
    # threshold of 0.875 (that point serves about 11% of the Quora pairs, bench/RESULTS.md); these tests
    # are about scopes, tools and contexts, and the "something else" misses hold at the looser point too.
    cfg = cached_config(openai_url, anthropic_url, route_cache={"semantic": True, **rc})
    cfg["cache"]["semantic"] = {"max_false_hit_rate": 0.02}
    return cfg


def test_reworded_question_is_a_semantic_hit(gateway, openai_up, anthropic_up):
    g = gateway(semantic_config(openai_up.url, anthropic_up.url))
    openai_up.default = Reply(text="Paris.")
    assert oai_call(oai(g), messages=user(ASKED))[1] == "miss"
    raw = oai(g).chat.completions.with_raw_response.create(model="loc", messages=user(REWORDED), temperature=0)
    assert raw.headers["x-tierwise-cache"] == "hit"
    assert raw.parse().choices[0].message.content == "Paris."
    assert len(openai_up.requests) == 1
    g.flush()
    rec = g.ledger.get(raw.headers["x-tierwise-request-id"])
    assert rec.steps[0]["detail"]["cache"] == "semantic"


def test_a_question_about_something_else_is_a_miss(gateway, openai_up, anthropic_up):
    g = gateway(semantic_config(openai_up.url, anthropic_up.url))
    oai_call(oai(g), messages=user(ASKED))
    assert oai_call(oai(g), messages=user(OTHER))[1] == "miss"
    assert oai_call(oai(g), messages=user("How do I learn Python?"))[1] == "miss"
    assert oai_call(oai(g), messages=user("How do I learn Java?"))[1] == "miss"


def test_never_across_scopes(gateway, openai_up, anthropic_up, monkeypatch):
    monkeypatch.setenv("TW_SEM_A", "sem-key-a")
    monkeypatch.setenv("TW_SEM_B", "sem-key-b")
    cfg = semantic_config(openai_up.url, anthropic_up.url)
    cfg["server"]["api_keys_env"] = [{"env": "TW_SEM_A", "tenant": "a"}, {"env": "TW_SEM_B", "tenant": "b"}]
    g = gateway(cfg)
    assert oai_call(oai(g, api_key="sem-key-a"), messages=user(ASKED))[1] == "miss"
    assert oai_call(oai(g, api_key="sem-key-b"), messages=user(REWORDED))[1] == "miss"
    assert oai_call(oai(g, api_key="sem-key-a"), messages=user(REWORDED))[1] == "hit"


def test_never_with_tools_unless_the_route_allows(gateway, openai_up, anthropic_up):
    g = gateway(semantic_config(openai_up.url, anthropic_up.url))
    assert oai_call(oai(g), messages=user(ASKED), tools=[TOOL])[1] == "miss"
    assert oai_call(oai(g), messages=user(REWORDED), tools=[TOOL])[1] == "miss"
    assert oai_call(oai(g), messages=user(ASKED), tools=[TOOL])[1] == "hit"  # the exact tier still works


def test_tool_call_answer_never_served_semantically(gateway, openai_up, anthropic_up):
    from tests.doubles import ToolCall

    g = gateway(semantic_config(openai_up.url, anthropic_up.url))
    openai_up.script(Reply(tool_calls=[ToolCall("lookup", {})]))
    oai_call(oai(g), messages=user(ASKED))  # no tools offered, but the answer calls one
    assert oai_call(oai(g), messages=user(REWORDED))[1] == "miss"


def test_route_that_allows_tools(gateway, openai_up, anthropic_up):
    g = gateway(semantic_config(openai_up.url, anthropic_up.url, semantic_tools=True))
    assert oai_call(oai(g), messages=user(ASKED), tools=[TOOL])[1] == "miss"
    assert oai_call(oai(g), messages=user(REWORDED), tools=[TOOL])[1] == "hit"


def test_different_history_or_settings_never_share(gateway, openai_up, anthropic_up):
    g = gateway(semantic_config(openai_up.url, anthropic_up.url))
    oai_call(oai(g), messages=user(ASKED))
    hist = [{"role": "user", "content": "Answer about history."}, {"role": "assistant", "content": "OK."}]
    assert oai_call(oai(g), messages=hist + user(REWORDED))[1] == "miss"
    assert oai_call(oai(g), messages=user(REWORDED), max_tokens=3)[1] == "miss"
    assert oai_call(oai(g), messages=[{"role": "system", "content": "Be brief."}, *user(REWORDED)])[1] == "miss"


def test_route_without_semantic_is_exact_only(gateway, openai_up, anthropic_up):
    g = gateway(cached_config(openai_up.url, anthropic_up.url))
    oai_call(oai(g), messages=user(ASKED))
    assert oai_call(oai(g), messages=user(REWORDED))[1] == "miss"


def test_train_verifier_command_writes_a_model_the_gateway_uses(tmp_path, gateway, openai_up, anthropic_up):
    """`tierwise cache train-verifier` on a user's own labelled pairs: it reports held-out figures and
    writes a model (plain arrays) that `cache.semantic.verifier_path` loads."""
    import json

    import numpy as np
    from click.testing import CliRunner

    from tierwise.cache.pair_model import PairModel
    from tierwise.commands.cache import command

    things = ["rice", "pasta", "bread", "soup", "fish", "tofu", "beans", "eggs", "steak", "salad", "pizza", "curry",
              "noodles", "cake", "cookies", "pancakes", "chicken", "lamb", "shrimp", "potatoes", "carrots", "kale",
              "quinoa", "oatmeal", "dumplings", "risotto", "tacos", "chili", "waffles", "muffins"]
    same = [("How do I cook {}?", "What is the best way to cook {}?"), ("How long does {} keep?", "How long can I store {}?"),
            ("Is {} healthy?", "Is eating {} good for you?")]
    others = ["rye", "udon", "bagels", "stew", "cod", "tempeh", "lentils", "omelettes", "ribs", "slaw", "calzone",
              "dal", "ramen", "pie", "brownies", "crepes", "turkey", "goat", "crab", "yams", "beets", "chard", "millet",
              "porridge", "gyoza", "paella", "burritos", "gumbo", "scones", "biscuits"]
    rows = []
    for x, y in zip(things, others, strict=True):  # one component per pair of foods: the split has many
        for a, b in same:
            rows.append({"text_a": a.format(x), "text_b": b.format(x), "label": 1})
            rows.append({"text_a": a.format(x), "text_b": b.format(y), "label": 0})
            rows.append({"text_a": a.format(x), "text_b": same[(same.index((a, b)) + 1) % 3][1].format(x), "label": 0})
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    out = tmp_path / "mine.npz"
    r = CliRunner().invoke(command, ["train-verifier", str(path), "--out", str(out), "--epochs", "2"])
    assert r.exit_code == 0, r.output
    assert "held-out test" in r.output and "target 1.0% false hits" in r.output
    with np.load(out, allow_pickle=False) as z:  # numbers only
        assert int(z["format"]) == 2 and z["thr"].shape == (4,)
    cfg = semantic_config(openai_up.url, anthropic_up.url)
    cfg["cache"]["semantic"]["verifier_path"] = str(out)
    g = gateway(cfg)
    oai_call(oai(g), messages=user(ASKED))
    oai_call(oai(g), messages=user(REWORDED))  # a lookup: the trained model answers it
    assert g.gateway.cache.semantic._verifier.thresholds == PairModel.load(out).thresholds

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text_a": "a", "label": 1}\n')
    r = CliRunner().invoke(command, ["train-verifier", str(bad), "--out", str(tmp_path / "x.npz")])
    assert r.exit_code != 0 and "bad.jsonl:1" in r.output
