"""`GET /v1/models` and `GET /v1/models/{id}` as the official SDKs use them: every name listed can be
put in `model` (routes, capability routes, models), a key sees only what it may use, Anthropic's
paging works, and nothing secret (provider URLs, keys) is ever listed."""

from __future__ import annotations

import anthropic
import httpx2 as httpx
import openai
import pytest

from tests.doubles import Reply
from tests.gateway.conftest import ant, oai
from tests.harness import REDIS_URL, two_tier_config

UP_KEY = "sk-upstream-" + "7" * 24
URL_PASSWORD = "url-pass-" + "8" * 12
MSG = [{"role": "user", "content": "hi"}]


@pytest.fixture
def g(gateway, openai_up, anthropic_up, monkeypatch):
    monkeypatch.setenv("TW_MODELS_UP", UP_KEY)
    monkeypatch.setenv("TW_MODELS_ALL", "key-all")
    monkeypatch.setenv("TW_MODELS_TEAM", "key-team")
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={
        "main": {"policy": "fallback", "targets": ["frontier", "local"], "retries": 0},
        "team": {"policy": "fallback", "targets": ["local"], "retries": 0},
        "summarise": {"policy": "fallback", "targets": [{"capability": "summarise-docs"}, "frontier"]},
    }, server={"api_keys_env": ["TW_MODELS_ALL", {"env": "TW_MODELS_TEAM", "routes": ["team"]}]},
        dispatch={"redis_url": REDIS_URL, "tenant": "tw-models-test"})
    cfg["providers"]["cloud"]["api_key_env"] = "TW_MODELS_UP"
    cfg["providers"]["cloud"]["base_url"] = anthropic_up.url.replace("http://", f"http://proxy:{URL_PASSWORD}@")
    return gateway(cfg)


def test_every_listed_name_is_usable_and_capability_routes_are_listed(g, openai_up, anthropic_up):
    ids = [m.id for m in oai(g, api_key="key-all").models.list()]
    assert ids == ["main", "team", "summarise", "capability:summarise-docs", "local", "frontier"]
    assert [m.id for m in ant(g, api_key="key-all").models.list()] == ids
    openai_up.script(*[Reply(text="ok")] * 4)
    anthropic_up.script(*[Reply(text="ok")] * 4)
    for name in ("main", "team", "local", "frontier"):
        r = oai(g, api_key="key-all").chat.completions.create(model=name, messages=MSG)
        assert r.choices[0].message.content == "ok", name


def test_nothing_secret_is_listed(g):
    for headers in ({}, {"anthropic-version": "2023-06-01"}):
        for path in ("/v1/models", "/v1/models/frontier", "/v1/models?limit=1000"):
            r = httpx.get(g.url + path, headers={"authorization": "Bearer key-all", **headers}, timeout=5)
            assert r.status_code == 200, r.text
            for secret in (UP_KEY, URL_PASSWORD, "key-all", "key-team", "127.0.0.1", "big-model", "qwen-local"):
                assert secret not in r.text, (path, secret)


def test_models_retrieve_with_both_sdks(g):
    assert oai(g, api_key="key-all").models.retrieve("main").id == "main"
    m = ant(g, api_key="key-all").models.retrieve("capability:summarise-docs")
    assert (m.id, m.type) == ("capability:summarise-docs", "model")
    with pytest.raises(openai.NotFoundError):
        oai(g, api_key="key-all").models.retrieve("no-such")
    with pytest.raises(anthropic.NotFoundError) as e:
        ant(g, api_key="key-all").models.retrieve("no-such")
    assert e.value.body["error"]["type"] == "not_found_error"
    # a team key: its route only, and another team's route is as unknown as a missing one
    assert [m.id for m in ant(g, api_key="key-team").models.list()] == ["team"]
    assert oai(g, api_key="key-team").models.retrieve("team").id == "team"
    with pytest.raises(openai.NotFoundError):
        oai(g, api_key="key-team").models.retrieve("main")
    with pytest.raises(anthropic.AuthenticationError):  # the Anthropic SDK gets its own schema for a 401
        ant(g, api_key="wrong").models.list()


