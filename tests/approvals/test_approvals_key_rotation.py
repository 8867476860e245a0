"""Rotating the approvals' signing secret (`approvals.store.signing_key_env`) while requests wait: each gateway signs
with its `signing_key_env` and also accepts the tags of `signing_accept_key_envs` (never used to sign), so gateways
of one prefix halfway through a rotation (some signing with the old secret, some with the new) honour each other's
openings and decisions, and a tag under a secret no gateway accepts still rejects its request.

Before (session 34, costs6): one secret per prefix; a request opened on a gateway still signing with the old secret
and approved on one signing with the new was rejected (403), and its record was left out of the new one's list.
Real gateways, Redis db 11."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.harness import two_tier_config

from .conftest import ADMIN, admin_get, approvals_config, decide, wait_pending
from .test_approvals_forged import URL, _ask, prefix  # noqa: F401 (the same fixture)

OLD = "approvals-old-secret-0123456789"
NEW = "approvals-new-secret-9876543210"


def _config(openai_up, anthropic_up, prefix: str, signs: str, accepts: list[str],  # noqa: F811
            until: str = "2099-01-01T00:00:00Z") -> dict[str, Any]:
    store = {"backend": "redis", "redis_url": URL, "key_prefix": prefix, "recheck": 600,
             "signing_key_env": signs, "signing_accept_key_envs": accepts}
    if accepts:
        store["signing_accept_until"] = until
    return two_tier_config(openai_up.url, anthropic_up.url,
                           server={"default_route": "main", "admin_keys_env": ["TW_ADMIN"]},
                           approvals={"store": store, **approvals_config()})


@pytest.fixture
def keys(monkeypatch):
    monkeypatch.setenv("TW_ADMIN", ADMIN)
    monkeypatch.setenv("TW_KEY_OLD", OLD)
    monkeypatch.setenv("TW_KEY_NEW", NEW)


@pytest.mark.parametrize("opened_on", ["old", "new"])
def test_gateways_halfway_through_a_rotation_honour_each_others_decisions(gateway, openai_up, anthropic_up,
                                                                           prefix, keys, opened_on):  # noqa: F811
    old = gateway(_config(openai_up, anthropic_up, prefix, "TW_KEY_OLD", ["TW_KEY_NEW"]))
    new = gateway(_config(openai_up, anthropic_up, prefix, "TW_KEY_NEW", ["TW_KEY_OLD"]))
    waiter, approver = (old, new) if opened_on == "old" else (new, old)
    out: list[Any] = []
    t = _ask(waiter, out)
    [pending] = wait_pending(approver.url)  # (listed by the other: its opening tag verifies there)
    assert decide(approver.url, pending["id"], "approve").status_code == 200
    t.join(20)
    # Before (session 34): PermissionDeniedError "... carries no valid signature"
    assert len(out) == 1 and isinstance(out[0], str), f"an approval across the rotation was refused: {out}"


def test_a_tag_under_a_secret_no_longer_accepted_is_rejected(gateway, openai_up, anthropic_up, prefix,  # noqa: F811
                                                              keys):
    """The rotation's end: the old secret dropped, a decision still signed with it does not release the request."""
    done = gateway(_config(openai_up, anthropic_up, prefix, "TW_KEY_NEW", []))
    stale = gateway(_config(openai_up, anthropic_up, prefix, "TW_KEY_OLD", ["TW_KEY_NEW"]))
    out: list[Any] = []
    t = _ask(done, out)
    [pending] = wait_pending(stale.url)
    decide(stale.url, pending["id"], "approve")
    t.join(20)
    assert len(out) == 1 and isinstance(out[0], openai.PermissionDeniedError), out
    assert not [r for r in anthropic_up.requests if "deploy" in str(r.body)]


