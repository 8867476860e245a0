"""`tierwise doctor` says when the config's `dispatch.caller` is listed by none of the workers present (session 37,
review37a).

Workers read the queues of the callers their `dispatch.callers` names; a caller none of them lists publishes without
error (its capability's workers are present) and each task waits out its timeout (120 s by default), with nothing
anywhere saying why: doctor said all good. Workers now put the callers they read in their presence record, and
doctor compares."""

from __future__ import annotations

import time

import yaml
from click.testing import CliRunner

from tests.dispatch.conftest import REDIS_URL, echo, worker_config
from tests.harness import free_port
from tierwise.cli import main

WARNING = "dispatch.caller 'app-b' is listed by none of the 1 worker(s) present"


def gateway_config(prefix: str, caller: str) -> dict:
    return {"providers": {"cloud": {"kind": "openai", "base_url": f"http://127.0.0.1:{free_port()}/v1",
                                    "locality": "remote"}},
            "models": {"frontier": {"provider": "cloud", "model": "big", "price": {"input": 3, "output": 15}}},
            "routes": {"classify": {"capability": "classify"}},
            "dispatch": {"redis_url": REDIS_URL, "prefix": prefix, "tenant": "acme", "caller": caller}}


def test_doctor_warns_about_a_caller_no_present_worker_lists(openai_up, redis_prefix, tmp_path, worker_processes,
                                                             monkeypatch):
    openai_up.default = echo()
    data = worker_config(openai_up.url, redis_prefix, worker_id="w1", locality="remote", provider_locality="remote",
                         callers=["app-a", "gw"])
    worker_processes(data, "w").wait_ready()
    monkeypatch.chdir(tmp_path)
    for caller in ("app-b", "app-a"):
        (tmp_path / f"{caller}.yaml").write_text(yaml.safe_dump(gateway_config(redis_prefix, caller)))
    out = CliRunner().invoke(main, ["doctor", "-c", "app-b.yaml"]).output
    assert WARNING in out and "app-a, gw" in out, out
    out = CliRunner().invoke(main, ["doctor", "-c", "app-a.yaml"]).output
    assert "is listed by none" not in out, out


def test_doctor_names_the_workers_of_a_capability_that_do_not_list_the_caller(openai_up, redis_prefix, tmp_path,
                                                                              worker_processes, monkeypatch):
    """Two workers serve `classify`, one lists `app-b` (an upgrade that missed a worker's `dispatch.callers`): half
    the capacity reads app-b's queues, and doctor said nothing (newuser37b). A caller listed only by a worker of
    another capability got no warning either, though none of `classify`'s workers reads its queues."""
    openai_up.default = echo()
    both = worker_config(openai_up.url, redis_prefix, worker_id="w1", locality="remote", provider_locality="remote",
                         callers=["app-a", "app-b"])
    one = worker_config(openai_up.url, redis_prefix, worker_id="w2", locality="remote", provider_locality="remote",
                        callers=["app-a"])
    other = worker_config(openai_up.url, redis_prefix, worker_id="w3", locality="remote", provider_locality="remote",
                          callers=["app-c"], capabilities={"extract": {"model": "small"}})
    started = [worker_processes(data, name) for data, name in ((both, "w1"), (one, "w2"), (other, "w3"))]
    for p in started:
        p.wait_ready()
    # the worker says whose queues it reads when it starts (a restart after editing dispatch.callers: did it take?)
    deadline = time.monotonic() + 10
    while "ready (classify; reading the queues of callers app-a, app-b)" not in started[0].output():
        assert time.monotonic() < deadline, started[0].output()
        time.sleep(0.05)
    monkeypatch.chdir(tmp_path)
    for caller in ("app-a", "app-b", "app-c"):
        (tmp_path / f"{caller}.yaml").write_text(yaml.safe_dump(gateway_config(redis_prefix, caller)))
    out = CliRunner().invoke(main, ["doctor", "-c", "app-b.yaml"]).output
    assert ("dispatch.caller 'app-b' is listed by 1 of the 2 worker(s) present for capability 'classify'; "
            "not by w2") in out, out
    out = CliRunner().invoke(main, ["doctor", "-c", "app-c.yaml"]).output
    assert ("dispatch.caller 'app-c' is listed by none of the 2 worker(s) present for capability 'classify' "
            "(their dispatch.callers: app-a, app-b)") in out, out
    out = CliRunner().invoke(main, ["doctor", "-c", "app-a.yaml"]).output
    assert "dispatch.caller 'app-a'" not in out, out


def test_doctor_says_when_no_worker_serves_a_capability_the_routes_dispatch_to(openai_up, redis_prefix, tmp_path,
                                                                               worker_processes, monkeypatch):
    """A route to a capability no worker present serves: every request answers 503 "no worker serves capability",
    and doctor said "All good." (newuser37b)."""
    data = worker_config(openai_up.url, redis_prefix, worker_id="w1", locality="remote", provider_locality="remote",
                         callers=["app-a"], capabilities={"extract": {"model": "small"}})
    worker_processes(data, "w1").wait_ready()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app-a.yaml").write_text(yaml.safe_dump(gateway_config(redis_prefix, "app-a")))
    out = CliRunner().invoke(main, ["doctor", "-c", "app-a.yaml"]).output
    assert "! no worker present serves capability 'classify' for tenant 'acme'" in out, out


def test_doctor_warns_when_workers_bound_the_callers_queues_below_its_max_pending(openai_up, redis_prefix, tmp_path,
                                                                                  worker_processes, monkeypatch):
    """Workers trim each queue they read to their own `max_pending` at every heartbeat (a caller may XADD its queues
    directly, past the publishing script's bound; session 38, dist9): a gateway whose `max_pending` is higher than
    its workers' would have its oldest waiting tasks dropped, and nothing said so before it happened."""
    openai_up.default = echo()
    data = worker_config(openai_up.url, redis_prefix, worker_id="w1", locality="remote", provider_locality="remote",
                         callers=["app-a"], max_pending=50)
    worker_processes(data, "w").wait_ready()
    monkeypatch.chdir(tmp_path)
    config = gateway_config(redis_prefix, "app-a")
    (tmp_path / "high.yaml").write_text(yaml.safe_dump({**config, "dispatch": {**config["dispatch"],
                                                                               "max_pending": 200}}))
    (tmp_path / "low.yaml").write_text(yaml.safe_dump({**config, "dispatch": {**config["dispatch"],
                                                                              "max_pending": 50}}))
    out = CliRunner().invoke(main, ["doctor", "-c", "high.yaml"]).output
    assert ("dispatch.max_pending 200 is more than that of worker(s) w1 reading caller 'app-a' for capability "
            "'classify' (50)") in out, out
    out = CliRunner().invoke(main, ["doctor", "-c", "low.yaml"]).output
    assert "dispatch.max_pending" not in out, out
