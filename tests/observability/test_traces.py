"""Spans exported over OTLP/HTTP to a receiver on loopback: GenAI attributes, the server/client
structure (a cascade that escalates, an advisor call), events, traceparent in and out, sampling,
and message content only when enabled and never for a privacy-protected request."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2 as httpx
import pytest

from tests.doubles import Fail, Reply, ToolCall
from tests.gateway.conftest import ant, oai
from tests.observability.conftest import MSG, observed_routes
from tests.observability.otlp_receiver import OTLPReceiver, attrs
from tierwise.observability.spans import DECISION_EVENT, EVALUATION_EVENT

SERVER, CLIENT = 2, 3  # Span.SpanKind values


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    r = OTLPReceiver().start()
    yield r
    r.stop()


def tracing(url: str, **kw) -> dict:
    return {"observability": {"tracing": {"endpoint": url, "interval": 0.05, **kw}}}


def rid_of(raw) -> str:
    return raw.headers["x-tierwise-request-id"]


def test_cascade_escalation_spans(two_tier, openai_up, anthropic_up, receiver):
    g = two_tier(routes=observed_routes(), **tracing(receiver.url))
    openai_up.script(Reply(text="not sure", usage=(20, 4)))
    anthropic_up.script(Reply(text="6 * 7 = 42", usage=(40, 6), cache_read_tokens=5))
    raw = oai(g).chat.completions.with_raw_response.create(model="casc", messages=MSG)
    rid = rid_of(raw)
    assert receiver.wait_for(lambda: len(receiver.spans) >= 3)
    server, calls = receiver.by_request(rid)
    a = attrs(server.attributes)
    assert server.kind == SERVER and server.parent_span_id == b""
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.request.model"] == "casc"
    assert a["gen_ai.response.model"] == "big-model" and a["gen_ai.provider.name"] == "anthropic"
    assert a["gen_ai.usage.input_tokens"] == 60 and a["gen_ai.usage.output_tokens"] == 10
    assert a["tierwise.route"] == "casc" and a["http.response.status_code"] == 200
    assert "error.type" not in a
    assert [c.kind for c in calls] == [CLIENT, CLIENT]
    local, frontier = (attrs(c.attributes) for c in calls)
    assert local["gen_ai.provider.name"] == "openai" and local["gen_ai.request.model"] == "qwen-local"
    assert local["tierwise.locality"] == "local" and local["gen_ai.usage.input_tokens"] == 20
    assert frontier["gen_ai.request.model"] == "big-model" and frontier["gen_ai.usage.cache_read.input_tokens"] == 5
    assert calls[0].end_time_unix_nano <= calls[1].start_time_unix_nano  # escalation comes after the draft
    assert server.start_time_unix_nano <= calls[0].start_time_unix_nano
    assert calls[1].end_time_unix_nano <= server.end_time_unix_nano
    # events: the verifier's verdict (GenAI evaluation result) and the escalation decision
    names = [e.name for e in server.events]
    assert names[0] == EVALUATION_EVENT and DECISION_EVENT in names
    ev = attrs(server.events[0].attributes)
    assert ev["gen_ai.evaluation.name"] == "arithmetic" and ev["gen_ai.evaluation.score.label"] == "fail"
    decision = attrs(server.events[names.index(DECISION_EVENT)].attributes)
    assert decision["tierwise.reason_label"] == "escalate" and "escalating" in decision["tierwise.reason"]
    assert receiver.resources[0]["service.name"] == "tierwise"
    assert receiver.content_types[0] == "application/x-protobuf"


def test_advisor_call_is_its_own_client_span(two_tier, openai_up, anthropic_up, receiver):
    g = two_tier(routes=observed_routes(), **tracing(receiver.url))
    openai_up.script(Reply(tool_calls=[ToolCall("advisor", {"question": "plan?"})]), Reply(text="Done."))
    anthropic_up.script(Reply(text="Step 1.", usage=(80, 8)))
    raw = ant(g).messages.with_raw_response.create(model="adv", max_tokens=100, messages=MSG)
    rid = rid_of(raw)
    assert receiver.wait_for(lambda: len(receiver.spans) >= 4)
    server, calls = receiver.by_request(rid)
    roles = [attrs(c.attributes).get("tierwise.role") for c in calls]
    models = [attrs(c.attributes)["gen_ai.request.model"] for c in calls]
    assert models == ["qwen-local", "big-model", "qwen-local"] and roles == [None, "advisor", None]
    assert len({c.span_id for c in calls}) == 3 and all(c.trace_id == server.trace_id for c in calls)
    assert attrs(server.attributes)["tierwise.api"] == "anthropic"


def test_traceparent_is_honoured_and_passed_upstream(two_tier, openai_up, anthropic_up, receiver):
    g = two_tier(**tracing(receiver.url, trust_traceparent=True))
    trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    anthropic_up.script(Reply(text="hi"))
    r = httpx.post(g.url + "/v1/chat/completions", json={"model": "main", "messages": MSG},
                   headers={"traceparent": f"00-{trace_id}-{parent}-01"})
    assert r.status_code == 200
    assert receiver.wait_for(lambda: len(receiver.spans) >= 2)
    server, (call,) = receiver.by_request(r.headers["x-tierwise-request-id"])
    assert server.trace_id.hex() == trace_id and server.parent_span_id.hex() == parent
    sent = anthropic_up.requests[-1].headers["traceparent"]
    assert sent == f"00-{trace_id}-{call.span_id.hex()}-01"  # the upstream's parent is our client span


def test_streams_and_unsampled_parents(two_tier, openai_up, anthropic_up, receiver):
    g = two_tier(**tracing(receiver.url, trust_traceparent=True))
    anthropic_up.script(Reply(text="a b c"))
    with ant(g).messages.stream(model="main", max_tokens=50, messages=MSG) as s:
        s.get_final_message()
    assert receiver.wait_for(lambda: len(receiver.spans) >= 2)
    server = next(s for s in receiver.spans if s.kind == SERVER)
    a = attrs(server.attributes)
    assert a["gen_ai.request.stream"] is True and a["gen_ai.response.time_to_first_chunk"] > 0
    # a caller that did not sample: no spans, and the upstream hears "not sampled"
    before = len(receiver.spans)
    anthropic_up.script(Reply(text="hi"))
    r = httpx.post(g.url + "/v1/chat/completions", json={"model": "main", "messages": MSG},
                   headers={"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"})
    assert r.status_code == 200
    assert anthropic_up.requests[-1].headers["traceparent"].endswith("-00")
    g.gateway.observer.exporter.flush()
    assert len(receiver.spans) == before
    assert g.gateway.observer.exporter.encoder.fallbacks == 0  # the C writer (when built) wrote every record


def test_an_untrusted_clients_traceparent_neither_forces_sampling_nor_picks_the_trace(
        two_tier, openai_up, anthropic_up, receiver):
    """By default (`trust_traceparent: false`) a client's `traceparent` is ignored, as an edge proxy does with an
    untrusted caller's trace headers: with the sampled flag it forced every request it sent to be traced and exported
    at `sample_ratio: 0` (each request's spans queued for the OTLP receiver, crowding out the sampled ones), and the
    client chose the trace id its requests were filed under (another service's trace)."""
    g = two_tier(**tracing(receiver.url, sample_ratio=0.0))
    trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    for _ in range(5):
        anthropic_up.script(Reply(text="hi"))
        r = httpx.post(g.url + "/v1/chat/completions", json={"model": "main", "messages": MSG},
                       headers={"traceparent": f"00-{trace_id}-{parent}-01"})
        assert r.status_code == 200
        sent = anthropic_up.requests[-1].headers["traceparent"]
        assert trace_id not in sent and sent.endswith("-00")  # our own trace, unsampled as the ratio says
    g.gateway.observer.exporter.flush()
    assert receiver.spans == [], f"{len(receiver.spans)} spans exported at sample_ratio 0 for a client's traceparent"


def test_sample_ratio_zero_exports_nothing(two_tier, openai_up, anthropic_up, receiver):
    g = two_tier(**tracing(receiver.url, sample_ratio=0.0))
    for _ in range(3):
        anthropic_up.script(Reply(text="hi"))
        oai(g).chat.completions.create(model="main", messages=MSG)
    g.gateway.observer.exporter.flush()
    assert receiver.spans == []


def test_no_endpoint_no_spans_no_traceparent(two_tier, openai_up, anthropic_up):
    g = two_tier()
    anthropic_up.script(Reply(text="hi"))
    oai(g).chat.completions.create(model="main", messages=MSG)
    assert g.gateway.observer.exporter is None
    assert "traceparent" not in anthropic_up.requests[-1].headers


def test_content_only_when_enabled_and_never_when_protected(two_tier, openai_up, anthropic_up, receiver,
                                                            monkeypatch):
    secret = "my secret question 6 * 7"
    msgs = [{"role": "user", "content": secret}]
    # off by default
    g = two_tier(**tracing(receiver.url))
    anthropic_up.script(Reply(text="hi"))
    rid = rid_of(oai(g).chat.completions.with_raw_response.create(model="main", messages=msgs))
    assert receiver.wait_for(lambda: any(s.kind == SERVER for s in receiver.spans))
    server, _ = receiver.by_request(rid)
    assert secret not in server.SerializeToString().decode("latin-1")
    # enabled: the input messages are on the server span
    g2 = two_tier(**tracing(receiver.url, capture_content=True))
    anthropic_up.script(Reply(text="hi"))
    rid2 = rid_of(oai(g2).chat.completions.with_raw_response.create(model="main", messages=msgs))
    assert receiver.wait_for(lambda: any(attrs(s.attributes).get("tierwise.request_id") == rid2
                                         for s in receiver.spans))
    server2, _ = receiver.by_request(rid2)
    assert secret in attrs(server2.attributes)["gen_ai.input.messages"]
    # enabled, but the privacy guard marked the request protected: no content
    gw3 = two_tier(**tracing(receiver.url, capture_content=True))
    real_context = gw3.gateway.context

    def protected_context(*a, **kw):
        ctx = real_context(*a, **kw)
        ctx.notes["privacy_protected"] = True
        return ctx

    monkeypatch.setattr(gw3.gateway, "context", protected_context)
    anthropic_up.script(Reply(text="hi"))
    rid3 = rid_of(oai(gw3).chat.completions.with_raw_response.create(model="main", messages=msgs))
    assert receiver.wait_for(lambda: any(attrs(s.attributes).get("tierwise.request_id") == rid3
                                         for s in receiver.spans))
    server3, _ = receiver.by_request(rid3)
    assert "gen_ai.input.messages" not in attrs(server3.attributes)
    assert secret not in server3.SerializeToString().decode("latin-1")


def test_full_queue_drops_and_counts(two_tier, openai_up, anthropic_up):
    # a receiver that is not there: exports fail, requests are unaffected, drops are counted
    cfg = {"observability": {"metrics": {"enabled": True},
                             "tracing": {"endpoint": "http://127.0.0.1:9/v1/traces", "interval": 0.05,
                                         "timeout": 0.5, "queue_size": 1}}}
    g = two_tier(**cfg)
    for _ in range(3):
        anthropic_up.script(Reply(text="hi"))
        oai(g).chat.completions.create(model="main", messages=MSG)
    exp = g.gateway.observer.exporter
    exp.flush()
    assert exp.dropped == 3 and exp.exported == 0
    body = httpx.get(g.url + "/metrics").text
    assert "tierwise_trace_spans_dropped_total 3.0" in body


def test_privacy_guard_keeps_content_out_and_its_actions_are_counted(gateway, openai_up, anthropic_up, receiver):
    from tests.observability.conftest import scrape, total
    from tests.privacy.support import SEEDS, echo_placeholders, privacy_config

    anthropic_up.default = echo_placeholders
    cfg = privacy_config(openai_up.url, anthropic_up.url,
                         {"main": {"policy": "fallback", "targets": ["frontier", "local"], "retries": 0}})
    cfg["observability"] = {"metrics": {"enabled": True},
                            **tracing(receiver.url, capture_content=True)["observability"]}
    g = gateway(cfg)
    secret = f"Mail {SEEDS['EMAIL_ADDRESS']} about the invoice."
    rid = rid_of(oai(g).chat.completions.with_raw_response.create(
        model="main", messages=[{"role": "user", "content": secret}]))
    plain = "What is the capital of France?"
    rid2 = rid_of(oai(g).chat.completions.with_raw_response.create(
        model="main", messages=[{"role": "user", "content": plain}]))
    assert receiver.wait_for(lambda: {rid, rid2} <= {attrs(s.attributes).get("tierwise.request_id")
                                                     for s in receiver.spans})
    protected, _ = receiver.by_request(rid)
    assert "gen_ai.input.messages" not in attrs(protected.attributes)
    assert SEEDS["EMAIL_ADDRESS"] not in b"".join(s.SerializeToString() for s in receiver.spans).decode("latin-1")
    unprotected, _ = receiver.by_request(rid2)
    assert plain in attrs(unprotected.attributes)["gen_ai.input.messages"]
    m = scrape(g.url)
    assert total(m, "tierwise_privacy_actions_total", action="redacted", data_class="pii") == 1


def test_gateway_secrets_never_reach_spans(two_tier, openai_up, anthropic_up, receiver, monkeypatch):
    """An upstream error that echoes the gateway's upstream key: the decision's reason on the span is scrubbed."""
    key = "sk-test-observe-0123456789abcdefSECRET"
    monkeypatch.setenv("OBS_UPSTREAM_KEY", key)
    cfg = tracing(receiver.url, capture_content=True)
    g = two_tier(**cfg)
    g.gateway.cfg.providers["cloud"].api_key_env = "OBS_UPSTREAM_KEY"
    from tierwise.secret_scrub import register

    register([key])
    anthropic_up.script(Fail(500, f"bad key {key}"))
    openai_up.script(Reply(text="fine"))
    rid = rid_of(oai(g).chat.completions.with_raw_response.create(
        model="main", messages=[{"role": "user", "content": f"my key is {key}"}]))
    assert receiver.wait_for(lambda: any(attrs(s.attributes).get("tierwise.request_id") == rid
                                         for s in receiver.spans))
    blob = b"".join(s.SerializeToString() for s in receiver.spans)
    assert key.encode() not in blob
    server, _ = receiver.by_request(rid)
    assert any(e.name == "tierwise.decision" for e in server.events)


def test_library_use_exports_from_each_event_loop(tmp_path, receiver):
    """The exporter runs on the loop of the requests it sees: observed from one `asyncio.run` and
    then another (library use), the spans of both runs are exported."""
    import asyncio

    from tests.harness import make_config, two_tier_config
    from tierwise.canonical import Message, Request, TextBlock, Usage
    from tierwise.server.build import build_gateway

    gw = build_gateway(make_config(two_tier_config("http://127.0.0.1:1", "http://127.0.0.1:2",
                                                   **tracing(receiver.url, interval=0.05)), tmp_path))
    req = Request(model="main", messages=[Message(role="user", content=[TextBlock("hi")])])

    async def one(rid: str, last: bool = False) -> None:
        ctx = gw.context("main", rid, "openai", "main")
        s = ctx.trace.call("frontier", model="big-model", provider="cloud", locality="remote")
        s.ok, s.status, s.usage, s.latency_ms = True, 200, Usage(10, 20), 1.0
        gw.observer.finished(ctx, req, status=200, stream=False, latency_ms=2.0, ttft_ms=None, error=None)
        deadline = asyncio.get_running_loop().time() + 60
        # The exporter exports on this loop while it runs: wait for this request's span (a fixed 0.5 s was not
        # enough when the loop stalled; the run ended first and the span was never sent).
        while rid not in {attrs(x.attributes).get("tierwise.request_id") for x in list(receiver.spans)}:
            assert asyncio.get_running_loop().time() < deadline, f"{rid}: its span was never exported"
            await asyncio.sleep(0.02)
        if last:
            await gw.observer.aclose()

    asyncio.run(one("req_lib_first"))
    asyncio.run(one("req_lib_second", last=True))
    got = {attrs(s.attributes).get("tierwise.request_id") for s in receiver.spans if s.kind == SERVER}
    assert got == {"req_lib_first", "req_lib_second"}


def _text_held(keys) -> int:
    """Characters of the strings in cache keys (tuples of labels)."""
    return sum(len(x) for k in keys for x in (k if isinstance(k, tuple) else (k,)) if isinstance(x, str))


def test_a_clients_long_model_names_are_not_kept_whole(two_tier, openai_up, anthropic_up, receiver):
    """With a pattern route any `model` is accepted, up to the body limit: the span writer caches a server span's
    head by the name asked for, so every distinct long name stayed in memory whole (10,000 of them: up to the
    body limit each). The observer keeps the name to 256 characters, as the ledger does."""
    routes = {**observed_routes(), "gpt-*": {"policy": "fallback", "targets": ["local"], "retries": 0}}
    g = two_tier(routes=routes, observability={"metrics": {"enabled": True},
                                               "tracing": {"endpoint": receiver.url, "interval": 0.05}})
    names = [f"gpt-{i}-" + "x" * 100_000 for i in range(3)]
    for name in names:
        r = httpx.post(g.url + "/v1/chat/completions", json={"model": name, "messages": MSG}, timeout=30)
        assert r.status_code == 200 and r.json()["model"] == name  # the client still reads its own name
    assert receiver.wait_for(lambda: len([s for s in receiver.spans if s.kind == SERVER]) >= 3)
    assert sorted(attrs(s.attributes)["gen_ai.request.model"] for s in receiver.spans if s.kind == SERVER) == \
        [n[:256] for n in names]
    enc = g.gateway.observer.exporter.encoder
    held = _text_held([*enc._servers, *(k for d in enc._native_heads for k in d)])
    assert held < 3 * 1000, held


def test_a_reason_quoting_a_protected_value_leaves_it_out_of_spans_and_the_dashboard(
        two_tier, openai_up, anthropic_up, receiver):
    """A schema verifier's reason quotes the answer's value; with a privacy section the ledger keeps such a
    reason with the value replaced, but the span event (sent to the collector) and the dashboard's trace of a
    recent request (read from memory) carried it as it was."""
    schema = {"type": "object", "properties": {"account": {"type": "string", "pattern": "^ACC"}}}
    g = two_tier(routes={"casc": {"policy": "cascade", "tiers": ["local", "frontier"],
                                  "verifiers": [{"type": "json_schema", "schema": schema}]}},
                 server={}, observability={"dashboard": {"enabled": True},
                                           "tracing": {"endpoint": receiver.url, "interval": 0.05}},
                 privacy={"classes": {"secrets": {}, "customer": {"detectors": ["CUSTOMER_ID", "EMAIL_ADDRESS"]}},
                          "user": {"patterns": {"CUSTOMER_ID": [r"CUST-\d{6}"]}}})
    openai_up.script(Reply(text='{"account": "CUST-123456 bob@example.com"}'))
    rid = rid_of(oai(g).chat.completions.with_raw_response.create(model="casc", messages=MSG))
    assert receiver.wait_for(lambda: any(s.kind == SERVER for s in receiver.spans))
    g.flush()
    server, _ = receiver.by_request(rid)
    said = " ".join(str(v) for e in server.events for v in attrs(e.attributes).values())
    trace = httpx.get(g.url + f"/dashboard/api/trace?id={rid}").text
    stored = " ".join(str(s.get("reason")) for s in g.ledger.get(rid).steps)
    for text in (said, trace, stored):
        assert "<CUSTOMER_ID> <EMAIL_ADDRESS>" in text, text
        assert "CUST-123456" not in text and "bob@example.com" not in text
