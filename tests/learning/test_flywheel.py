"""Flywheel exports in the shapes fine-tuning readers expect, and failure-mode candidates."""

from __future__ import annotations

import json
import time

import yaml
from click.testing import CliRunner

from tierwise.learning.flywheel import candidates, export
from tierwise.ledger.records import LedgerRecord
from tierwise.ledger.store import Ledger


def add_eval(ledger, i, grade, reason, *, task_type="summarisation", shadow=True, frontier="the frontier answer"):
    extra = {"evaluation": {"of": f"req_{i}", "task_type": task_type, "grade": grade, "accepted": grade != "poor",
                            "shadow": shadow, "schedule": "sample", "reason": reason, "judge": "frontier"},
             "local_answer": f"local answer {i} (mail bob@example.com)"}
    if shadow:
        extra["frontier_answer"] = frontier
    ledger.submit(LedgerRecord(request_id=f"req_{i}-eval", ts=time.time() + i, route="main", kind="eval",
                               prompt=f"Summarise report {i}; key sk-ant-api03-{'x' * 40}", extra=extra,
                               cost_usd=0.01))


def make_ledger(tmp_path):
    led = Ledger(str(tmp_path / "ledger.db"))
    add_eval(led, 1, "good", "Covers the points.")
    add_eval(led, 2, "acceptable", "Mostly right.")
    for i in range(3, 7):
        add_eval(led, i, "poor", f"The summary misses the budget figures and totals (case {i}).")
    add_eval(led, 7, "poor", "Wrong language: answered in French.", shadow=False)
    add_eval(led, 8, "poor", "Hallucinated a date.", task_type="extraction")
    led.flush()
    return led


def export_cli(tmp_path, config: dict):
    """`tierwise flywheel export` of `config` (written to tmp_path/tierwise.yaml) into tmp_path/o: the CLI's result."""
    from tierwise.cli import main

    (tmp_path / "tierwise.yaml").write_text(yaml.safe_dump(config))
    return CliRunner().invoke(main, ["flywheel", "export", "-c", str(tmp_path / "tierwise.yaml"), "--out",
                                     str(tmp_path / "o")])


def test_export_shapes(tmp_path):
    led = make_ledger(tmp_path)
    m = export(led, tmp_path / "out")
    rows = {n: [json.loads(x) for x in (tmp_path / "out" / f"{n}.jsonl").read_text().splitlines()]
            for n in ("sft", "dpo", "judge")}
    assert m["counts"] == {"sft": 2, "dpo": 5, "judge": 8, "skipped_without_text": 0, "skipped_without_verdict": 0,
                           "dpo_skipped_same_answer": 0, "from_shadow_pairs": 0}
    for r in rows["sft"]:  # chat format: a list of {role, content} with string content, user then assistant
        assert [t["role"] for t in r["messages"]] == ["user", "assistant"]
        assert all(isinstance(t["content"], str) and t["content"] for t in r["messages"])
    for r in rows["dpo"]:  # TRL's DPO field names
        assert {"prompt", "chosen", "rejected"} <= set(r) and all(isinstance(r[k], str) for k in ("prompt", "chosen",
                                                                                                 "rejected"))
        assert r["chosen"] == "the frontier answer" and r["rejected"].startswith("local answer")
    assert {r["verdict"] for r in rows["judge"]} == {"good", "acceptable", "poor"}
    text = (tmp_path / "out" / "sft.jsonl").read_text() + (tmp_path / "out" / "dpo.jsonl").read_text()
    assert "sk-ant-api03-" + "x" * 40 not in text  # secrets never reach the export
    assert "bob@example.com" not in text and "<EMAIL_ADDRESS>" in text  # personal data redacted (privacy.detect)
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["redaction"]


def test_candidates_cluster_reasons(tmp_path):
    led = make_ledger(tmp_path)
    found = candidates(led)
    assert len(found) == 1
    c = found[0]
    assert c["task_type"] == "summarisation" and c["poor_verdicts"] == 4  # the French one is another failure mode
    assert "budget" in c["failure_mode"] and len(c["examples"]) == 4
    assert candidates(led, min_poor=5) == []


def test_cli(tmp_path):
    from tierwise.cli import main

    make_ledger(tmp_path).close()
    res = export_cli(tmp_path, {"ledger": {"path": "ledger.db"}})
    assert res.exit_code == 0, res.output
    assert "2 SFT examples, 5 preference pairs, 8 judge triples" in res.output
    res = CliRunner().invoke(main, ["flywheel", "candidates", "-c", str(tmp_path / "tierwise.yaml")])
    assert res.exit_code == 0 and "summarisation: 4 poor verdicts" in res.output


def test_cli_unknown_route_is_an_error_not_an_empty_export(tmp_path):
    from tierwise.cli import main

    make_ledger(tmp_path).close()
    cfg = tmp_path / "tierwise.yaml"
    cfg.write_text(yaml.safe_dump({"ledger": {"path": "ledger.db"}}))
    for args in (["export", "--out", str(tmp_path / "o")], ["candidates"]):
        res = CliRunner().invoke(main, ["flywheel", *args, "-c", str(cfg), "--route", "chta"])
        assert res.exit_code == 1 and "no evaluations of route 'chta'" in res.output, res.output
    assert not (tmp_path / "o").exists()
    # a route no longer in the config but with evaluations in the ledger still exports
    res = CliRunner().invoke(main, ["flywheel", "candidates", "-c", str(cfg), "--route", "main"])
    assert res.exit_code == 0 and "summarisation: 4 poor verdicts" in res.output, res.output


