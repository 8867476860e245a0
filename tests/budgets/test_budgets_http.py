"""Budgets and rate limits through a real gateway, spoken to by the official SDKs."""

from __future__ import annotations

import anthropic
import openai
import pytest

from tests.doubles import Reply
from tests.gateway.conftest import ant, oai

USAGE = (40, 400)  # the frontier double's answers: $0.00012 + $0.006 each at $3/$15 per million
COST = USAGE[0] * 3 / 1e6 + USAGE[1] * 15 / 1e6


def budget(usd: float, **kw):
    return {"limits": [{"name": "cap", "usd": usd, **kw}]}


def ask_openai(g, **kw):
    return oai(g).chat.completions.create(model="main", max_tokens=500,
                                          messages=[{"role": "user", "content": "hello"}], **kw)


def ask_anthropic(g, **kw):
    return ant(g).messages.create(model="main", max_tokens=500, messages=[{"role": "user", "content": "hello"}], **kw)


def concurrent_asks(g, content, n: int) -> list[str]:
    """`n` Anthropic requests of `content` at once: each one's answer text, or "refused" (a 429)."""
    from concurrent.futures import ThreadPoolExecutor

    def one(_: int) -> str:
        try:
            return ant(g).messages.create(model="main", max_tokens=500,
                                          messages=[{"role": "user", "content": content}]).content[0].text
        except anthropic.RateLimitError:
            return "refused"

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_spent_budget_refuses_in_each_api_schema(two_tier, anthropic_up):
    anthropic_up.default = Reply(text="paid answer", usage=USAGE)
    g = two_tier(budgets=budget(COST * 2.5))
    for _ in range(3):  # "remaining" admission: the third starts with half a request's cost left
        assert ask_openai(g).choices[0].message.content == "paid answer"
    with pytest.raises(openai.RateLimitError) as e:
        ask_openai(g)
    assert e.value.status_code == 429
    body = e.value.body
    assert body["type"] == "insufficient_quota" and body["code"] == "insufficient_quota"
    assert "budget 'cap'" in body["message"] and "resets at" in body["message"]
    assert int(e.value.response.headers["retry-after"]) > 0
    with pytest.raises(anthropic.RateLimitError) as ea:
        ask_anthropic(g)
    assert ea.value.body["error"]["type"] == "rate_limit_error"
    assert "budget 'cap'" in ea.value.body["error"]["message"]
    assert "retry-after" in ea.value.response.headers
    with pytest.raises(openai.RateLimitError):  # the Responses API goes through the same admission
        oai(g).responses.create(model="main", input="hello", max_output_tokens=500)
    g.flush()
    refused = [r for r in g.ledger.query() if r.status == 429]
    assert len(refused) == 3
    assert all(any(s["kind"] == "decision" and s["name"] == "budget" for s in r.steps) for r in refused)
    assert len(anthropic_up.requests) == 3


def test_a_limit_under_a_cent_reads_as_plain_dollars_in_the_refusal(two_tier, anthropic_up):
    anthropic_up.default = Reply(text="paid answer", usage=USAGE)
    g = two_tier(budgets=budget(0.00005))  # less than one request's cost: the first one spends it
    ask_openai(g)
    with pytest.raises(openai.RateLimitError) as e:
        ask_openai(g)
    msg = e.value.body["message"]
    assert "of $0.00005 per" in msg and "e-0" not in msg, msg  # (`:g` wrote `$5e-05`)


