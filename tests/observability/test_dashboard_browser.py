"""The dashboard in a real browser: Debian's chromium driven by Playwright. The page loads without
console errors, a request sent through the gateway appears in the live stream and its trace
opens, and a worker appearing in (then leaving) Redis presence shows in the topology."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
import redis

from tests.doubles import Fail, Reply
from tests.gateway.conftest import oai
from tests.harness import unavailable
from tests.observability.conftest import MSG

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# this suite's own Redis database, one per pytest-xdist worker (gw0: 11, gw1: 12, ...): presence keys there are
# this process's alone, so two of these tests on two workers do not see or delete each other's workers
REDIS_DB = 11 + int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0) % 5
DOCS = Path(__file__).resolve().parents[2] / "docs"


def _need_chromium() -> None:
    if not os.path.exists(CHROMIUM):
        unavailable("chromium is not installed (scripts/install-chromium.sh)")


@pytest.fixture
def presence():
    r = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    keys = ["tierwise:presence:test-worker-1"]
    r.delete(*keys)
    yield r
    r.delete(*keys)
    r.close()


def dashboard_gateway(two_tier, monkeypatch):
    """A keyed gateway with metrics and the dashboard on (a viewer key, presence read from the test's Redis db)."""
    monkeypatch.setenv("OBS_GW_KEY", "gw-key-1")
    monkeypatch.setenv("OBS_VIEWER_KEY", "viewer-key-1")
    return two_tier(server={"default_route": "main", "api_keys_env": ["OBS_GW_KEY"]},
                    observability={"metrics": {"enabled": True},
                                   "dashboard": {"enabled": True, "viewer_keys_env": ["OBS_VIEWER_KEY"],
                                                 "presence_redis_url": f"redis://127.0.0.1:6379/{REDIS_DB}"}})


def test_dashboard_in_chromium(two_tier, openai_up, anthropic_up, presence, monkeypatch):
    _need_chromium()
    from playwright.sync_api import sync_playwright

    g = dashboard_gateway(two_tier, monkeypatch)
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(g.url + "/dashboard#key=viewer-key-1")
            page.wait_for_selector("#conn.live", timeout=15_000)
            assert "#key" not in page.url  # the key left the address bar
            page.wait_for_selector("#deployments tbody tr", timeout=15_000)
            assert page.locator("#deployments tbody tr").count() == 2

            # a request through the gateway shows in the live stream
            anthropic_up.script(Reply(text="hello there", usage=(11, 3)))
            raw = oai(g, api_key="gw-key-1").chat.completions.with_raw_response.create(model="main", messages=MSG)
            rid = raw.headers["x-tierwise-request-id"]
            sent = time.monotonic()
            page.wait_for_selector(f'#live tr[data-id="{rid}"]', timeout=10_000)
            shown_after = time.monotonic() - sent  # reported, not asserted (no timing thresholds in tests)
            print(f"request shown in the live stream {shown_after:.2f} s after its answer")
            # its trace opens
            page.click(f'#live tr[data-id="{rid}"]')
            page.wait_for_selector("#trace:not([hidden])", timeout=10_000)
            assert page.text_content("#trace-id") == rid
            steps = page.locator("#trace-steps tbody tr")
            assert steps.count() == 1 and "frontier" in steps.first.text_content()

            # a worker appears in presence, then goes away
            presence.set("tierwise:presence:test-worker-1", '{"capabilities": ["code", "vision"]}', ex=60)
            page.wait_for_selector('#workers li[data-worker="test-worker-1"]', timeout=10_000)
            assert "code, vision" in page.text_content('#workers li[data-worker="test-worker-1"]')
            if os.environ.get("TIERWISE_SCREENSHOT"):
                for i in range(12):  # some answered by the frontier, some by the local model after a failure
                    if i % 3:
                        anthropic_up.script(Fail(503, "busy"))
                        openai_up.script(Reply(text="hi", usage=(40, 12)))
                    else:
                        anthropic_up.script(Reply(text="hi", usage=(40, 12)))
                    oai(g, api_key="gw-key-1").chat.completions.create(model="main", messages=MSG)
                    time.sleep(0.15)
                page.wait_for_timeout(2500)
                page.screenshot(path=str(DOCS / "dashboard.png"), full_page=True)
            presence.delete("tierwise:presence:test-worker-1")
            page.wait_for_selector('#workers li[data-worker="test-worker-1"]', state="detached", timeout=10_000)
        finally:
            browser.close()
    assert errors == []


def test_a_gateway_key_sees_its_own_requests_in_chromium(two_tier, anthropic_up, monkeypatch):
    """A client's key opens the page: its own requests stream in and their traces open; another key's
    request never shows; the gateway-wide panels are not asked for (no refused fetch, no console error)."""
    _need_chromium()
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("OBS_GW_KEY", "gw-key-1")
    monkeypatch.setenv("OBS_OTHER_KEY", "other-key-1")
    g = two_tier(server={"default_route": "main", "api_keys_env": ["OBS_GW_KEY", "OBS_OTHER_KEY"]},
                 observability={"dashboard": {"enabled": True}})
    anthropic_up.default = Reply(text="hello there", usage=(11, 3))
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(g.url + "/dashboard#key=gw-key-1")
            page.wait_for_selector("#conn.live", timeout=15_000)
            page.wait_for_selector("#own-only:not([hidden])", timeout=10_000)
            other = oai(g, api_key="other-key-1").chat.completions.with_raw_response.create(
                model="main", messages=MSG).headers["x-tierwise-request-id"]
            own = oai(g, api_key="gw-key-1").chat.completions.with_raw_response.create(
                model="main", messages=MSG).headers["x-tierwise-request-id"]
            page.wait_for_selector(f'#live tr[data-id="{own}"]', timeout=10_000)
            assert page.locator(f'#live tr[data-id="{other}"]').count() == 0
            page.click(f'#live tr[data-id="{own}"]')
            page.wait_for_selector("#trace:not([hidden])", timeout=10_000)
            assert page.text_content("#trace-id") == own
        finally:
            browser.close()
    assert errors == []


def test_dashboard_data_needs_a_key(two_tier, monkeypatch):
    import httpx2 as httpx

    monkeypatch.setenv("OBS_GW_KEY", "gw-key-1")
    monkeypatch.setenv("OBS_VIEWER_KEY", "viewer-key-1")
    g = two_tier(server={"default_route": "main", "api_keys_env": ["OBS_GW_KEY"]},
                 observability={"dashboard": {"enabled": True, "viewer_keys_env": ["OBS_VIEWER_KEY"]}})
    page = httpx.get(g.url + "/dashboard")
    assert page.status_code == 200 and "frame-ancestors 'none'" in page.headers["content-security-policy"]
    for path in ("/dashboard/api/summary", "/dashboard/api/topology", "/dashboard/api/trace?id=x",
                 "/dashboard/api/stream"):
        assert httpx.get(g.url + path).status_code == 401
        assert httpx.get(g.url + path, headers={"authorization": "Bearer wrong"}).status_code == 401
    ok = httpx.get(g.url + "/dashboard/api/topology", headers={"authorization": "Bearer viewer-key-1"})
    assert ok.status_code == 200 and {d["name"] for d in ok.json()["deployments"]} == {"local", "frontier"}
    # a browser marking the request as coming from another site is refused, key or not
    r = httpx.get(g.url + "/dashboard/api/summary", headers={"authorization": "Bearer viewer-key-1",
                                                             "sec-fetch-site": "cross-site"})
    assert r.status_code == 403
    r = httpx.get(g.url + "/dashboard/api/summary", headers={"authorization": "Bearer viewer-key-1",
                                                             "origin": "http://evil.example"})
    assert r.status_code == 403
    assert httpx.get(g.url + "/dashboard/api/trace?id=nope",
                     headers={"authorization": "Bearer gw-key-1"}).status_code == 404


def test_live_stream_is_sampled_when_busy(two_tier, openai_up, anthropic_up):
    import httpx2 as httpx
    import orjson

    g = two_tier(observability={"dashboard": {"enabled": True, "stream_per_second": 5}})  # 1 row per 0.2 s tick
    for _ in range(12):
        anthropic_up.script(Reply(text="hi"))
        oai(g).chat.completions.create(model="main", messages=MSG)
    with httpx.stream("GET", g.url + "/dashboard/api/stream", timeout=10) as r:
        assert r.status_code == 200 and r.headers["content-type"] == "text/event-stream"
        for line in r.iter_lines():
            if line.startswith("data: "):
                first = orjson.loads(line[6:])
                break
    assert len(first["rows"]) == 1 and first["skipped"] == 11  # the newest 12, one shown
    summary = httpx.get(g.url + "/dashboard/api/summary").json()
    assert summary["totals"]["n"] == 12 and sum(s["n"] for s in summary["series"]) == 12


def test_live_stream_ends_after_its_lifetime(two_tier, openai_up, anthropic_up):
    import httpx2 as httpx

    g = two_tier(observability={"dashboard": {"enabled": True}})
    g.app.routes[("GET", "/dashboard/api/stream")].__self__.stream_lifetime = 0.5
    with httpx.stream("GET", g.url + "/dashboard/api/stream", timeout=10) as r:
        body = b"".join(r.iter_bytes())  # returns: the server ended the stream
    assert body.startswith(b": live")


HOSTILE = '<img src=x onerror="window.__xss=1">'


def test_values_a_client_or_a_worker_controls_render_as_text(two_tier, openai_up, anthropic_up, presence,
                                                             monkeypatch):
    """Stored XSS probe: a model name (an unknown one, answered by the default route), a feature tag, a user id and a
    worker's id and capability names, each an HTML payload, shown on the dashboard: no element is made from
    them and no script runs (cells are textContent, script-src 'self')."""
    _need_chromium()
    import httpx2 as httpx
    from playwright.sync_api import sync_playwright

    g = dashboard_gateway(two_tier, monkeypatch)
    anthropic_up.default = Reply(text=HOSTILE, usage=(11, 3))
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("dialog", lambda d: errors.append("dialog: " + d.message))
            page.goto(g.url + "/dashboard#key=viewer-key-1")
            page.wait_for_selector("#conn.live", timeout=15_000)
            client = oai(g, api_key="gw-key-1")
            rid = client.chat.completions.with_raw_response.create(
                model="main", messages=MSG, user=HOSTILE, extra_headers={"x-tierwise-feature": HOSTILE}
            ).headers["x-tierwise-request-id"]
            named = httpx.post(g.url + "/v1/chat/completions", headers={"authorization": "Bearer gw-key-1"},
                               json={"model": HOSTILE, "messages": MSG})  # (the default route answers it)
            page.wait_for_selector(f'#live tr[data-id="{named.headers["x-tierwise-request-id"]}"]', timeout=10_000)
            presence.set("tierwise:presence:test-worker-1",
                         json.dumps({"id": HOSTILE, "capabilities": [HOSTILE], "models": [HOSTILE]}), ex=60)
            page.wait_for_selector(f'#live tr[data-id="{rid}"]', timeout=10_000)
            page.click(f'#live tr[data-id="{rid}"]')
            page.wait_for_selector("#trace:not([hidden])", timeout=10_000)
            page.wait_for_selector('#workers li[data-worker="test-worker-1"]', timeout=10_000)
            page.wait_for_timeout(1500)  # a few more live updates
            assert page.evaluate("window.__xss") is None
            assert page.locator('img[src="x"]').count() == 0
            assert "onerror" in page.text_content('#workers li[data-worker="test-worker-1"]')  # shown, as text
        finally:
            browser.close()
    assert errors == []


def test_upstream_error_texts_and_verifier_reasons_render_as_text(two_tier, openai_up, anthropic_up, monkeypatch):
    """Stored XSS probe from the upstream side (session 21): an upstream's error text and a verifier's reason
    quoting a model's answer, each an HTML payload, shown in the trace an admin opens (an admin reads reasons a
    viewer does not): no element is made from them and no script runs; the payload is there, as text."""
    _need_chromium()
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("OBS_GW_KEY", "gw-key-1")
    monkeypatch.setenv("OBS_ADMIN_KEY", "admin-key-1")
    routes = {"main": {"policy": "fallback", "targets": ["frontier", "local"], "retries": 0},
              "casc": {"policy": "cascade", "tiers": ["local", "frontier"],
                       "verifiers": [{"type": "regex", "pattern": "<img[^>]*>", "must_match": False}]}}
    g = two_tier(routes=routes, server={"default_route": "main", "api_keys_env": ["OBS_GW_KEY"],
                                        "admin_keys_env": ["OBS_ADMIN_KEY"]},
                 observability={"dashboard": {"enabled": True}})
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("dialog", lambda d: errors.append("dialog: " + d.message))
            page.goto(g.url + "/dashboard#key=admin-key-1")
            page.wait_for_selector("#conn.live", timeout=15_000)
            client = oai(g, api_key="gw-key-1")
            anthropic_up.script(Fail(500, "upstream says " + HOSTILE))  # the frontier fails with it, local answers
            openai_up.script(Reply(text="fine", usage=(5, 1)))
            failed = client.chat.completions.with_raw_response.create(model="main", messages=MSG)
            openai_up.script(Reply(text="the answer " + HOSTILE, usage=(5, 3)))  # fails its check: escalated
            anthropic_up.script(Reply(text="42", usage=(5, 1)))
            checked = client.chat.completions.with_raw_response.create(model="casc", messages=MSG)
            for raw in (failed, checked):
                rid = raw.headers["x-tierwise-request-id"]
                page.wait_for_selector(f'#live tr[data-id="{rid}"]', timeout=10_000)
                page.click(f'#live tr[data-id="{rid}"]')
                page.wait_for_function("(id) => document.getElementById('trace-id').textContent === id", arg=rid,
                                       timeout=10_000)
                assert "onerror" in page.text_content("#trace-steps")  # the payload is shown, as text
            page.wait_for_timeout(1000)
            assert page.evaluate("window.__xss") is None
            assert page.locator('img[src="x"]').count() == 0
        finally:
            browser.close()
    assert errors == []
