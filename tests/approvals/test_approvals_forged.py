"""A decision written into the approvals' Redis by whoever can write its keys (not a gateway holding the signing
secret) never releases a waiting request: with `approvals.store.signing_key_env`, a gateway's decision carries
HMAC-SHA256(secret, id, state, approver, reason, time) (`tierwise.signing`), and an `approved` record without a tag
that verifies is rejected (403), fail closed.

Before (session 33, costs5): `readable()` checked shapes, not authorship; setting a pending record's `state` to
`approved` (and publishing its id) let the request through to the upstream.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import redis

from tests.harness import own_keys, two_tier_config

from .conftest import ADMIN, approvals_config, decide, wait_pending

URL = "redis://127.0.0.1:6379/11"  # (databases 0-6 are other work's)
SECRET = "approvals-signing-secret-0123456789"


@pytest.fixture
def prefix() -> Iterator[str]:
    yield from own_keys(URL, "tw-test-approvals-forged:")


def _config(openai_up, anthropic_up, prefix: str) -> dict[str, Any]:
    store = {"backend": "redis", "redis_url": URL, "key_prefix": prefix, "recheck": 600,
             "signing_key_env": "TW_APPROVALS_SECRET"}
    return two_tier_config(openai_up.url, anthropic_up.url,
                           server={"default_route": "main", "admin_keys_env": ["TW_ADMIN"]},
                           approvals={"store": store, **approvals_config()})


@pytest.fixture
def signed(gateway, openai_up, anthropic_up, prefix, monkeypatch):
    """A gateway whose approvals store signs its records with TW_APPROVALS_SECRET."""
    monkeypatch.setenv("TW_ADMIN", ADMIN)
    monkeypatch.setenv("TW_APPROVALS_SECRET", SECRET)
    return gateway(_config(openai_up, anthropic_up, prefix))


def _ask(g, out: list[Any]) -> threading.Thread:
    from tests.gateway.conftest import oai

    def run() -> None:
        try:
            r = oai(g, timeout=20).chat.completions.create(model="main", messages=[{"role": "user",
                                                                                      "content": "deploy"}])
            out.append(r.choices[0].message.content)
        except Exception as e:  # noqa: BLE001
            out.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def _forge(prefix: str, id: str, copy_sig_from: str | None = None) -> None:
    """What a Redis writer does: the pending record set to approved, its id published on the decisions channel."""
    r = redis.Redis.from_url(URL)
    try:
        rec = orjson.loads(r.get(prefix + "rec:" + id))
        rec.update(state="approved", approver="admin", reason=None, decided=round(time.time(), 3))
        if copy_sig_from is not None:  # a real decision's tag, moved to another record
            rec["sig"] = orjson.loads(r.get(prefix + "rec:" + copy_sig_from)).get("sig")
        r.set(prefix + "rec:" + id, orjson.dumps(rec), ex=600)
        r.zrem(prefix + "pending", id)
        r.publish(prefix + "decided", id)
    finally:
        r.close()


def test_a_forged_approval_releases_no_request(signed, anthropic_up, prefix):
    import openai

    g = signed
    out: list[Any] = []
    t = _ask(g, out)
    [pending] = wait_pending(g.url)
    _forge(prefix, pending["id"])
    t.join(20)
    # Before (session 33, costs5): ['ok'], the request answered (a store without `signing_key_env` still trusts its
    # writers: docs/distributed.md)
    assert len(out) == 1 and isinstance(out[0], openai.PermissionDeniedError), \
        f"a forged approval let the request through: {out}"
    assert "signature" in str(out[0])
    assert not [r for r in anthropic_up.requests if "deploy" in str(r.body)]


def test_a_real_decisions_tag_does_not_approve_another_record(signed, prefix):
    import openai

    g = signed
    first: list[Any] = []
    t1 = _ask(g, first)
    [p1] = wait_pending(g.url)
    assert decide(g.url, p1["id"], "approve").status_code == 200
    t1.join(20)
    assert len(first) == 1 and isinstance(first[0], str), first  # (an honest approval, signed, goes through)
    second: list[Any] = []
    t2 = _ask(g, second)
    [p2] = wait_pending(g.url)
    _forge(prefix, p2["id"], copy_sig_from=p1["id"])
    t2.join(20)
    assert len(second) == 1 and isinstance(second[0], openai.PermissionDeniedError), second


def test_a_short_or_missing_signing_secret_is_a_config_error(tmp_path, monkeypatch, openai_up, anthropic_up):
    from tests.harness import make_config
    from tierwise.errors import ConfigError
    from tierwise.gateway import Gateway

    monkeypatch.setenv("TW_APPROVALS_SECRET", "short")
    cfg = make_config(_config(openai_up, anthropic_up, "tw-test-x:"), tmp_path)
    with pytest.raises(ConfigError, match="TW_APPROVALS_SECRET"):
        Gateway(cfg)


def _rewrite(prefix: str, id: str, **fields: Any) -> None:
    """A Redis writer changes what an approver reads of a pending record (it stays pending)."""
    r = redis.Redis.from_url(URL)
    try:
        rec = orjson.loads(r.get(prefix + "rec:" + id))
        rec.update(fields)
        r.set(prefix + "rec:" + id, orjson.dumps(rec), ex=600)
    finally:
        r.close()


@pytest.mark.parametrize("fields", [{"preview": "[user] what time is it?"}, {"subject": "read-only"},
                                    {"model": "cheap-local"}, {"facts": {"tools": []}}])
def test_an_approval_of_a_rewritten_record_releases_no_request(signed, anthropic_up, prefix, fields):
    """The decision's tag bound the decision, not what it was taken on: a writer rewrote the pending record's
    preview (what the approver reads) to a harmless question, the approver approved it with a signed decision,
    and the request the gateway held (`deploy`) went on (review33b)."""
    import openai

    g = signed
    out: list[Any] = []
    t = _ask(g, out)
    [pending] = wait_pending(g.url)
    _rewrite(prefix, pending["id"], **fields)
    r = decide(g.url, pending["id"], "approve")
    t.join(20)
    # Before (review33b): ['ok'], the request answered on an approval of another text
    assert len(out) == 1 and isinstance(out[0], openai.PermissionDeniedError), \
        f"an approval of a rewritten record let the request through: {out}"
    assert not [x for x in anthropic_up.requests if "deploy" in str(x.body)]
    assert r.status_code == 200 and r.json()["state"] == "rejected", r.text  # (the approver is told)
