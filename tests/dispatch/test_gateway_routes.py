"""A gateway route whose target is a capability: the client's request (official SDK) is served
by a worker, the ledger row carries what answered on the worker, a stream request works, and a
fallback moves on when no worker serves the capability."""

from __future__ import annotations

import openai
import pytest

from tests.dispatch.conftest import REDIS_URL, echo, running_worker, worker_config
from tests.harness import two_tier_config
from tierwise.dispatch.client import Dispatcher


async def test_capability_route_through_the_gateway(gateway, openai_up, anthropic_up, redis_prefix, tmp_path):
    openai_up.default = echo()
    anthropic_up.default = "from the frontier"
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={
        "main": {"capability": "classify"},  # the shorthand
        "safe": {"policy": "fallback", "targets": [{"capability": "classify", "priority": "high"}, "frontier"],
                 "retries": 0},
        "nobody": {"policy": "fallback", "targets": [{"capability": "summarise"}, "frontier"], "retries": 0},
    }, dispatch={"redis_url": REDIS_URL, "prefix": redis_prefix, "tenant": "acme", "timeout": 10})
    g = gateway(cfg)
    client = openai.AsyncOpenAI(base_url=g.url + "/v1", api_key="test", max_retries=0)
    async with running_worker(worker_config(openai_up.url, redis_prefix, worker_id="gpu-1"), tmp_path / "w"):
        r = await client.chat.completions.create(model="main", messages=[{"role": "user", "content": "spam?"}])
        assert r.choices[0].message.content == "echo:spam?"
        assert r.usage is not None and (r.usage.prompt_tokens, r.usage.completion_tokens) == (5, 2)
        r = await client.chat.completions.create(model="safe", messages=[{"role": "user", "content": "ham?"}])
        assert r.choices[0].message.content == "echo:ham?"
        chunks = await client.chat.completions.create(model="main", stream=True,
                                                      messages=[{"role": "user", "content": "streamed"}])
        text = "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])
        assert text == "echo:streamed"
        r = await client.chat.completions.create(model="nobody", messages=[{"role": "user", "content": "x"}])
        assert r.choices[0].message.content == "from the frontier"
    await client.close()
    g.flush()
    rows = {row.route: row for row in g.ledger.query()}
    assert rows["main"].locality == "local" and rows["main"].model == "small-model"
    assert (rows["main"].input_tokens, rows["main"].output_tokens) == (5, 2)
    step = next(s for s in rows["main"].steps if s.get("kind") == "call")
    assert step["name"] == "main" and step["detail"]["worker"] == "gpu-1"
    assert rows["nobody"].model == "big-model"
    assert any("no worker serves capability 'summarise'" in (s.get("reason") or "") for s in rows["nobody"].steps)
    assert len(openai_up.requests) == 3  # the worker's model served main (twice) and safe
    # `tierwise trace` says which model and which worker answered (not only the route's name)
    import yaml
    from click.testing import CliRunner

    from tierwise.cli import main

    (tmp_path / "t.yaml").write_text(yaml.safe_dump({"ledger": {"path": str(g.ledger.path)}}))
    out = CliRunner().invoke(main, ["trace", rows["main"].request_id, "-c", str(tmp_path / "t.yaml")])
    assert "answered by: main (local), model small-model, worker gpu-1" in out.output, out.output


