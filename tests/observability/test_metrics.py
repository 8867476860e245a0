"""`GET /metrics` after known traffic: both APIs, streams, a fallback, errors, an escalation, an
advisor call; bounded labels; the key; the recording API other parts of tierwise call."""

from __future__ import annotations

import time

import httpx2 as httpx
import openai
import pytest

from tests.doubles import Fail, Reply, ToolCall
from tests.gateway.conftest import ant, oai
from tests.observability.conftest import MSG, observed_routes, scrape, total
from tierwise.observability import metrics as obs_metrics

ON = {"observability": {"metrics": {"enabled": True}}}


def test_metrics_after_known_traffic(two_tier, openai_up, anthropic_up):
    g = two_tier(routes=observed_routes(), **ON)
    # 1. OpenAI client, answered by the frontier (Anthropic double)
    anthropic_up.script(Reply(text="hello", usage=(10, 2)))
    oai(g).chat.completions.create(model="main", messages=MSG)
    # 2. Anthropic client, streamed, answered by the frontier
    anthropic_up.script(Reply(text="a b c", usage=(12, 3)))
    with ant(g).messages.stream(model="main", max_tokens=50, messages=MSG) as s:
        s.get_final_message()
    # 3. a fallback: the frontier fails, the local model answers (stream, OpenAI client)
    anthropic_up.script(Fail(500, "boom"))
    openai_up.script(Reply(text="local answer", usage=(7, 2)))
    chunks = list(oai(g).chat.completions.create(model="main", messages=MSG, stream=True))
    assert chunks
    # 4. an error: both fail
    anthropic_up.script(Fail(500, "boom"))
    openai_up.script(Fail(503, "down"))
    with pytest.raises(openai.APIStatusError):
        oai(g).chat.completions.create(model="main", messages=MSG)
    # 5. a cascade that escalates (local fails verification)
    openai_up.script(Reply(text="not sure", usage=(20, 4)))
    anthropic_up.script(Reply(text="6 * 7 = 42", usage=(40, 6)))
    oai(g).chat.completions.create(model="casc", messages=MSG)
    # 6. an advisor consultation
    openai_up.script(Reply(tool_calls=[ToolCall("advisor", {"question": "plan?"})]), Reply(text="Done."))
    anthropic_up.script(Reply(text="Step 1.", usage=(80, 8)))
    oai(g).chat.completions.create(model="adv", messages=MSG)
    g.flush()

    m = scrape(g.url)
    assert total(m, "tierwise_requests_total") == 6
    assert total(m, "tierwise_requests_total", route="main", api="openai", stream="false", error_type="none") == 1
    assert total(m, "tierwise_requests_total", route="main", api="anthropic", stream="true") == 1
    assert total(m, "tierwise_requests_total", route="main", status_class="5xx", error_type="overloaded") == 1
    # upstream calls: 1 + 1 + 2 (fallback) + 2 (both failed) + 2 (cascade) + 3 (advisor)
    assert total(m, "gen_ai_client_operation_duration_seconds_count") == 11
    assert total(m, "gen_ai_client_operation_duration_seconds_count", gen_ai_provider_name="cloud",
                 error_type="upstream_5xx") == 2
    assert total(m, "gen_ai_client_operation_duration_seconds_count", gen_ai_provider_name="localsrv",
                 error_type="upstream_5xx") == 1
    # tokens: input of the first call, by model and type
    assert total(m, "gen_ai_client_token_usage_sum", route="main", gen_ai_request_model="big-model",
                 gen_ai_token_type="input") == 22
    assert total(m, "gen_ai_client_token_usage_sum", route="main", gen_ai_request_model="qwen-local",
                 gen_ai_token_type="output") == 2
    # streams have a time to first token, per answered request
    assert total(m, "gen_ai_server_time_to_first_token_seconds_count") == 2
    # cost and reference cost (the frontier is the reference: savings where local answered)
    frontier = (10 * 3 + 2 * 15 + 12 * 3 + 3 * 15) / 1e6
    assert total(m, "tierwise_cost_usd_total", route="main") == pytest.approx(frontier)
    assert total(m, "tierwise_reference_cost_usd_total", route="main") == pytest.approx(
        frontier + (7 * 3 + 2 * 15) / 1e6)
    assert total(m, "tierwise_route_decisions_total", route="main", reason="fallback") == 1
    assert total(m, "tierwise_route_decisions_total", route="casc", reason="escalate") == 1
    assert total(m, "tierwise_verifier_verdicts_total", verifier="arithmetic", verdict="fail") == 1
    assert total(m, "tierwise_escalations_total", route="casc") == 1
    assert total(m, "tierwise_helper_calls_total", route="adv", role="advisor") == 1
    assert total(m, "tierwise_answered_total", route="main", locality="local") == 1
    assert total(m, "tierwise_gateway_overhead_seconds_count") == 6
    assert (("tierwise_breaker_state", (("deployment", "frontier"),)) in m)


