"""Triage: task types from lexical cues (and prototypes when an embedder is given), complexity, rules on them."""

from __future__ import annotations

import numpy as np
import pytest

from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401
from tests.harness import two_tier_config
from tierwise.canonical import Message, Request, TextBlock, Tool
from tierwise.learning.triage import Triager, triage_of


def req(text: str, **kw) -> Request:
    return Request(model="m", messages=[Message("user", [TextBlock(text)])], **kw)


@pytest.mark.parametrize("text, expected", [
    ("Summarize the following article in three sentences: ...", "summarisation"),
    ("Extract all the email addresses from this text: a@b.c, d@e.f", "extraction"),
    ("Classify this ticket as bug, feature or question: the app crashes", "classification"),
    ("Write a Python function that reverses a linked list", "short_code"),
    ("Janet has 3 apples and buys 5 more at $2 each. How much did she spend? Think step by step.",
     "multi_step_reasoning"),
    ("Which enzyme digests starch?\nA. amylase\nB. lipase\nC. pepsin\nD. trypsin\nAnswer:", "knowledge_question"),
    ("Write a poem about autumn leaves", "creative_writing"),
    ("hello there!", "chat"),
])
def test_lexical_types(text: str, expected: str) -> None:
    assert Triager().classify(req(text)).task_type == expected


def test_tools_make_an_agent_turn() -> None:
    r = req("Summarize the repository", tools=[Tool(name="read_file", description="", input_schema={})])
    assert Triager().classify(r).task_type == "agent_turn"


def test_complexity_grows_with_steps_and_constraints() -> None:
    simple = Triager().classify(req("What is the capital of France?")).complexity
    hard = Triager().classify(req("1. Read the CSV.\n2. Then compute the mean.\n3. Finally plot it. You must use "
                                  "exactly 3 colours, at most 200 words, and the output must be JSON.")).complexity
    assert hard.steps > simple.steps and hard.constraints > simple.constraints and hard.score > simple.score


def test_user_types_with_prototypes() -> None:
    vocab = ["invoice", "refund", "poem", "weather"]

    def embed(texts):
        rows = np.array([[t.lower().count(w) + 0.01 for w in vocab] for t in texts], dtype=np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    t = Triager({"billing": ["invoice refund please", "refund my invoice"]}, embed=embed, lexical_weight=0.0)
    assert "billing" in t.types
    assert t.classify(req("I need a refund for invoice 42")).task_type == "billing"
    with pytest.raises(ValueError, match="task type"):
        Triager({"Bad Name!": ["x"]})


def test_a_stated_type_wins_and_is_cached_on_the_context() -> None:
    class Ctx:
        notes: dict = {}
        services = None

    ctx = Ctx()
    r = req("Write a poem", headers={"x-tierwise-task-type": "extraction"})
    assert triage_of(r, ctx).task_type == "extraction"
    assert ctx.notes["task_type"] == "extraction" and "complexity" in ctx.notes


def test_rules_match_on_task_type_and_complexity(gateway, openai_up, anthropic_up):  # noqa: F811
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url, routes={"main": {
        "policy": "rules", "default": "frontier", "rules": [
            {"name": "cheap summaries", "match": {"task_type": "summarisation", "max_complexity": 0.5},
             "target": "local"}]}}))
    openai_up.default = Reply(text="local")
    anthropic_up.default = Reply(text="frontier")
    c = oai(g)
    r1 = c.chat.completions.create(model="main", messages=[{"role": "user", "content": "Summarize this: the cat sat."}])
    r2 = c.chat.completions.create(model="main", messages=[{"role": "user", "content": "Write a poem about rain"}])
    assert r1.choices[0].message.content == "local" and r2.choices[0].message.content == "frontier"
    r3 = c.chat.completions.with_raw_response.create(model="main", messages=[{"role": "user", "content": (
        "Summarize this. 1. first then 2. next then 3. finally; you must use exactly 3 bullets, at most 50 words, "
        "only JSON, do not add anything, without quotes. Step one, then step two, after that step three.")}])
    assert r3.parse().choices[0].message.content == "frontier"
    g.flush()
    rec = g.ledger.get(r3.headers["x-tierwise-request-id"])
    assert rec.extra["task_type"] == "summarisation" and rec.extra["complexity"] > 0.5