def test_export_redacts_what_the_configs_privacy_section_protects(tmp_path):
    """The operator's own protected values (`privacy.user` patterns and dictionaries, in a data class) are
    replaced in the export as the gateway's privacy boundary replaces them; the export used the detector's
    defaults and wrote them out verbatim."""

    led = Ledger(str(tmp_path / "ledger.db"))
    extra = {"evaluation": {"of": "req_1", "task_type": "support", "grade": "good", "accepted": True,
                            "shadow": False, "schedule": "sample", "reason": "fine", "judge": "frontier"},
             "local_answer": "Account CUST-123456 is on Project Nightjar; mail bob@example.com"}
    led.submit(LedgerRecord(request_id="req_1-eval", ts=time.time(), route="main", kind="eval",
                            prompt="Why is CUST-654321 (Nightjar) blocked?", extra=extra))
    led.close()
    res = export_cli(tmp_path, {
        "ledger": {"path": "ledger.db"},
        "privacy": {"classes": {"secrets": {}, "customer": {"detectors": ["CUSTOMER_ID", "PROJECT"]}},
                    "user": {"patterns": {"CUSTOMER_ID": [r"CUST-\d{6}"]}, "dictionaries": {"PROJECT": ["Nightjar"]}}},
    })
    assert res.exit_code == 0, res.output
    text = (tmp_path / "o" / "sft.jsonl").read_text() + (tmp_path / "o" / "judge.jsonl").read_text()
    for value in ("CUST-123456", "CUST-654321", "Nightjar", "bob@example.com"):
        assert value not in text, value  # the config's classes and the default personal data both
    assert "<CUSTOMER_ID>" in text and "<PROJECT>" in text and "<EMAIL_ADDRESS>" in text


def test_an_evaluation_without_a_verdict_is_not_blamed_on_store_text(tmp_path):
    # A judge whose reply named no grade: before, counted as "had no text (set `ledger.store_text: true`)", which
    # was set. It is counted apart, and the export says what to look at.

    led = make_ledger(tmp_path)
    add_eval(led, 9, None, "Here is a haiku about autumn.")  # the judge answered the task instead of grading it
    led.flush()
    led.close()
    res = export_cli(tmp_path, {"ledger": {"path": "ledger.db", "store_text": True}})
    assert res.exit_code == 0, res.output
    assert "store_text" not in res.output and "1 evaluations had no verdict" in res.output
    assert json.loads((tmp_path / "o" / "manifest.json").read_text())["counts"]["skipped_without_verdict"] == 1


def test_candidates_cluster_a_types_latest_poor_verdicts_only(tmp_path, monkeypatch):
    """Average linkage holds every pair's distance (and a dense TF-IDF row per reason): 8,000 poor verdicts of one
    type took 137 s and 951 MiB, a month of a busy type's did not finish. Now the latest `MAX_CLUSTERED` are
    clustered, and the output says of how many."""
    from tierwise.learning import flywheel

    led = Ledger(str(tmp_path / "ledger.db"))
    for i in range(30):
        add_eval(led, i, "poor", f"The summary misses the budget figures and totals (case {i}).")
    led.flush()
    monkeypatch.setattr(flywheel, "MAX_CLUSTERED", 10, raising=False)  # stands for the real 2,000
    found = candidates(led)
    assert [c["poor_verdicts"] for c in found] == [10]  # 30 before: every poor verdict of the type
    assert (found[0]["of_latest"], found[0]["poor_total"]) == (10, 30)
    assert {e["request_id"] for e in found[0]["examples"]} <= {f"req_{i}" for i in range(20, 30)}


def add_shadow_pair(ledger, i, weak, strong, *, route="learned", ok=True):
    """A learned route's judged shadow pair, as `policies/learned.py` records it (kind `shadow`)."""
    pair = {"of": f"req_s{i}", "prompt": f"Which laptop is best, question {i}? (mail bob@example.com)",
            "score": 0.1, "threshold": 0.3, "routed": "weak", "key": "",
            "weak": {"target": "local", "answer": f"weak answer {i}", "outcome": weak},
            "strong": {"target": "frontier", "answer": f"strong answer {i}", "ok": ok, "outcome": strong}}
    ledger.submit(LedgerRecord(request_id=f"req_s{i}-shadow", ts=time.time() + i, route=route, kind="shadow",
                               shadow=pair, cost_usd=0.01))