def test_downgrade_answers_from_the_local_tier_and_the_trace_says_why(two_tier, anthropic_up, openai_up):
    anthropic_up.default = Reply(text="frontier answer", usage=USAGE)
    openai_up.default = Reply(text="local answer", usage=(10, 10))
    g = two_tier(budgets={**budget(COST * 0.5), "routes": {"main": {"on_exhausted": "downgrade"}}})
    assert ask_openai(g).choices[0].message.content == "frontier answer"
    r = oai(g).chat.completions.with_raw_response.create(model="main", max_tokens=500,
                                                         messages=[{"role": "user", "content": "hello"}])
    assert r.parse().choices[0].message.content == "local answer"
    assert "decision:budget" in r.headers["x-tierwise-steps"]
    g.flush()
    rec = g.ledger.get(r.headers["x-tierwise-request-id"])
    step = next(s for s in rec.steps if s["name"] == "budget")
    assert "budget 'cap'" in step["reason"] and "local tier" in step["reason"]
    assert step["detail"]["action"] == "downgrade"
    assert rec.locality == "local"
    assert len(anthropic_up.requests) == 1


def test_local_models_never_consume_a_frontier_budget(two_tier, anthropic_up, openai_up):
    openai_up.default = Reply(text="local", usage=(100_000, 100_000))
    anthropic_up.default = Reply(text="frontier", usage=USAGE)
    g = two_tier(budgets=budget(COST * 1.5), routes={
        "main": {"policy": "fallback", "targets": ["frontier"], "retries": 0},
        "cheap": {"policy": "fallback", "targets": ["local"], "retries": 0}})
    for _ in range(5):
        assert oai(g).chat.completions.create(model="cheap", messages=[{"role": "user", "content": "x"}],
                                              max_tokens=100_000).choices[0].message.content == "local"
    assert ask_openai(g).choices[0].message.content == "frontier"  # the budget is untouched by local calls
    assert ask_openai(g).choices[0].message.content == "frontier"
    with pytest.raises(openai.RateLimitError):
        ask_openai(g)


def test_fits_admission_refuses_a_worst_case_that_does_not_fit(two_tier, anthropic_up):
    anthropic_up.default = Reply(text="ok", usage=USAGE)
    g = two_tier(budgets={**budget(0.01), "admit": "fits"})
    # 2,000 output tokens at $15/M is $0.03 > $0.01: more than the whole budget, a 400 saying so (since review31c; a 429
    # "spent … resets at midnight" before, which no wait helped)
    with pytest.raises(openai.BadRequestError, match="never be admitted"):
        oai(g).chat.completions.create(model="main", max_tokens=2000, messages=[{"role": "user", "content": "x"}])
    assert ask_openai(g).choices[0].message.content == "ok"  # 500 tokens: $0.0075 fits
    assert len(anthropic_up.requests) == 1


def test_per_session_budgets_are_separate(two_tier, anthropic_up):
    anthropic_up.default = Reply(text="ok", usage=USAGE)
    g = two_tier(budgets=budget(COST * 0.5, per="session"))
    for s in ("alpha", "beta"):
        ask_openai(g, extra_headers={"x-tierwise-session": s})
    with pytest.raises(openai.RateLimitError) as e:
        ask_openai(g, extra_headers={"x-tierwise-session": "alpha"})
    assert "for session alpha" in e.value.body["message"]
    ask_anthropic(g, metadata={"user_id": "u"}, extra_headers={"x-tierwise-session": "gamma"})
    ask_openai(g)  # no session: not covered by a per-session budget
    assert len(anthropic_up.requests) == 4


def test_token_budget_per_key(two_tier, anthropic_up, monkeypatch):
    monkeypatch.setenv("KEY_A", "key-a-secret")
    monkeypatch.setenv("KEY_B", "key-b-secret")
    anthropic_up.default = Reply(text="ok", usage=USAGE)
    g = two_tier(server={"default_route": "main", "api_keys_env": [{"env": "KEY_A", "name": "team-a"}, "KEY_B"]},
                 budgets={"limits": [{"name": "toks", "per": "key", "match": ["team-a"], "tokens": 400}]})
    ask_openai_key = lambda key: oai(g, api_key=key).chat.completions.create(  # noqa: E731
        model="main", max_tokens=500, messages=[{"role": "user", "content": "hello"}])
    ask_openai_key("key-a-secret")
    with pytest.raises(openai.RateLimitError) as e:
        ask_openai_key("key-a-secret")
    assert "for key team-a" in e.value.body["message"] and "440 tokens" in e.value.body["message"]
    assert "key-a-secret" not in e.value.body["message"]
    for _ in range(3):
        ask_openai_key("key-b-secret")  # not matched by the budget


