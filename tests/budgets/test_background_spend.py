"""Background calls (a learning loop's judge calls and shadow runs) count in the budgets that cover their route.

Before, an evaluation's calls had a trace of their own and no reservation: a global `usd` budget smaller than what
the loop spent on judging did not hold (the frontier double was paid past it, bounded only by the request rate).
Here the client's answers are free (both tiers of the reflective route are local models) and only the judge is
paid, so everything the paid double is asked is evaluation spend.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from tests.budgets.conftest import REDIS_URL, STORE_TIMEOUT_S  # the `redis_prefix` fixture's Redis
from tests.doubles import Reply
from tests.doubles.script import Delay, SlowStream
from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401 (the same fixtures)
from tests.harness import two_tier_config, wait_for

JUDGE_USAGE = (40, 400)
JUDGE_COST = JUDGE_USAGE[0] * 3 / 1e6 + JUDGE_USAGE[1] * 15 / 1e6  # $0.00612 per judge call
LIMIT = 0.02  # three judge calls and a bit
REQUESTS = 12  # ... of the twelve the loop would judge ($0.073)
BATCH = 6
SUMMARY = "Summarize the following article in three sentences: the council met on Tuesday to discuss the budget."


def judged_config(openai_up, anthropic_up, store: dict | None = None, **budgets):  # noqa: F811
    """A reflective route whose two tiers are local models on the OpenAI double and whose judge is the paid model
    on the Anthropic double; every request judged; one global budget of LIMIT."""
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={"main": {
        "policy": "reflective", "local": "local", "frontier": "big-local", "judge": "frontier",
        "quality_target": 0.6, "sampling": "rules", "schedule": {"first_uses": 1000, "shadow_stop_after": 10_000},
        "value": {"explore": "shadow"}, "within": {"enabled": False}, "request_model": {"kind": "none"}}})
    cfg["models"]["big-local"] = {"provider": "localsrv", "model": "qwen-big", "context_window": 8192}
    cfg["ledger"]["store_text"] = True
    cfg["budgets"] = {"limits": [{"name": "everything", "per": "global", "usd": LIMIT}],
                      "routes": {"main": {"on_exhausted": "downgrade", "downgrade_to": "local"}},
                      **({"store": store} if store else {}), **budgets}
    return cfg


def judge(rec):
    assert "You are grading" in json.dumps(rec.body)  # the paid model is only ever the judge here
    return Reply(text="The answer covers the main points.\nVERDICT: good", usage=JUDGE_USAGE)


def run(g, openai_up, anthropic_up, api_key: str = "test"):  # noqa: F811
    """REQUESTS requests, BATCH at a time (their evaluations run side by side), each batch's evaluations ended
    before the next batch: the clients' answers."""
    from concurrent.futures import ThreadPoolExecutor

    openai_up.default = Reply(text="local summary", usage=(10, 10))
    anthropic_up.default = judge
    route = g.gateway.resolve("main")
    client = oai(g, api_key=api_key)

    def ask(i: int) -> str:
        return client.chat.completions.create(model="main", max_tokens=50, messages=[
            {"role": "user", "content": f"{SUMMARY} #{i}"}]).choices[0].message.content

    answers: list[str] = []
    with ThreadPoolExecutor(BATCH) as pool:
        for start in range(0, REQUESTS, BATCH):
            answers += pool.map(ask, range(start, start + BATCH))
            assert wait_for(lambda: not route._background, timeout=30)
    g.flush()
    return route, answers


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_a_global_budget_holds_against_the_loops_judge_calls(gateway, openai_up, anthropic_up,  # noqa: F811
                                                             redis_prefix, backend):
    store = {"backend": "redis", "redis_url": REDIS_URL, "key_prefix": redis_prefix, "timeout": STORE_TIMEOUT_S} if backend == "redis" else None
    g = gateway(judged_config(openai_up, anthropic_up, store))
    route, answers = run(g, openai_up, anthropic_up)
    assert answers == ["local summary"] * REQUESTS  # every client answered, as without a budget
    spent = len(anthropic_up.requests) * JUDGE_COST  # what the paid upstream was asked for, at its prices
    # "remaining" admission: a call starts while the budget is not spent, so it overshoots by one call at most
    assert spent <= LIMIT + JUDGE_COST, (len(anthropic_up.requests), spent)
    assert len(anthropic_up.requests) >= int(LIMIT // JUDGE_COST)  # and it was spent up to there
    evals = [r for r in g.ledger.query(kind="eval")]
    skipped = [r for r in evals if (r.extra or {}).get("evaluation", {}).get("skipped")]
    judged = [r for r in evals if (r.extra or {}).get("evaluation", {}).get("grade")]
    assert skipped and len(judged) == len(anthropic_up.requests)
    ev = skipped[0].extra["evaluation"]
    assert "budget 'everything' is spent" in ev["skipped"] and ev["grade"] is None and ev["accepted"] is None
    step = next(s for s in skipped[0].steps if s["kind"] == "decision" and s["name"] == "budget")
    assert step["detail"]["action"] == "skip" and step["detail"]["budget"] == "everything"
    # a skipped evaluation is no evidence: the loop holds exactly the judged verdicts
    st = route.loop.boundary.state("summarisation")
    assert st.total_judged == len(judged), (st, len(judged))
    from tierwise.learning.evidence import verdicts

    assert len(list(verdicts(g.ledger, route="main"))) == len(judged)
    # the evaluation spend is in the budget's own account
    def status():
        return asyncio.run_coroutine_threadsafe(g.gateway.spend.status(), g.loop).result(10)

    assert wait_for(lambda: status()["reservations_in_flight"] == 0)  # every reservation settled (Redis: soon)
    row = next(r for r in status()["budgets"] if r["budget"] == "everything")
    assert row["usd_used"] == pytest.approx(spent, abs=1e-6)


def test_without_a_budget_every_evaluation_runs(gateway, openai_up, anthropic_up):  # noqa: F811
    """The reference the test above is read against: the loop judges all twelve ($0.073, over the $0.02)."""
    cfg = judged_config(openai_up, anthropic_up)
    del cfg["budgets"]
    g = gateway(cfg)
    _, answers = run(g, openai_up, anthropic_up)
    assert answers == ["local summary"] * REQUESTS
    assert len(anthropic_up.requests) == REQUESTS and REQUESTS * JUDGE_COST > LIMIT


def test_a_key_budget_pays_for_its_evaluations_only_when_charge_key_is_set(gateway, openai_up, anthropic_up,  # noqa: F811
                                                                          monkeypatch):
    monkeypatch.setenv("TW_EB_KEY", "eval-budget-key-1")
    for charge_key in (False, True):
        anthropic_up.requests.clear()
        cfg = judged_config(openai_up, anthropic_up, background={"charge_key": charge_key})
        cfg["budgets"]["limits"] = [{"name": "per-key", "per": "key", "usd": LIMIT}]
        cfg["server"]["api_keys_env"] = ["TW_EB_KEY"]
        g = gateway(cfg)
        _, answers = run(g, openai_up, anthropic_up, "eval-budget-key-1")
        assert answers == ["local summary"] * REQUESTS
        judged = len(anthropic_up.requests)
        if charge_key:
            assert judged * JUDGE_COST <= LIMIT + JUDGE_COST, judged
        else:  # a key's budget pays for its own answers; the evaluations are the operator's (global/route/model)
            assert judged == REQUESTS
        g.stop()


def test_a_failed_judge_call_gives_its_reservation_back(gateway, openai_up, anthropic_up):  # noqa: F811
    """A judge call the upstream refuses (500) bills nothing: its reservation is released, the evaluation is a
    failure (no verdict, not a skip), and the budget is whole for the next ones."""
    from tests.doubles.script import Fail

    g = gateway(judged_config(openai_up, anthropic_up))
    openai_up.default = Reply(text="local summary", usage=(10, 10))
    anthropic_up.default = Fail(500)
    route = g.gateway.resolve("main")
    for i in range(3):
        assert oai(g).chat.completions.create(model="main", max_tokens=50, messages=[
            {"role": "user", "content": f"{SUMMARY} #{i}"}]).choices[0].message.content == "local summary"
        assert wait_for(lambda: not route._background, timeout=30)
    assert anthropic_up.requests  # the judge was asked (and refused)
    status = asyncio.run_coroutine_threadsafe(g.gateway.spend.status(), g.loop).result(10)
    assert status["reservations_in_flight"] == 0
    row = next(r for r in status["budgets"] if r["budget"] == "everything")
    assert row["usd_used"] == 0
    assert route.loop.boundary.state("summarisation").total_judged == 0


FILLER = "\n\n".join(f"Paragraph {i} is about the weather in town {i}: rain, sun and wind. " * 3 for i in range(40))


# A summary call's usage: its input counted as an honest upstream would count the ~8,000 characters sent (before
# session 37 the judge's 40 input tokens served; since costs9 a count below the text's ÷ 32 is billed the estimate).
SUMMARY_USAGE = (2_000, 200)
SUMMARY_COST = SUMMARY_USAGE[0] * 3 / 1e6 + SUMMARY_USAGE[1] * 15 / 1e6  # $0.009 per summary: two fit in LIMIT


def summarised_config(openai_up, anthropic_up, store: dict | None = None):  # noqa: F811
    """A local route `loc` whose long contexts a remote model (the paid double) summarises; one global budget."""
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={"loc": ["local"], "main": ["frontier"]},
                          compression={"routes": {"loc": {"method": "summary", "summary_model": "frontier",
                                                          "min_tokens": 100}}})
    cfg["budgets"] = {"limits": [{"name": "everything", "usd": LIMIT}], **({"store": store} if store else {})}
    return cfg