def test_error_types_are_a_closed_vocabulary(two_tier, openai_up, anthropic_up):
    from tierwise.observability.vocab import ERROR_VOCABULARY

    g = two_tier(routes=observed_routes(), **ON)
    anthropic_up.script(Fail(429, "slow", retry_after=0.01), Fail(400, "bad"))
    openai_up.script(Fail(500, "x"), Fail(500, "y"))
    for _ in range(2):
        with pytest.raises(openai.APIStatusError):
            oai(g).chat.completions.create(model="main", messages=MSG)
        time.sleep(0.05)  # the 429 asked for a 0.01 s pause: past it, the next request reaches the upstream again
    g.flush()
    m = scrape(g.url)
    seen = {dict(ls).get("error_type") for (n, ls) in m if "error_type" in dict(ls)}
    assert seen and seen <= ERROR_VOCABULARY
    assert total(m, "gen_ai_client_operation_duration_seconds_count", error_type="rate_limited") == 1


def test_label_values_are_bounded(two_tier, openai_up, anthropic_up):
    cfg = {"observability": {"metrics": {"enabled": True, "max_label_values": 2}}}
    g = two_tier(routes=observed_routes(), **cfg)
    mt = g.gateway.observer.metrics
    # configured names are always kept; names beyond the cap (and long ones) read `other`
    assert mt.route("casc") == "casc"
    assert mt.name("v1") == "v1" and mt.name("v2") == "v2" and mt.name("v3") == "other"
    assert mt.model("x" * 200) == "other"


def test_what_a_client_names_never_becomes_a_label(two_tier, openai_up, anthropic_up):
    """Every label value is a configured name or a word of a closed vocabulary: the model names a client asks for
    (a pattern route takes any), its feature tags, user ids and metadata add no series however many it invents."""
    routes = {**observed_routes(), "gpt-*": {"policy": "fallback", "targets": ["local"], "retries": 0}}
    g = two_tier(routes=routes, **ON)
    openai_up.default = Reply(text="ok")
    client, claude = oai(g), ant(g)

    def series() -> set[tuple[str, tuple[tuple[str, str], ...]]]:
        g.flush()
        return set(scrape(g.url))

    client.chat.completions.create(model="gpt-0-client", messages=MSG)
    claude.messages.create(model="gpt-0-claude", max_tokens=16, messages=MSG)
    before = series()
    for i in range(1, 25):
        client.chat.completions.create(model=f"gpt-{i}-client", messages=MSG, user=f"user-{i}",
                                       metadata={"tierwise_feature": f"tag-{i}", "n": f"meta-{i}"},
                                       extra_headers={"x-tierwise-feature": f"feature-{i}"})
        claude.messages.create(model=f"gpt-{i}-claude", max_tokens=16, messages=MSG,
                               metadata={"user_id": f"user-{i}"})
    after = series()
    labels = {v for _, ls in after for _, v in ls}
    assert not any(w in v for v in labels for w in ("client", "claude", "user-", "tag-", "meta-", "feature-"))
    assert after == before  # the same series, however many names the clients invented


