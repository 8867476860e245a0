"""`request_model.type_offset`: the text model is pooled over every task type, so a type with few rows among many
of other types is rated near the pooled mean whatever its own verdicts say. With `type_offset: k` each request's
estimate moves by its type's mean residual (verdict minus the model's estimate when the verdict came, before the row
trains the model), shrunk toward 0 as if k more verdicts had none. Scripted streams through `LearningLoop` (the code
the `reflective` route and the replay both run)."""

from __future__ import annotations

import pytest

from tierwise.learning.loop import LearningLoop, LoopSettings

# one prompt template for both types: the text model cannot tell them apart by their words
PROMPT = "Please answer question {j} about the {w} and give a short reason for the answer."
WORDS = ["cat", "dog", "tree", "house", "river", "bread", "cloud", "stone", "light", "chair", "music", "field"]


def make_loop(**model) -> LearningLoop:
    return LearningLoop("r", LoopSettings.model_validate({
        "schedule": {"first_uses": 1000, "shadow_stop_after": 10_000},  # every request judged
        "boundary": {"quality_target": 0.75, "credible": 0.6, "discount": 1.0},
        "request_model": {"kind": "text", "weight": 1.0, "min_rows": 20, "refit_every": 5, "alpha": 3.0, **model}}))


def feed(loop: LearningLoop, task_type: str, n: int, good_every: int) -> None:
    """n requests of one type; every request judged; one in `good_every` rejected."""
    for j in range(n):
        rid = f"{task_type}-{j}"
        plan = loop.plan(task_type, rid, text=PROMPT.format(j=j, w=WORDS[j % len(WORDS)]))
        assert plan.judge
        loop.verdict(task_type, 0.0 if j % good_every == good_every - 1 else 1.0, request_id=rid)


def trained(**model) -> LearningLoop:
    loop = make_loop(**model)
    feed(loop, "good", 120, 10)  # 0.90: moves local, and fills the model's rows
    feed(loop, "weak", 24, 2)  # 0.50 on 24 verdicts: stays on the frontier
    assert loop.boundary.tier("good") == "local" and loop.boundary.tier("weak") == "frontier"
    return loop


def probe(loop: LearningLoop, task_type: str) -> str:
    return loop.plan(task_type, f"probe-{task_type}", text=PROMPT.format(j=999, w="window")).tier


def test_a_frontier_type_with_few_rows_is_served_locally_at_the_pooled_level_without_the_offset() -> None:
    loop = trained()
    assert probe(loop, "weak") == "local"  # the pooled model rates its requests like the good type's
    assert probe(loop, "good") == "local"


@pytest.mark.parametrize("k", [5.0, 10.0])
def test_the_types_own_residuals_move_its_requests_back_to_the_frontier(k) -> None:
    loop = trained(type_offset=k)
    rm = loop.request_model
    r, n = rm.residuals["weak"]
    assert n > 0 and r / n < -0.2  # its verdicts fall well under the model's estimates
    assert rm.offset("weak") == pytest.approx(r / (n + k))
    assert probe(loop, "weak") == "frontier"
    assert probe(loop, "good") == "local"  # the type the model's level fits keeps its requests local
    assert abs(rm.offset("good")) < 0.05
    assert rm.offset("never-judged") == 0.0


def test_off_by_default_and_the_residuals_survive_a_restore(tmp_path) -> None:
    from pydantic import ValidationError

    from tierwise.learning.request_model_settings import RequestModelSettings

    assert RequestModelSettings().type_offset is None
    for bad in (0.0, -1.0):
        with pytest.raises(ValidationError):
            RequestModelSettings(type_offset=bad)
    loop = trained(type_offset=10.0)
    assert make_loop().request_model.residuals == {}
    path = tmp_path / "state.json"
    loop.save(path)
    again = make_loop(type_offset=10.0)
    assert again.restore(path)
    assert again.request_model.residuals == loop.request_model.residuals  # floats written by JSON round-trip
    assert probe(again, "weak") == "frontier"
    # malformed entries are skipped, not trusted
    data = loop.dump()
    data["request_model"]["residuals"] = {"weak": [-50.0, 3], "x": "y", "z": [float("nan"), 2], "ok": [-1.0, 4]}
    third = make_loop(type_offset=10.0)
    third.load(data)
    assert third.request_model.residuals == {"ok": (-1.0, 4)}
