"""The audit: crossings in the ledger without values, `tierwise audit` groupings and `--prove`."""

from __future__ import annotations

import sqlite3

import anthropic
import orjson
import pytest
import yaml
from click.testing import CliRunner

from tests.doubles import Reply
from tests.gateway.conftest import ant, oai
from tests.privacy.support import SECRET, SEEDS, echo_placeholders, privacy_config
from tierwise.commands.audit import command as audit_command
from tierwise.ledger.records import COLUMNS
from tierwise.ledger.store import Ledger

ROUTES = {"main": {"policy": "fallback", "targets": ["frontier", "local"], "retries": 0},
          "private": {"policy": "fallback", "targets": ["frontier", "local"], "retries": 0}}
MSG = f"Mail {SEEDS['EMAIL_ADDRESS']} the card {SEEDS['CREDIT_CARD']} details."


@pytest.fixture
def gw(gateway, openai_up, anthropic_up, tmp_path):
    anthropic_up.default = echo_placeholders
    cfg = privacy_config(openai_up.url, anthropic_up.url, ROUTES, route_policy={"private": {"pii": "local_only"}},
                         audit={"store_payload": True})
    cfg["server"]["default_route"] = "main"
    (tmp_path / "tierwise.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    g = gateway(cfg)
    g.cfg_path = str(tmp_path / "tierwise.yaml")
    return g


def run(g, *args):
    g.flush()
    return CliRunner().invoke(audit_command, ["--config", g.cfg_path, *args])


def test_audit_groups_and_never_shows_values(gw):
    r1 = oai(gw).chat.completions.with_raw_response.create(model="main", messages=[{"role": "user", "content": MSG}])
    oai(gw).chat.completions.create(model="private", messages=[{"role": "user", "content": MSG}])
    with pytest.raises(anthropic.BadRequestError):
        ant(gw).messages.create(model="main", max_tokens=20, messages=[{"role": "user", "content": f"key {SECRET}"}])
    by_class = orjson.loads(run(gw, "--by", "class", "--json").output)
    pii = next(r for r in by_class if r["class"] == "pii")
    assert pii["requests"] == 2 and pii["sent"] == 1 and pii["refused"] == 1 and pii["redacted"] == 2
    secrets = next(r for r in by_class if r["class"] == "secrets")
    assert secrets["blocked"] == 1 and secrets["sent"] == 0
    by_route = {r["route"]: r for r in orjson.loads(run(gw, "--by", "route", "--json").output)}
    assert by_route["private"]["refused"] == 1 and by_route["main"]["sent"] == 1
    dest = orjson.loads(run(gw, "--by", "destination", "--json").output)
    assert [d["destination"] for d in dest] == ["frontier"]
    table = run(gw, "--by", "day")
    assert table.exit_code == 0 and "crossings" in table.output
    # nothing of the values anywhere in the ledger file
    gw.flush()
    blob = open(gw.gateway.ledger.path, "rb").read()
    for v in (SEEDS["EMAIL_ADDRESS"], SEEDS["CREDIT_CARD"], SECRET):
        assert v.encode() not in blob
    rid = r1.headers["x-tierwise-request-id"]
    out = run(gw, "--request", rid, "--prove")
    assert out.exit_code == 0, out.output
    assert "PROVED" in out.output and "re-hashed and re-scanned: clean" in out.output


def test_prove_fails_on_a_tampered_or_leaky_record(gw):
    raw = oai(gw).chat.completions.with_raw_response.create(model="main", messages=[{"role": "user", "content": MSG}])
    rid = raw.headers["x-tierwise-request-id"]
    gw.flush()
    path = gw.gateway.ledger.path
    db = sqlite3.connect(path)
    (priv,) = db.execute("SELECT privacy FROM requests WHERE request_id = ?", (rid,)).fetchone()
    crossings = orjson.loads(priv)
    crossings[0]["payload"] = crossings[0]["payload"].replace("<EMAIL_ADDRESS_1>", SEEDS["EMAIL_ADDRESS"])
    db.execute("UPDATE requests SET privacy = ? WHERE request_id = ?", (orjson.dumps(crossings).decode(), rid))
    db.commit()
    out = run(gw, "--request", rid, "--prove")
    assert out.exit_code == 1 and "does not match the recorded SHA-256" in out.output and "NOT PROVED" in out.output
    import hashlib
    crossings[0]["sha256"] = hashlib.sha256(crossings[0]["payload"].encode()).hexdigest()
    db.execute("UPDATE requests SET privacy = ? WHERE request_id = ?", (orjson.dumps(crossings).decode(), rid))
    db.commit()
    db.close()
    out = run(gw, "--request", rid, "--prove")
    assert out.exit_code == 1 and "protected value(s): ['EMAIL_ADDRESS']" in out.output


def test_locally_served_request_has_nothing_to_prove(gw, openai_up):
    openai_up.default = Reply(text="fine")
    raw = oai(gw).chat.completions.with_raw_response.create(model="private",
                                                           messages=[{"role": "user", "content": "hello"}])
    out = run(gw, "--request", raw.headers["x-tierwise-request-id"], "--prove")
    assert out.exit_code == 0


def test_an_older_ledger_gains_the_privacy_column(tmp_path):
    path = str(tmp_path / "old.db")
    old = [c for c in COLUMNS if c != "privacy"]
    db = sqlite3.connect(path)
    db.execute(f"CREATE TABLE requests ({', '.join(old)})")
    db.execute("INSERT INTO requests (request_id, ts, route, steps) VALUES ('r1', 1.0, 'x', '[]')")
    db.commit()
    db.close()
    led = Ledger.open(path)
    rec = led.get("r1")
    assert rec is not None and rec.privacy is None
    led.close()


def test_audit_request_prints_its_crossings_as_readable_json(gw):
    # Before: each crossing's indented JSON went through the control-character escaper, so the terminal showed
    # `{\x0a  "to": "frontier",\x0a ...` on one line.
    r = oai(gw).chat.completions.with_raw_response.create(model="main", messages=[{"role": "user", "content": MSG}])
    out = run(gw, "--request", r.headers["x-tierwise-request-id"])
    assert out.exit_code == 0, out.output
    assert "\\x0a" not in out.output and '  "to": "frontier",\n' in out.output, out.output
    assert SEEDS["EMAIL_ADDRESS"] not in out.output