def test_recording_api(two_tier, openai_up, anthropic_up):
    g = two_tier(**ON)
    gw = g.gateway
    obs_metrics.count_cache(gw, "hit")
    obs_metrics.count_cache(gw, "hit")
    obs_metrics.count_cache(gw, "miss")
    obs_metrics.record_privacy_action(gw, "redact", "email")
    obs_metrics.set_budget_remaining(gw, "team-a", 4.5)
    obs_metrics.record_budget_refusal(gw, "team-a")
    obs_metrics.record_sandbox_run(gw, "passed")
    obs_metrics.set_workers_present(gw, "code", 2)
    m = scrape(g.url)
    assert total(m, "tierwise_cache_lookups_total", result="hit") == 2
    assert total(m, "tierwise_cache_lookups_total", result="miss") == 1
    assert total(m, "tierwise_privacy_actions_total", action="redact", data_class="email") == 1
    assert total(m, "tierwise_budget_remaining_usd", budget="team-a") == 4.5
    assert total(m, "tierwise_budget_refusals_total", budget="team-a") == 1
    assert total(m, "tierwise_sandbox_runs_total", outcome="passed") == 1
    assert total(m, "tierwise_workers_present", capability="code") == 2


def test_recording_api_is_a_no_op_when_off(two_tier):
    g = two_tier()
    obs_metrics.count_cache(g.gateway, "hit")  # nothing to record into, nothing raised
    assert httpx.get(g.url + "/metrics").status_code == 404