def test_a_learned_routes_judged_shadow_pairs_are_exported(tmp_path):
    # Before (session 24): a learned route with `shadow_rate` and `validation` (docs/routers.md) had 150 shadow pairs
    # whose two answers its judge had graded, and `flywheel export --route main` wrote 0 SFT examples, 0 preference
    # pairs and 0 judge triples: only a reflective route's evaluations were read.
    led = Ledger(str(tmp_path / "ledger.db"))
    add_shadow_pair(led, 1, 1.0, 1.0)  # both good: the local answer is an SFT example, no preference
    add_shadow_pair(led, 2, 0.5, 1.0)  # local acceptable, frontier good: SFT and a pair (frontier chosen)
    add_shadow_pair(led, 3, 0.0, 1.0)  # local poor: a pair
    add_shadow_pair(led, 4, 1.0, 0.0)  # the frontier poor: a pair the other way
    add_shadow_pair(led, 5, None, None)  # not judged: nothing
    add_shadow_pair(led, 6, 0.0, 0.0, ok=False)  # the frontier call failed: nothing
    led.flush()
    m = export(led, tmp_path / "out", route="learned")
    rows = {n: [json.loads(x) for x in (tmp_path / "out" / f"{n}.jsonl").read_text().splitlines()]
            for n in ("sft", "dpo", "judge")}
    assert (m["counts"]["sft"], m["counts"]["dpo"], m["counts"]["judge"]) == (3, 3, 4), m
    assert m["counts"]["from_shadow_pairs"] == 4
    assert [r["messages"][1]["content"] for r in rows["sft"]] == ["weak answer 1", "weak answer 2", "weak answer 4"]
    assert [(r["chosen"], r["rejected"]) for r in rows["dpo"]] == [
        ("strong answer 2", "weak answer 2"), ("strong answer 3", "weak answer 3"), ("weak answer 4", "strong answer 4")]
    assert [r["verdict"] for r in rows["judge"]] == ["good", "acceptable", "poor", "good"]
    assert all("bob@example.com" not in json.dumps(r) for rs in rows.values() for r in rs)
    assert export(led, tmp_path / "none", route="other")["counts"]["from_shadow_pairs"] == 0


def test_export_says_what_it_replaced_a_country_included(tmp_path):
    """newuser32: the default export replaces what the four default classes find, phi's LOCATION and customer's
    ORGANIZATION among them, so "What is the capital of France?" became "... of <LOCATION>?" in training data
    with nothing saying so (the note read "personal data replaced"). The manifest and the command now count
    each entity replaced and name the classes."""

    led = Ledger(str(tmp_path / "ledger.db"))
    extra = {"evaluation": {"of": "req_1", "task_type": "knowledge", "grade": "good", "accepted": True,
                            "shadow": False, "schedule": "sample", "reason": "right", "judge": "frontier"},
             "local_answer": "Paris."}
    led.submit(LedgerRecord(request_id="req_1-eval", ts=time.time(), route="main", kind="eval",
                            prompt="What is the capital of France?", extra=extra))
    led.close()
    res = export_cli(tmp_path, {"ledger": {"path": "ledger.db"}})
    assert res.exit_code == 0, res.output
    assert "<LOCATION>" in (tmp_path / "o" / "sft.jsonl").read_text()
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest["replaced"] == {"LOCATION": 2}, manifest  # France in the prompt, Paris in the answer
    assert "classes customer, phi, pii, secrets" in manifest["redaction"], manifest
    assert "replaced: 2 LOCATION" in res.output and "--no-redact" in res.output, res.output


def test_a_preference_pair_of_two_identical_answers_is_left_out(tmp_path):
    # Before (session 38, a first-time user): a learned route whose two tiers both answered "SELECT ..." had its judge
    # grade them apart, and dpo.jsonl held 111 pairs with chosen == rejected, all of them.
    led = Ledger(str(tmp_path / "ledger.db"))
    add_shadow_pair(led, 1, 0.0, 1.0)  # different answers: a pair
    pair = {"of": "req_s2", "prompt": "Is 7 prime?", "score": 0.1, "threshold": 0.3, "routed": "weak", "key": "",
            "weak": {"target": "local", "answer": "Yes.", "outcome": 0.0},
            "strong": {"target": "frontier", "answer": " Yes. ", "ok": True, "outcome": 1.0}}
    led.submit(LedgerRecord(request_id="req_s2-shadow", ts=time.time() + 2, route="learned", kind="shadow",
                            shadow=pair, cost_usd=0.01))
    add_eval(led, 3, "poor", "Wrong.", frontier="local answer 3 (mail bob@example.com)")  # a reflective route's
    led.flush()
    m = export(led, tmp_path / "out")
    dpo = [json.loads(x) for x in (tmp_path / "out" / "dpo.jsonl").read_text().splitlines()]
    assert [(r["chosen"], r["rejected"]) for r in dpo] == [("strong answer 1", "weak answer 1")]
    assert m["counts"]["dpo"] == 1 and m["counts"]["dpo_skipped_same_answer"] == 2
    assert m["counts"]["judge"] == 3  # the judge triples are kept: the verdicts are still the judge's
    out = export_cli(tmp_path, {"ledger": {"path": str(tmp_path / "ledger.db")}, "providers": {}, "models": {},
                                "routes": {}})
    assert out.exit_code == 0, out.output
    assert "2 preference pairs left out: both answers were the same text" in out.output