async def test_privacy_policy_keeps_protected_requests_in_the_local_zone(gateway, openai_up, anthropic_up,
                                                                         redis_prefix, tmp_path):
    """The gateway's privacy boundary guards its own remote models; a capability may be served by a
    remote machine, so a request the policy would redact or refuse before a remote call is
    dispatched to local workers only."""
    from tests.privacy.support import privacy_config

    openai_up.default = echo()
    cfg = privacy_config(openai_up.url, anthropic_up.url, {"main": {"capability": "classify"}},
                         policy={"pii": "redact", "secrets": "block"})
    cfg["dispatch"] = {"redis_url": REDIS_URL, "prefix": redis_prefix, "tenant": "acme", "timeout": 10}
    g = gateway(cfg)
    client = openai.AsyncOpenAI(base_url=g.url + "/v1", api_key="test", max_retries=0)
    remote = worker_config(openai_up.url, redis_prefix, worker_id="cloud-1", locality="remote",
                           provider_locality="remote")
    async with running_worker(remote, tmp_path / "w"):
        r = await client.chat.completions.create(model="main", messages=[{"role": "user", "content": "hello"}])
        assert r.choices[0].message.content == "echo:hello"
        with pytest.raises(openai.APIStatusError) as e:
            await client.chat.completions.create(
                model="main", messages=[{"role": "user", "content": "mail jane.doe@example.com the invoice"}])
        assert e.value.status_code == 503 and "local-only capability 'classify'" in str(e.value)
        assert len(openai_up.requests) == 1  # the remote worker never saw the address
        local = worker_config(openai_up.url, redis_prefix, worker_id="gpu-1")
        async with running_worker(local, tmp_path / "l"):
            r = await client.chat.completions.create(
                model="main", messages=[{"role": "user", "content": "mail jane.doe@example.com the invoice"}])
            assert r.choices[0].message.content == "echo:mail jane.doe@example.com the invoice"
    await client.close()
    g.flush()
    served = {(next(s for s in x.steps if s.get("kind") == "call")["detail"]["worker"], x.locality)
              for x in g.ledger.query() if x.status == 200}
    assert served == {("cloud-1", "remote"), ("gpu-1", "local")}


async def test_ensembles_on_both_sides_of_the_wire(gateway, openai_up, anthropic_up, redis_prefix, tmp_path):
    """A worker's capability backed by an ensemble; and a gateway ensemble whose agent names a
    capability route, so that step of the DAG runs on a worker."""
    import yaml

    openai_up.default = echo()
    wdir, gdir = tmp_path / "w", tmp_path / "g"
    wdir.mkdir()
    gdir.mkdir()
    (wdir / "pipe.yaml").write_text(yaml.safe_dump({"name": "pipe", "agents": [
        {"name": "first", "model": "small"}, {"name": "second", "model": "small", "depends_on": ["first"]}]}))
    wcfg = worker_config(openai_up.url, redis_prefix, worker_id="gpu-1",
                         capabilities={"classify": {"model": "small"}, "digest": {"ensemble": "pipe.yaml"}})
    (gdir / "fan.yaml").write_text(yaml.safe_dump({"name": "fan", "agents": [
        {"name": "on-worker", "model": "classify-remote"}]}))
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={
        "classify-remote": {"capability": "classify"},
        "ens": {"policy": "ensemble", "ensemble": "fan.yaml"}}, server={},
        dispatch={"redis_url": REDIS_URL, "prefix": redis_prefix, "tenant": "acme", "timeout": 10})
    from tests.harness import GatewayServer, make_config

    g = GatewayServer(make_config(cfg, gdir)).start()
    client = openai.AsyncOpenAI(base_url=g.url + "/v1", api_key="test", max_retries=0)
    try:
        async with running_worker(wcfg, wdir) as w, Dispatcher(REDIS_URL, tenant="acme", prefix=redis_prefix) as d:
            r = await d.dispatch("digest", "the quarterly report")
            assert r.text.startswith("echo:") and r.worker == "gpu-1"
            assert len(openai_up.requests) == 2  # the worker's ensemble ran both agents on its model
            r2 = await client.chat.completions.create(model="ens", messages=[{"role": "user", "content": "triage"}])
            assert (r2.choices[0].message.content or "").startswith("echo:")
            assert len(openai_up.requests) == 3 and w.stats["done"] == 2
    finally:
        await client.close()
        g.stop()