def test_metrics_need_a_key_when_keys_are_set(two_tier, monkeypatch):
    monkeypatch.setenv("OBS_GW_KEY", "gw-secret")
    monkeypatch.setenv("OBS_VIEW_KEY", "view-secret")
    g = two_tier(server={"default_route": "main", "api_keys_env": ["OBS_GW_KEY"]},
                 observability={"metrics": {"enabled": True},
                                "dashboard": {"enabled": True, "viewer_keys_env": ["OBS_VIEW_KEY"]}})
    assert httpx.get(g.url + "/metrics").status_code == 401
    r = httpx.get(g.url + "/metrics", headers={"authorization": "Bearer nope"})
    # In the gateway's OpenAI error schema, `param` and `code` included (were missing; type was ours)
    assert r.status_code == 401 and r.json()["error"] | {"message": ""} == {
        "message": "", "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}
    for path in ("/dashboard/api/summary", "/dashboard/api/trace?id=nope"):
        assert httpx.get(g.url + path).json()["error"]["code"] == "invalid_api_key"
    r = httpx.get(g.url + "/dashboard/api/trace?id=nope", headers={"authorization": "Bearer gw-secret"})
    assert r.status_code == 404 and set(r.json()["error"]) == {"message", "type", "param", "code"}
    # metrics cover every client's requests: a gateway key is refused, a viewer key reads them
    r = httpx.get(g.url + "/metrics", headers={"authorization": "Bearer gw-secret"})
    assert r.status_code == 403 and "viewer key" in r.json()["error"]["message"]
    assert scrape(g.url, authorization="Bearer view-secret") is not None
    # a viewer key reads, and opens nothing else
    r = httpx.post(g.url + "/v1/chat/completions", headers={"authorization": "Bearer view-secret"},
                   json={"model": "main", "messages": MSG})
    assert r.status_code == 401


def test_a_viewer_key_reads_traces_without_the_conversation(two_tier, anthropic_up, monkeypatch):
    # The ledger keeps prompts and answers when `store_text` is on; the read-only role sees what happened
    # (route, model, cost, steps), not what was said. A gateway key sees all of it.
    monkeypatch.setenv("OBS_GW_KEY", "gw-secret")
    monkeypatch.setenv("OBS_VIEW_KEY", "view-secret")
    g = two_tier(server={"default_route": "main", "api_keys_env": ["OBS_GW_KEY"]}, ledger={"store_text": True},
                 observability={"dashboard": {"enabled": True, "recent": 10, "viewer_keys_env": ["OBS_VIEW_KEY"]}})
    anthropic_up.default = Reply(text="the secret plan is ready", usage=(5, 5))
    ids = []
    for i in range(12):  # the first two leave the in-memory feed: their traces come from the ledger
        r = httpx.post(g.url + "/v1/chat/completions", headers={"authorization": "Bearer gw-secret"},
                       json={"model": "main", "messages": [{"role": "user", "content": f"launch code {i} is 0000"}]})
        assert r.status_code == 200
        ids.append(r.headers["x-tierwise-request-id"])
    g.flush()

    def trace(rid, key):
        r = httpx.get(g.url + "/dashboard/api/trace", params={"id": rid}, headers={"authorization": f"Bearer {key}"})
        assert r.status_code == 200, r.text
        return r.text

    full = trace(ids[0], "gw-secret")
    assert "launch code 0" in full and "the secret plan" in full
    for rid in (ids[0], ids[11]):  # from the ledger, and from memory
        seen = trace(rid, "view-secret")
        assert rid in seen and "launch code" not in seen and "secret plan" not in seen
    assert "withheld" in trace(ids[0], "view-secret")


def test_cache_budget_and_privacy_from_their_own_steps(two_tier, openai_up, anthropic_up):
    """The answer cache, a budget refusal: counted from what those guards leave on the request."""
    usage = (40, 400)
    cost = usage[0] * 3 / 1e6 + usage[1] * 15 / 1e6
    anthropic_up.default = Reply(text="paid answer", usage=usage)
    g = two_tier(routes={"main": ["frontier"], "loc": ["local"]},
                 cache={"enabled": True, "routes": {"loc": {}}},
                 budgets={"limits": [{"name": "cap", "usd": cost * 1.5}]}, **ON)
    q = [{"role": "user", "content": "What is the capital of France?"}]
    for _ in range(2):  # a miss, then a hit
        oai(g).chat.completions.create(model="loc", messages=q, temperature=0)
    for _ in range(3):  # the third is refused by the budget (admission looks at what remains)
        try:
            oai(g).chat.completions.create(model="main", messages=MSG, max_tokens=500)
        except openai.RateLimitError:
            pass
    g.flush()
    m = scrape(g.url)
    assert total(m, "tierwise_cache_lookups_total", result="miss") == 1
    assert total(m, "tierwise_cache_lookups_total", result="hit") == 1
    assert total(m, "tierwise_budget_refusals_total", budget="cap") == 1
    assert total(m, "tierwise_requests_total", route="main", error_type="budget_exceeded") == 1


def test_a_max_tokens_clamped_to_the_window_is_no_routing_rule(two_tier, openai_up, anthropic_up):
    """Claude Code's subagents ask for max_tokens 64,000; a local model with a smaller window gets it lowered, a
    decision step named after the model ("local: max_tokens 64,000 -> 5,000 to fit window 8,192"). Its reason read as
    a rule's ("name: ... -> target"), so each such request counted two rule decisions on /metrics and the
    dashboard (session 29's new user)."""
    routes = {"main": {"policy": "rules", "rules": [{"name": "sub", "match": {"subagent": True}, "target": "local"}],
                       "default": "frontier"}}
    g = two_tier(routes=routes, **ON)
    with ant(g).messages.stream(model="main", max_tokens=64_000, messages=MSG,
                                extra_headers={"x-claude-code-agent-id": "agent-1"}) as s:
        s.get_final_message()
    assert len(openai_up.requests) == 1 and openai_up.requests[0].body["max_tokens"] < 8192
    g.flush()
    m = scrape(g.url)
    assert total(m, "tierwise_route_decisions_total", route="main", reason="rule") == 1
    assert total(m, "tierwise_route_decisions_total", route="main", reason="window_fit") == 1