def ask_loc(g, i: int, long: bool = True) -> str:
    first = f"Read this (#{i}):\n\n{FILLER}" if long else f"Hello #{i}."
    return oai(g).chat.completions.create(model="loc", max_tokens=50, messages=[
        {"role": "user", "content": first}, {"role": "assistant", "content": "Done."},
        {"role": "user", "content": "Which town has sun?"}]).choices[0].message.content


def store_of(backend: str, prefix: str) -> dict | None:
    return {"backend": "redis", "redis_url": REDIS_URL, "key_prefix": prefix, "timeout": STORE_TIMEOUT_S} if backend == "redis" else None


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_a_remote_context_summariser_is_the_requests_spend(gateway, openai_up, anthropic_up, redis_prefix,  # noqa: F811
                                                           backend):
    """`compression.routes.<r>.summary_model` calls its model on the request's own trace: its calls count in the
    request's budgets (before session 22: in none, 12 summaries paid $0.0734 of a $0.02 budget). A summary the
    budget refuses is skipped and the local route answers with the whole context."""
    g = gateway(summarised_config(openai_up, anthropic_up, store_of(backend, redis_prefix)))
    openai_up.default = Reply(text="local answer", usage=(10, 10))
    anthropic_up.default = Reply(text="a short summary", usage=SUMMARY_USAGE)
    answers = [ask_loc(g, i) for i in range(REQUESTS)]
    assert answers == ["local answer"] * REQUESTS  # a local route: a spent frontier budget refuses none of them
    assert int(LIMIT // SUMMARY_COST) <= len(anthropic_up.requests) <= int(LIMIT // SUMMARY_COST) + 1
    g.flush()
    row = next(r for r in g.ledger.query(route="loc") if any(
        s["kind"] == "decision" and s["name"] == "compression" and "budget refused" in s.get("reason", "")
        for s in r.steps))
    assert any(s["kind"] == "decision" and s["name"] == "budget" for s in row.steps)

    def status():
        return asyncio.run_coroutine_threadsafe(g.gateway.spend.status(), g.loop).result(10)

    assert wait_for(lambda: status()["reservations_in_flight"] == 0)
    used = next(r for r in status()["budgets"] if r["budget"] == "everything")["usd_used"]
    assert used == pytest.approx(len(anthropic_up.requests) * SUMMARY_COST, abs=1e-6)  # counted once each


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_a_context_summariser_that_does_not_run_reserves_nothing(gateway, openai_up, anthropic_up,  # noqa: F811
                                                                 redis_prefix, backend):
    """A route's remote summariser runs only on long contexts. Before, it was in the route's plan: every request of
    the local route reserved the summariser's price, and once the budget was spent (by summaries) a short request,
    which calls no remote model, was refused 429 by a frontier budget."""
    g = gateway(summarised_config(openai_up, anthropic_up, store_of(backend, redis_prefix)))
    openai_up.default = Reply(text="local answer", usage=(10, 10))
    anthropic_up.default = Reply(text="a short summary", usage=SUMMARY_USAGE)
    for i in range(REQUESTS):  # long contexts: summaries spend the budget
        ask_loc(g, i)
    summaries = len(anthropic_up.requests)
    assert summaries * SUMMARY_COST >= LIMIT  # spent
    assert [ask_loc(g, i, long=False) for i in range(3)] == ["local answer"] * 3  # no summary: nothing to refuse
    assert len(anthropic_up.requests) == summaries


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_a_streamed_background_call_is_admitted_and_charged(gateway, openai_up, anthropic_up, redis_prefix,  # noqa: F811
                                                            backend):
    """A background context's streamed remote call goes through the same per-call admission as a non-streamed
    one: reserved before it leaves, charged its real cost, skipped once the budget is spent. Before, `stream`
    bypassed the seam: every streamed call went out and the budget counted none of them."""
    from tierwise.budgets.background import BudgetSkipped, charge_background
    from tierwise.canonical import Message, Request, TextBlock

    cfg = judged_config(openai_up, anthropic_up, store_of(backend, redis_prefix))
    g = gateway(cfg)
    anthropic_up.default = Reply(text="streamed judge words", usage=JUDGE_USAGE)

    async def one(i: int) -> str:
        ctx = g.gateway.context("main", f"bgstream{i}", None, "main")
        charge_background(ctx)
        req = Request(model="frontier", messages=[Message("user", [TextBlock("grade this")])], max_tokens=400,
                      stream=True)
        it = await g.gateway.resolve("frontier").stream(req, ctx)
        return "".join([ev.value for c in [c async for c in it] for ev in c.events if hasattr(ev, "value")])

    def run_one(i: int):
        return asyncio.run_coroutine_threadsafe(one(i), g.loop).result(20)

    outcomes = []
    for i in range(6):
        try:
            outcomes.append(run_one(i))
        except BudgetSkipped:
            outcomes.append("skipped")
    calls = len(anthropic_up.requests)
    assert calls * JUDGE_COST <= LIMIT + JUDGE_COST, outcomes  # the cap holds, to within one call
    assert "skipped" in outcomes and outcomes[0] == "streamed judge words"

    def status():
        return asyncio.run_coroutine_threadsafe(g.gateway.spend.status(), g.loop).result(10)

    assert wait_for(lambda: status()["reservations_in_flight"] == 0)
    used = next(r for r in status()["budgets"] if r["budget"] == "everything")["usd_used"]
    assert used == pytest.approx(calls * JUDGE_COST, abs=1e-6)  # each stream charged what it cost


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_a_background_stream_its_reader_drops_is_charged_what_it_relayed(gateway, openai_up, anthropic_up,  # noqa: F811
                                                                          redis_prefix, backend):
    """A background stream closed after its first chunk is settled after the stream's own end: its step has the
    usage of what it relayed and the input reported at its start (settled before that end, it counted $0)."""
    from tierwise.budgets.background import charge_background
    from tierwise.canonical import Message, Request, TextBlock

    g = gateway(judged_config(openai_up, anthropic_up, store_of(backend, redis_prefix)))
    anthropic_up.default = SlowStream(0.01, Reply(text="word " * 400, usage=JUDGE_USAGE))

    async def cut() -> None:
        ctx = g.gateway.context("main", "bgcut", None, "main")
        charge_background(ctx)
        req = Request(model="frontier", messages=[Message("user", [TextBlock("grade " * 1000)])], max_tokens=400,
                      stream=True)
        it = await g.gateway.resolve("frontier").stream(req, ctx)
        async for _ in it:
            break
        await it.aclose()

    asyncio.run_coroutine_threadsafe(cut(), g.loop).result(20)

    def status():
        return asyncio.run_coroutine_threadsafe(g.gateway.spend.status(), g.loop).result(10)

    assert wait_for(lambda: status()["reservations_in_flight"] == 0)
    used = next(r for r in status()["budgets"] if r["budget"] == "everything")["usd_used"]
    # the input the upstream reported at the stream's start, and the output it relayed
    assert used > JUDGE_USAGE[0] * 3 / 1e6


def test_a_background_call_that_outlives_reservation_ttl_keeps_its_reservation(gateway, openai_up, anthropic_up,  # noqa: F811
                                                                                redis_prefix):
    """The Redis reservation of a background call is renewed while the call runs, as a request's is. Before, a
    judge call longer than reservation_ttl lost its reservation mid-way: the next admission gave it back, and
    another request and its evaluation were admitted in its place (2 judge calls, $0.0122, against a $0.005 cap
    one call's reservation fills)."""
    import redis

    cfg = judged_config(openai_up, anthropic_up, store_of("redis", redis_prefix), reservation_ttl=10)
    cfg["budgets"]["limits"][0]["usd"] = 0.005  # less than one judge call's reservation
    cfg["providers"]["cloud"]["timeouts"] = {"connect": 1, "read": 30}
    g = gateway(cfg)
    openai_up.default = Reply(text="local summary", usage=(10, 10))
    asked: list[int] = []

    def slow_first(rec):
        asked.append(1)
        return Delay(14, judge(rec)) if len(asked) == 1 else judge(rec)

    anthropic_up.default = slow_first
    route = g.gateway.resolve("main")
    client = oai(g)
    ask = lambda i: client.chat.completions.create(model="main", max_tokens=50, messages=[  # noqa: E731
        {"role": "user", "content": f"{SUMMARY} #{i}"}]).choices[0].message.content
    assert ask(0) == "local summary"
    assert wait_for(lambda: len(anthropic_up.requests) == 1, timeout=20)  # the first judge call is running
    r = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    (_, first_deadline), = r.zrange(redis_prefix + "reservations", 0, -1, withscores=True)
    while time.time() < first_deadline + 1:  # past the admission's deadline, the call still running
        time.sleep(0.2)
    assert route._background, "the judge call ended before its first deadline: the test proves nothing"
    assert ask(1) == "local summary"
    assert wait_for(lambda: not route._background, timeout=30)
    r.close()
    assert len(anthropic_up.requests) == 1, len(anthropic_up.requests)  # no second judge call
    g.flush()  # the live judge call's reservation still filled the budget: the second request was downgraded
    assert any(s["kind"] == "decision" and s["name"] == "budget" and "is spent" in s["reason"]
               for row in g.ledger.query(route="main", kind="chat") for s in row.steps)


@pytest.mark.parametrize("backend", ["memory", "redis"])
@pytest.mark.parametrize("how", ["closed", "dropped"])
def test_a_background_stream_closed_or_dropped_before_its_first_chunk_gives_its_reservation_back(
        gateway, openai_up, anthropic_up, redis_prefix, backend, how):  # noqa: F811
    """The stream's settlement lived in an async generator's `finally`, which runs only once the generator has
    started: a background stream closed before its first chunk, or never read and dropped, kept its reservation
    (on Redis renewed for up to six hours), and the budget refused others in its place. Now it is settled; its
    call counts as one its client left before the first event (the input the upstream read), and the upstream's
    connection is closed."""
    import gc

    from tierwise.budgets.background import charge_background
    from tierwise.canonical import Message, Request, TextBlock

    g = gateway(judged_config(openai_up, anthropic_up, store_of(backend, redis_prefix)))
    anthropic_up.default = Delay(0.3, Reply(text="word " * 40, usage=JUDGE_USAGE))

    async def unread() -> None:
        ctx = g.gateway.context("main", f"bgunread-{how}", None, "main")
        charge_background(ctx)
        req = Request(model="frontier", messages=[Message("user", [TextBlock("grade " * 1000)])], max_tokens=400,
                      stream=True)
        it = await g.gateway.resolve("frontier").stream(req, ctx)
        if how == "closed":
            await it.aclose()
        else:
            del it
            gc.collect()

    asyncio.run_coroutine_threadsafe(unread(), g.loop).result(20)

    def status():
        return asyncio.run_coroutine_threadsafe(g.gateway.spend.status(), g.loop).result(10)

    assert wait_for(lambda: status()["reservations_in_flight"] == 0)
    used = next(r for r in status()["budgets"] if r["budget"] == "everything")["usd_used"]
    assert 0 < used < (1000 + 400) * 15 / 1e6  # the input it sent, not the reservation's worst case
    assert g.gateway.resolve("frontier").breaker.state == "closed"
