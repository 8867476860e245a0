"""Answers that depend on the caller's key are never stored by a cache in front of the gateway.

`GET /health`, `/v1/models`, `/v1/models/{id}`, `/openapi.json`, `/v1/tierwise/budgets`, `/blackboard`, `/cache`
and the approvals list answer each key with what it may see (a team key its own routes and budget rows, an
admin key every client's). They were sent with no `Cache-Control` and no `Vary`: a shared cache that keys on the
URL and skips only requests with `Authorization` or a cookie (Varnish's built-in rules, a CDN told to cache
everything) stores the answer to an `x-api-key` request (the Anthropic SDK's header) and hands it to the next
caller of that URL, whatever key it holds, or none. Real HTTP on loopback, the official SDKs where they call
these endpoints.
"""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import pytest

from tests.gateway.conftest import ant, oai

KEYS = {"TW_SC_TEAM": "sc-team-key-0123456789", "TW_SC_ADMIN": "sc-admin-key-0123456789"}


@pytest.fixture
def keyed(two_tier, monkeypatch) -> Any:
    for env, value in KEYS.items():
        monkeypatch.setenv(env, value)
    return two_tier(server={"api_keys_env": [{"env": "TW_SC_TEAM", "routes": ["main"]}],
                            "admin_keys_env": ["TW_SC_ADMIN"]},
                    budgets={"limits": [{"name": "all", "usd": 5, "window": "day"}]})


def _stored_by_no_cache(headers: Any) -> bool:
    return "no-store" in (headers.get("cache-control") or "")


def test_the_sdks_model_lists_are_not_stored_by_a_cache(keyed) -> None:
    g = keyed
    team = KEYS["TW_SC_TEAM"]
    listed = oai(g, api_key=team).models.with_raw_response.list()
    assert listed.status_code == 200 and _stored_by_no_cache(listed.headers), dict(listed.headers)
    one = oai(g, api_key=team).models.with_raw_response.retrieve("main")
    assert one.status_code == 200 and _stored_by_no_cache(one.headers), dict(one.headers)
    a = ant(g, api_key=team).models.with_raw_response.list()
    assert a.status_code == 200 and _stored_by_no_cache(a.headers), dict(a.headers)


@pytest.mark.parametrize("path,key", [
    ("/health", "TW_SC_TEAM"), ("/", "TW_SC_TEAM"), ("/openapi.json", "TW_SC_TEAM"),
    ("/v1/tierwise/budgets", "TW_SC_ADMIN"), ("/v1/tierwise/budgets", "TW_SC_TEAM"),
    ("/v1/tierwise/blackboard", "TW_SC_ADMIN"), ("/v1/tierwise/approvals", "TW_SC_ADMIN"),
])
def test_answers_that_depend_on_the_key_are_not_stored_by_a_cache(keyed, path: str, key: str) -> None:
    with httpx.Client(timeout=10) as c:
        r = c.get(keyed.url + path, headers={"x-api-key": KEYS[key]})
        anonymous = c.get(keyed.url + path)
    assert r.content != anonymous.content, "the key changes nothing here: the test proves nothing"
    assert _stored_by_no_cache(r.headers), f"{path}: {dict(r.headers)}"