def test_rate_limit_429_with_retry_after_in_each_schema(two_tier, anthropic_up):
    anthropic_up.default = Reply(text="ok", usage=USAGE)
    g = two_tier(rate_limits={"limits": [{"name": "rpm", "per": "key", "requests_per_minute": 3}]})
    for _ in range(3):
        ask_openai(g)
    with pytest.raises(openai.RateLimitError) as e:
        ask_openai(g)
    assert e.value.body["type"] == "requests" and e.value.body["code"] == "rate_limit_exceeded"
    assert "rate limit 'rpm'" in e.value.body["message"]
    assert int(e.value.response.headers["retry-after"]) >= 1
    with pytest.raises(anthropic.RateLimitError) as ea:
        ask_anthropic(g)
    assert ea.value.body["error"]["type"] == "rate_limit_error"
    assert int(ea.value.response.headers["retry-after"]) >= 1
    assert len(anthropic_up.requests) == 3


def test_tokens_per_minute(two_tier, anthropic_up):
    anthropic_up.default = Reply(text="ok", usage=(40, 400))
    g = two_tier(rate_limits={"limits": [{"name": "tpm", "per": "route", "tokens_per_minute": 1200}]})
    ask_openai(g)  # admitted with its input estimate (~40) and max_tokens (500) counted; settles at 440 tokens
    ask_openai(g)  # 440 counted + this one's ~540: admitted, settles at 880
    with pytest.raises(openai.RateLimitError) as e:
        ask_openai(g)  # 880 + ~540 > 1200
    assert "1200 tokens per minute" in e.value.body["message"]


def test_a_huge_max_tokens_reserves_no_more_than_the_context_window(gateway, openai_up, anthropic_up):
    from tests.harness import two_tier_config

    anthropic_up.default = Reply(text="ok", usage=USAGE)
    cfg = two_tier_config(openai_up.url, anthropic_up.url, budgets={**budget(1.0), "admit": "fits"})
    cfg["models"]["frontier"]["context_window"] = 20_000  # at most 20,000 x $15/M = $0.30 of output
    g = gateway(cfg)
    r = oai(g).chat.completions.create(model="main", max_tokens=1_000_000_000, messages=[{"role": "user", "content": "x"}])
    assert r.choices[0].message.content == "ok"


def test_invented_sessions_share_one_bucket_beyond_the_cap(two_tier, anthropic_up):
    # A client inventing a session per request must not make a bucket per request (each kept a whole
    # window) nor buy itself a fresh budget: past `max_dimension_values`, new values share one bucket.
    anthropic_up.default = Reply(text="ok", usage=USAGE)
    g = two_tier(budgets={**budget(COST * 0.5, per="session"), "max_dimension_values": 2})
    for s in ("alpha", "beta", "new-1"):  # two of their own, then the shared bucket's first request
        ask_openai(g, extra_headers={"x-tierwise-session": s})
    for s in ("new-2", "new-3", "alpha"):
        with pytest.raises(openai.RateLimitError) as e:
            ask_openai(g, extra_headers={"x-tierwise-session": s})
        assert ("for session alpha" if s == "alpha" else "for new session values") in e.value.body["message"]
    values = g.gateway.spend.values.seen[("cap", "")]
    assert list(values) == ["beta", "alpha"]  # bounded: the invented ones hold no state of their own
    assert len(anthropic_up.requests) == 3