def test_anthropic_paging(g):
    client = ant(g, api_key="key-all")
    first = client.models.list(limit=2)
    assert [m.id for m in first.data] == ["main", "team"] and first.has_more and first.last_id == "team"
    assert [m.id for m in client.models.list(limit=2)] == [m.id for m in client.models.list()]  # auto-paging
    nxt = client.models.list(limit=2, after_id="team")
    assert [m.id for m in nxt.data] == ["summarise", "capability:summarise-docs"]
    before = client.models.list(limit=2, before_id="local")
    assert [m.id for m in before.data] == ["summarise", "capability:summarise-docs"] and before.has_more
    for query in ("limit=0", "limit=x", "after_id=nope", "after_id=main&before_id=team"):
        r = httpx.get(g.url + "/v1/models?" + query, headers={"x-api-key": "key-all", "anthropic-version": "2023-06-01"},
                      timeout=5)
        assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error", query


def test_an_unknown_model_error_names_only_what_the_key_may_use_and_stays_short(g):
    r = httpx.post(g.url + "/v1/chat/completions", headers={"authorization": "Bearer key-team"},
                   json={"model": "x" * 100_000, "messages": MSG}, timeout=5)
    assert r.status_code == 404
    msg = r.json()["error"]["message"]
    assert len(msg) < 400 and msg.endswith("this gateway serves: team")


def test_a_misspelt_model_names_the_closest_one_the_key_may_use(g):
    # Before: "unknown model or route 'mian'; this gateway serves: capability:summarise-docs, frontier, local,
    # main, summarise, team", the newcomer's own typo left to spot by eye.
    with pytest.raises(openai.NotFoundError) as e:
        oai(g, api_key="key-all").chat.completions.create(model="mian", messages=MSG)
    assert "unknown model or route 'mian'; did you mean `main`? this gateway serves: " in str(e.value), e.value
    with pytest.raises(anthropic.NotFoundError) as a:
        ant(g, api_key="key-team").messages.create(model="taem", max_tokens=5, messages=MSG)
    assert "did you mean `team`?" in str(a.value), a.value
    with pytest.raises(openai.NotFoundError) as e:  # another team's route is never offered
        oai(g, api_key="key-team").chat.completions.create(model="mian", messages=MSG)
    assert "did you mean" not in str(e.value) and "main" not in str(e.value).split("'mian'")[1], e.value


def test_another_team_s_route_answers_as_an_unknown_name_does(g):
    # Before: a key limited to `team` asking for `main` got 403 "this API key may not use 'main'", for `mainx`
    # a 404: guessing names told which of another team's routes and models exist (review30d).
    answers = []
    for name in ("main", "frontier", "mainx"):
        with pytest.raises(openai.NotFoundError) as e:
            oai(g, api_key="key-team").chat.completions.create(model=name, messages=MSG)
        answers.append(str(e.value).replace(repr(name), "NAME"))
        with pytest.raises(anthropic.NotFoundError):
            ant(g, api_key="key-team").messages.create(model=name, max_tokens=5, messages=MSG)
    assert answers[0] == answers[1] == answers[2], answers
    assert "this gateway serves: team" in answers[0], answers[0]
    assert oai(g, api_key="key-all").chat.completions.create(model="main", messages=MSG).choices  # unscoped: as before


def test_openapi_names_models_only_to_the_keys_that_may_use_them(g):
    """/openapi.json is open (tools fetch it before they hold a key) but its `model` schema listed every
    route and model to anyone, while /v1/models answers 401."""
    anyone = httpx.get(g.url + "/openapi.json", timeout=5)
    team = httpx.get(g.url + "/openapi.json", headers={"authorization": "Bearer key-team"}, timeout=5)
    full = httpx.get(g.url + "/openapi.json", headers={"authorization": "Bearer key-all"}, timeout=5)
    assert anyone.status_code == team.status_code == full.status_code == 200
    assert "summarise" not in anyone.text and '"main"' not in anyone.text and '"team"' not in anyone.text
    assert '"team"' in team.text and '"main"' not in team.text and "summarise" not in team.text
    assert '"main"' in full.text and "capability:summarise-docs" in full.text
