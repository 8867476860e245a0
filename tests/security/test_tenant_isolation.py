"""Isolation between the client keys of one gateway, attacked as a client holding one valid key would:
it names the other key's session, invents values to fill shared state, repeats the other key's question.
Real HTTP on loopback, the official SDKs, upstream doubles (docs/security.md, "Admin, observability and
distributed surfaces"; the attack round of session 21 in bench/RESULTS.md)."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.doubles import Reply
from tests.gateway.conftest import oai

USAGE = (40, 400)  # the frontier double's answers: $0.00012 + $0.006 each at $3/$15 per million
COST = USAGE[0] * 3 / 1e6 + USAGE[1] * 15 / 1e6


def ask(g: Any, key: str, session: str | None = None, workflow: str | None = None, tag: str | None = None) -> str:
    headers = {}
    if session:
        headers["x-tierwise-session"] = session
    if workflow:
        headers["x-tierwise-workflow"] = workflow
    if tag:
        headers["x-tierwise-tag"] = tag
    r = oai(g, api_key=key).chat.completions.create(model="main", max_tokens=500, extra_headers=headers,
                                                    messages=[{"role": "user", "content": "hello"}])
    return r.choices[0].message.content or ""


@pytest.fixture
def two_keys(two_tier, anthropic_up, monkeypatch) -> Any:
    def make(per: str, **budgets: Any) -> Any:
        monkeypatch.setenv("TEAM_A", "key-team-a")
        monkeypatch.setenv("TEAM_B", "key-team-b")
        anthropic_up.default = Reply(text="ok", usage=USAGE)
        # one request's cost per value: a second request of the same value is refused
        return two_tier(server={"default_route": "main", "api_keys_env": ["TEAM_A", "TEAM_B"]},
                        budgets={"limits": [{"name": "cap", "usd": COST * 0.5, "per": per}], **budgets})
    return make


@pytest.mark.parametrize("per", ["session", "workflow"])
def test_a_key_cannot_spend_another_keys_session_budget(two_keys, per):
    """Sessions and workflows are named by the client: key B naming A's session spent A's budget for it."""
    g = two_keys(per)
    assert ask(g, "key-team-b", **{per: "run-1"}) == "ok"  # B spends "run-1" first
    assert ask(g, "key-team-a", **{per: "run-1"}) == "ok"  # A's "run-1" is A's: untouched by B
    for key, name in (("key-team-b", "TEAM_B"), ("key-team-a", "TEAM_A")):  # each key's own "run-1" is spent
        with pytest.raises(openai.RateLimitError) as e:
            ask(g, key, **{per: "run-1"})
        assert f"for {per} {name}/run-1" in e.value.body["message"]


def test_a_key_inventing_sessions_does_not_push_another_keys_into_a_spent_overflow(two_keys):
    """Past `max_dimension_values` new values share one overflow bucket: with one cap for all keys, B invented
    values until the cap was full, spent the overflow bucket, and every new session of A was then refused."""
    g = two_keys("session", max_dimension_values=2)
    for s in ("x1", "x2", "x3"):  # two of B's own, then B's overflow bucket's first request
        assert ask(g, "key-team-b", session=s) == "ok"
    with pytest.raises(openai.RateLimitError) as e:  # inventing more buys B nothing
        ask(g, "key-team-b", session="x4")
    assert "for new session values" in e.value.body["message"]
    assert ask(g, "key-team-a", session="a-1") == "ok"  # A's new session has a bucket of its own
    assert ask(g, "key-team-a", session="a-2") == "ok"


def test_a_tag_budget_is_shared_by_every_key_that_sends_the_tag(two_keys):
    """A tag is a label of the product (a feature) that every key may send: its budget is one for all of them
    (docs/budgets.md); per-key caps are `per: key` budgets."""
    g = two_keys("tag")
    assert ask(g, "key-team-b", tag="summarise") == "ok"
    with pytest.raises(openai.RateLimitError) as e:
        ask(g, "key-team-a", tag="summarise")
    assert "for tag summarise" in e.value.body["message"]


def test_a_semantic_lookup_does_not_tell_one_tenant_what_another_just_asked(gateway, openai_up, anthropic_up,
                                                                            monkeypatch):
    """The semantic tier keeps the vectors of recent questions (a miss's question comes back to be stored).
    Kept by text alone, another tenant's lookup of the same text skipped the embedding (a local model's
    forward pass): its timing told tenant B whether tenant A had just asked exactly that."""
    import importlib.util

    from tests.cache.helpers import cached_config, oai_call
    from tests.harness import unavailable

    if importlib.util.find_spec("sentence_transformers") is None:
        unavailable("the embeddings extra is not installed (scripts/test.sh installs it)")
    monkeypatch.setenv("TW_SEM_A", "sem-key-a")
    monkeypatch.setenv("TW_SEM_B", "sem-key-b")
    cfg = cached_config(openai_up.url, anthropic_up.url, route_cache={"semantic": True})
    cfg["server"]["api_keys_env"] = [{"env": "TW_SEM_A", "tenant": "a"}, {"env": "TW_SEM_B", "tenant": "b"}]
    g = gateway(cfg)
    a, b = oai(g, api_key="sem-key-a"), oai(g, api_key="sem-key-b")
    # B caches a question of its own, so its later lookups in this context embed the question they ask
    assert oai_call(b, messages=[{"role": "user", "content": "What is the capital of Spain?"}])[1] == "miss"
    tier = g.gateway.cache.semantic
    embedded: list[str] = []
    real = tier._embedder.encode_one

    def counted(text: str) -> Any:
        embedded.append(text)
        return real(text)

    monkeypatch.setattr(tier._embedder, "encode_one", counted)
    secret = "Should we lay off the Lyon office before the merger with Globex?"
    assert oai_call(a, messages=[{"role": "user", "content": secret}])[1] == "miss"
    assert embedded == [secret]  # embedded once, to be stored in A's scope
    embedded.clear()
    assert oai_call(b, messages=[{"role": "user", "content": secret}])[1] == "miss"
    assert embedded == [secret]  # B's lookup paid for its own embedding: nothing learnt from A's


def test_another_keys_stored_response_cannot_be_read_deleted_or_listed(two_tier, openai_up, monkeypatch):
    """Held: GET/DELETE `/v1/responses/{id}` and its input items are not served (404 for every key), and a
    stored response continues only for the key that made it (docs/responses.md)."""
    monkeypatch.setenv("TEAM_A", "key-team-a")
    monkeypatch.setenv("TEAM_B", "key-team-b")
    openai_up.default = Reply(text="noted")
    g = two_tier(server={"default_route": "main", "api_keys_env": ["TEAM_A", "TEAM_B"]},
                 routes={"main": {"policy": "fallback", "targets": ["local"], "retries": 0}})
    a, b = oai(g, api_key="key-team-a"), oai(g, api_key="key-team-b")
    r = a.responses.create(model="main", input="our acquisition target is Globex")
    for call in (lambda: b.responses.retrieve(r.id), lambda: b.responses.delete(r.id),
                 lambda: b.responses.input_items.list(r.id)):
        with pytest.raises(openai.NotFoundError) as e:
            call()
        assert "Globex" not in str(e.value.body)
    with pytest.raises(openai.BadRequestError) as bad:
        b.responses.create(model="main", input="what was the target?", previous_response_id=r.id)
    assert bad.value.body["code"] == "previous_response_not_found"
    assert a.responses.create(model="main", input="go on", previous_response_id=r.id).status == "completed"
    assert not any("what was the target" in str(q.body) for q in openai_up.requests)


def test_a_key_kept_to_its_routes_gets_no_cached_answer_of_another_route(gateway, openai_up, anthropic_up,
                                                                        monkeypatch):
    """Held: two keys of one tenant share cache entries, but a key limited to some routes is refused another
    route before the cache is asked (404, as an unknown name), and the key of an entry holds its route."""
    from tests.cache.helpers import cached_config, oai_call

    monkeypatch.setenv("TEAM_A", "key-team-a")
    monkeypatch.setenv("TEAM_A_LOC", "key-team-a-loc")
    cfg = cached_config(openai_up.url, anthropic_up.url)
    cfg["server"]["api_keys_env"] = [{"env": "TEAM_A", "tenant": "acme"},
                                     {"env": "TEAM_A_LOC", "tenant": "acme", "routes": ["loc"]}]
    g = gateway(cfg)
    anthropic_up.default = Reply(text="the frontier's private answer")
    assert oai_call(oai(g, api_key="key-team-a"), model="main")[1] == "miss"
    assert oai_call(oai(g, api_key="key-team-a"), model="main")[1] == "hit"
    with pytest.raises(openai.NotFoundError):  # a route it may not use answers as an unknown name (review30d)
        oai_call(oai(g, api_key="key-team-a-loc"), model="main")
    got, state = oai_call(oai(g, api_key="key-team-a-loc"), model="loc")
    assert state == "miss" and "private" not in (got.choices[0].message.content or "")



def test_a_key_kept_to_its_routes_drops_only_their_cache_entries(gateway, openai_up, anthropic_up, monkeypatch):
    """Two keys of one tenant share entries; the one limited to `loc` emptied the other's `main` entries too
    (`POST /v1/tierwise/cache/invalidate` with `{}` or `{"route": "main"}`): acting on a route it may not use."""
    import httpx2 as httpx

    from tests.cache.helpers import cached_config, oai_call

    monkeypatch.setenv("TEAM_A", "key-team-a")
    monkeypatch.setenv("TEAM_A_LOC", "key-team-a-loc")
    cfg = cached_config(openai_up.url, anthropic_up.url)
    cfg["server"]["api_keys_env"] = [{"env": "TEAM_A", "tenant": "acme"},
                                     {"env": "TEAM_A_LOC", "tenant": "acme", "routes": ["loc"]}]
    g = gateway(cfg)
    a = oai(g, api_key="key-team-a")
    for model in ("main", "loc"):
        assert oai_call(a, model=model)[1] == "miss"
    url, limited = g.url + "/v1/tierwise/cache/invalidate", {"authorization": "Bearer key-team-a-loc"}
    r = httpx.post(url, headers=limited, json={"route": "main"}, timeout=10)
    assert r.status_code == 403 and r.json()["error"]["type"] == "invalid_request_error"
    r = httpx.post(url, headers=limited, json={}, timeout=10)
    assert r.status_code == 200 and r.json()["dropped"] == 1, r.text  # its own route's entry only
    assert oai_call(a, model="main")[1] == "hit"
    assert oai_call(a, model="loc")[1] == "miss"


def test_a_key_name_with_a_slash_does_not_share_another_keys_session(two_tier, anthropic_up, monkeypatch):
    """A session's bucket is `<key name>/<session>`: key `team` naming session `a/x` must not land in key
    `team/a`'s session `x` (a key name holding `/` is hashed in that part)."""
    monkeypatch.setenv("TEAM", "key-team")
    monkeypatch.setenv("TEAM_A", "key-team-a")
    anthropic_up.default = Reply(text="ok", usage=USAGE)
    g = two_tier(server={"default_route": "main", "api_keys_env": [{"env": "TEAM", "name": "team"},
                                                                   {"env": "TEAM_A", "name": "team/a"}]},
                 budgets={"limits": [{"name": "cap", "usd": COST * 0.5, "per": "session"}]})
    assert ask(g, "key-team", session="a/x") == "ok"
    assert ask(g, "key-team-a", session="x") == "ok"