async def test_a_gated_capability_waits_for_approval_before_it_is_dispatched(gateway, openai_up, anthropic_up,
                                                                             redis_prefix, tmp_path, monkeypatch):
    import asyncio

    from tests.approvals.conftest import ADMIN, decide, wait_pending

    monkeypatch.setenv("TW_ADMIN", ADMIN)
    openai_up.default = echo()
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={"main": {"capability": "classify"}},
                          dispatch={"redis_url": REDIS_URL, "prefix": redis_prefix, "tenant": "acme", "timeout": 10},
                          approvals={"capabilities": {"classify": {"timeout": "30s"}}})
    cfg["server"]["admin_keys_env"] = ["TW_ADMIN"]
    g = gateway(cfg)
    client = openai.AsyncOpenAI(base_url=g.url + "/v1", api_key="test", max_retries=0)
    async with running_worker(worker_config(openai_up.url, redis_prefix, worker_id="gpu-1"), tmp_path / "w"):
        asked = asyncio.ensure_future(client.chat.completions.create(
            model="main", messages=[{"role": "user", "content": "classify this"}]))
        (p,) = await asyncio.to_thread(wait_pending, g.url)
        assert p["kind"] == "capability" and not openai_up.requests  # held before the worker saw it
        assert (await asyncio.to_thread(decide, g.url, p["id"], "approve")).status_code == 200
        assert (await asyncio.wait_for(asked, 30)).choices[0].message.content == "echo:classify this"
        refused = asyncio.ensure_future(client.chat.completions.create(
            model="main", messages=[{"role": "user", "content": "and this"}]))
        (p,) = await asyncio.to_thread(wait_pending, g.url)
        assert (await asyncio.to_thread(decide, g.url, p["id"], "reject", "not today")).status_code == 200
        with pytest.raises(openai.APIStatusError) as e:
            await asyncio.wait_for(refused, 30)
        assert e.value.status_code == 403 and "not today" in str(e.value)
    await client.close()
    assert len(openai_up.requests) == 1  # only the approved task reached the worker's model


async def test_the_dashboard_shows_workers_from_the_dispatch_redis_without_a_second_setting(
        gateway, openai_up, anthropic_up, redis_prefix, tmp_path):
    # Before: a gateway with a `dispatch:` section and the dashboard on said "no presence source
    # configured" unless observability.dashboard.presence_redis_url repeated the same Redis.
    import httpx2 as httpx

    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={"main": {"capability": "classify"}},
                          dispatch={"redis_url": REDIS_URL, "prefix": redis_prefix, "tenant": "acme"},
                          observability={"dashboard": {"enabled": True}})
    g = gateway(cfg)
    async with httpx.AsyncClient(timeout=10) as http, \
            running_worker(worker_config(openai_up.url, redis_prefix, worker_id="gpu-1"), tmp_path / "w"):
        topo = (await http.get(g.url + "/dashboard/api/topology")).json()
    assert [w["id"] for w in topo["workers"]] == ["acme:gpu-1"], topo
    assert topo["workers"][0]["capabilities"] == ["classify"]


async def test_redis_down_moves_a_fallback_on_at_once_without_retrying_the_capability(gateway, openai_up,
                                                                                      anthropic_up, tmp_path):
    # The dispatcher has already spent `unavailable_wait` retrying Redis; a fallback used to retry the
    # capability on top (after honouring its own 5 s Retry-After), so "capability first, frontier when
    # no worker can take it" took unavailable_wait x 2 + 5 s per request while Redis was down.
    from tests.harness import free_port

    anthropic_up.default = "from the frontier"
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={
        "main": {"policy": "fallback", "targets": [{"capability": "summarise-docs"}, "frontier"]},  # retries: 1
    }, dispatch={"redis_url": f"redis://127.0.0.1:{free_port()}/0", "prefix": "nu2-unreachable:",
                 "tenant": "acme", "unavailable_wait": 0.3})
    g = gateway(cfg)
    client = openai.AsyncOpenAI(base_url=g.url + "/v1", api_key="test", max_retries=0)
    r = await client.chat.completions.create(model="main", messages=[{"role": "user", "content": "x"}])
    assert r.choices[0].message.content == "from the frontier"
    await client.close()
    g.flush()
    row = next(iter(g.ledger.query()))
    tries = [s for s in row.steps if s.get("kind") == "call" and "summarise-docs" in s.get("name", "")]
    assert len(tries) == 1 and "unreachable" in tries[0]["reason"], row.steps