def _clients_leave_before_the_frontier_answers(gateway, openai_up, anthropic_up, stream: bool, clients: int,
                                               budgets: dict | None = None):
    """A gateway whose frontier call takes a minute, `clients` raw connections that each send a long request
    and leave once the upstream is answering them all; returns the gateway when nothing is in flight."""
    import socket

    from tests.doubles.script import Delay
    from tests.gateway.test_connection_bounds import _request
    from tests.harness import two_tier_config, wait_for

    cfg = two_tier_config(openai_up.url, anthropic_up.url, budgets=budgets, routes={
        "main": {"policy": "fallback", "targets": ["frontier"], "retries": 0}})
    cfg["providers"]["cloud"]["timeouts"] = {"connect": 1, "read": 120}
    anthropic_up.default = Delay(60, Reply(text="late", usage=USAGE))
    g = gateway(cfg)
    body = {"model": "main", "max_tokens": 10, "stream": stream,
            "messages": [{"role": "user", "content": "lorem ipsum " * 4000}]}
    socks = [socket.create_connection(("127.0.0.1", g.port)) for _ in range(clients)]
    for s in socks:
        s.sendall(_request("/v1/chat/completions", body))
    assert anthropic_up.wait_until(lambda: anthropic_up.active == clients, timeout=20)
    for s in socks:
        s.close()
    assert wait_for(lambda: g.app.in_flight == 0, timeout=20)
    g.flush()
    return g


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_that_leaves_before_the_frontier_answers_still_spends_its_input(gateway, openai_up, anthropic_up,
                                                                                  stream):
    """The gateway stops the upstream call of a client that leaves (server/limits.py), but the provider has read
    (and bills) the input by then. The call's input is counted against the budget, estimated, or a client could
    buy any amount of frontier input for nothing by dropping each request before its answer."""
    import time

    import httpx

    g = _clients_leave_before_the_frontier_answers(gateway, openai_up, anthropic_up, stream, 2, budget(0.05))
    for _ in range(100):
        rows = httpx.get(g.url + "/v1/tierwise/budgets").json()
        if rows["reservations_in_flight"] == 0:
            break
        time.sleep(0.05)
    (row,) = rows["budgets"]
    # ~10,000 input tokens each at $3 per million: about $0.03 a request (the estimate, not the reservation)
    assert 0.03 < row["usd_used"] < 0.12, row
    with pytest.raises(openai.RateLimitError):  # the budget is spent
        oai(g).chat.completions.create(model="main", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
def test_images_by_url_are_reserved_for_so_concurrent_requests_do_not_overspend(two_tier, anthropic_up):
    """The reservation's input estimate was a third of the body's bytes: an image named by URL is a few dozen
    bytes there and about a thousand tokens in the upstream's count. Twelve concurrent requests of a hundred
    image URLs each reserved ~$0.016 apiece, were all admitted under a $1 budget and cost $3.60."""

    from tests.doubles import Delay

    images = 100
    usage = (images * 1000, 10)
    cost = usage[0] * 3 / 1e6 + usage[1] * 15 / 1e6  # $0.30015
    anthropic_up.default = Delay(0.5, Reply(text="seen", usage=usage))  # long enough for all to be in flight
    g = two_tier(budgets=budget(1.0))
    content = [{"type": "image", "source": {"type": "url", "url": f"https://img.example/{i}.png"}}
               for i in range(images)] + [{"type": "text", "text": "describe each"}]

    outcomes = concurrent_asks(g, content, 12)
    real = len(anthropic_up.requests) * cost
    reservation = (images * 1000 + 4000) * 3 / 1e6 + 500 * 15 / 1e6  # an upper bound of one request's
    assert "refused" in outcomes and "seen" in outcomes
    assert real <= 1.0 + reservation, (len(anthropic_up.requests), real)


def test_documents_the_upstream_fetches_are_reserved_for(two_tier, anthropic_up):
    """An Anthropic `document` block by URL is carried to the upstream as sent: a few bytes of the body, up to a
    context window of tokens (a 100-page PDF). Four concurrent requests of two PDF URLs each were all admitted
    under a $1 budget and cost $1.80."""

    from tests.doubles import Delay

    usage = (150_000, 10)
    cost = usage[0] * 3 / 1e6 + usage[1] * 15 / 1e6
    anthropic_up.default = Delay(0.5, Reply(text="read", usage=usage))
    g = two_tier(budgets=budget(1.0))
    content = [{"type": "document", "source": {"type": "url", "url": f"https://docs.example/{i}.pdf"}}
               for i in range(2)] + [{"type": "text", "text": "compare them"}]

    outcomes = concurrent_asks(g, content, 4)
    assert "refused" in outcomes and "read" in outcomes
    assert len(anthropic_up.requests) * cost <= 1.0 + (400_000 + 1000) * 3 / 1e6 + 500 * 15 / 1e6


def test_a_stored_conversation_continued_is_reserved_for(two_tier, anthropic_up):
    """A Responses request continued from a stored conversation (`previous_response_id`) has a short body and a
    long input: the reservation's estimate from the body's bytes let concurrent continuations of one long
    conversation all in under a $1 budget (eight of them cost $1.92 more)."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.doubles import Delay

    usage = (80_000, 10)
    cost = usage[0] * 3 / 1e6 + usage[1] * 15 / 1e6  # $0.24015
    anthropic_up.default = Delay(0.5, Reply(text="noted", usage=usage))
    g = two_tier(budgets=budget(1.0))
    first = oai(g).responses.create(model="main", input="remember this: " + "lorem ipsum " * 25_000,
                                    max_output_tokens=500)

    def more(i: int) -> str:
        try:
            return oai(g).responses.create(model="main", input=f"and {i}?", previous_response_id=first.id,
                                           max_output_tokens=500).output_text
        except openai.RateLimitError:
            return "refused"

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(more, range(8)))
    assert "refused" in outcomes and "noted" in outcomes
    reservation = (300_000 // 3 + 16) * 3 / 1e6 + 500 * 15 / 1e6
    assert len(anthropic_up.requests) * cost <= 1.0 + reservation, len(anthropic_up.requests)


@pytest.mark.parametrize("stream", [False, True])
def test_the_ledger_row_of_a_call_cut_by_a_leaving_client_shows_its_input(gateway, openai_up, anthropic_up, stream):
    """The provider bills the input of a call the gateway stops because its client left; the ledger row said
    $0 (a non-streamed call had no usage at all, a stream cut before its first event reported none), so the
    report showed frontier input bought for nothing. No budgets here: the ledger alone must show it."""
    g = _clients_leave_before_the_frontier_answers(gateway, openai_up, anthropic_up, stream, 1)
    (rec,) = g.ledger.query()
    assert rec.status == 499
    # ~12,000 input tokens estimated at $3 per million (nothing was answered: no output)
    assert rec.cost_usd is not None and 0.02 < rec.cost_usd < 0.06, rec.cost_usd


def test_key_route_counters_of_names_with_a_slash_are_apart(two_tier, anthropic_up, monkeypatch):
    # `key/route` was the counter's name: key `team/a` on route `x` and key `team` on route `a/x` shared one.
    monkeypatch.setenv("KEY_TA", "key-ta-secret")
    monkeypatch.setenv("KEY_T", "key-t-secret")
    anthropic_up.default = Reply(text="ok", usage=USAGE)
    route = {"policy": "fallback", "targets": ["frontier"], "retries": 0}
    g = two_tier(server={"default_route": "x", "api_keys_env": [{"env": "KEY_TA", "name": "team/a"},
                                                                 {"env": "KEY_T", "name": "team"}]},
                 routes={"x": route, "a/x": route},
                 rate_limits={"limits": [{"name": "each", "per": "key_route", "requests_per_minute": 1}]})

    def ask(key: str, model: str):
        return oai(g, api_key=key).chat.completions.create(model=model, max_tokens=10,
                                                           messages=[{"role": "user", "content": "hello"}])

    ask("key-ta-secret", "x")
    ask("key-t-secret", "a/x")  # another key on another route: its own counter
    with pytest.raises(openai.RateLimitError):
        ask("key-t-secret", "a/x")
    assert len(anthropic_up.requests) == 2