def test_an_accepted_secret_past_its_end_no_longer_verifies(gateway, openai_up, anthropic_up, prefix,  # noqa: F811
                                                            keys):
    """`signing_accept_until` (session 35): before it, an accepted secret verified until someone removed it from the
    config, so an old secret that leaked forged decisions for as long as the rotation's step 3 waited. Past its end,
    a decision tagged with it rejects the request, as a secret never accepted does."""
    ended = gateway(_config(openai_up, anthropic_up, prefix, "TW_KEY_NEW", ["TW_KEY_OLD"],
                            until="2026-01-01T00:00:00Z"))
    stale = gateway(_config(openai_up, anthropic_up, prefix, "TW_KEY_OLD", ["TW_KEY_NEW"]))
    out: list[Any] = []
    t = _ask(ended, out)
    [pending] = wait_pending(stale.url)  # (the stale one still accepts NEW: it lists the record)
    decide(stale.url, pending["id"], "approve")
    t.join(20)
    # Before: the request went on ("an approval across the rotation"): out == ['...answer...']
    assert len(out) == 1 and isinstance(out[0], openai.PermissionDeniedError), out
    assert not [r for r in anthropic_up.requests if "deploy" in str(r.body)]
    # and a record opened under the old secret is no longer listed where it has ended
    t2 = _ask(stale, out)
    [opened_old] = wait_pending(stale.url)
    assert admin_get(ended.url).json()["pending"] == []
    decide(stale.url, opened_old["id"], "reject")
    t2.join(20)


@pytest.mark.parametrize("drop", ["signing_accept_until", "signing_accept_key_envs"])
def test_accepting_needs_its_end_and_an_end_needs_accepting(tmp_path, openai_up, anthropic_up, keys,  # noqa: F811
                                                            drop):
    from tests.harness import make_config
    from tierwise.errors import ConfigError

    cfg = _config(openai_up, anthropic_up, "tw-test-x:", "TW_KEY_NEW", ["TW_KEY_OLD"])
    del cfg["approvals"]["store"][drop]
    with pytest.raises(ConfigError, match="signing_accept_until"):
        make_config(cfg, tmp_path)
    cfg = _config(openai_up, anthropic_up, "tw-test-x:", "TW_KEY_NEW", ["TW_KEY_OLD"], until="2026-12-14")
    with pytest.raises(ConfigError, match="signing_accept_until"):  # (a time without its zone)
        make_config(cfg, tmp_path)


def test_accepting_without_signing_is_a_config_error(tmp_path, openai_up, anthropic_up, keys):
    from tests.harness import make_config
    from tierwise.errors import ConfigError

    cfg = _config(openai_up, anthropic_up, "tw-test-x:", "TW_KEY_NEW", ["TW_KEY_OLD"])
    del cfg["approvals"]["store"]["signing_key_env"]
    with pytest.raises(ConfigError, match="signing_accept_key_envs needs signing_key_env"):
        make_config(cfg, tmp_path)


def test_a_record_opened_unsigned_is_rejected_with_a_reason_that_says_so(gateway, openai_up, anthropic_up,  # noqa: F811
                                                                         prefix, keys):  # noqa: F811
    """The migration path chosen: a record opened by a gateway without the secret (turning signing on, or a
    gateway of a version before session 33's review, whose records carry no opening tag) is never approved by a
    signing gateway, fail closed; its client is told why and to ask again. Before (session 34) the reason read as a
    record rewritten from outside the gateways."""
    plain = _config(openai_up, anthropic_up, prefix, "TW_KEY_NEW", [])
    del plain["approvals"]["store"]["signing_key_env"]
    del plain["approvals"]["store"]["signing_accept_key_envs"]
    unsigned = gateway(plain)
    signed = gateway(_config(openai_up, anthropic_up, prefix, "TW_KEY_NEW", []))
    out: list[Any] = []
    t = _ask(unsigned, out)
    [pending] = wait_pending(unsigned.url)
    answer = decide(signed.url, pending["id"], "approve")
    t.join(20)
    assert len(out) == 1 and isinstance(out[0], openai.PermissionDeniedError), out
    assert "opened without a signature" in str(out[0]) and "ask again" in str(out[0]), str(out[0])
    assert "rejected" in answer.text
