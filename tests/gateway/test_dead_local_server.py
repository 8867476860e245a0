"""A local model server that is not running (session 27's new user, round 2): the client hears which provider and
what to check, never its address; the console names the URL (no credentials) once per outage; a route with a next
target moves on at once instead of retrying the refused connection. Real HTTP on loopback, official SDK clients."""

from __future__ import annotations

import logging

import openai
import pytest

from tests.gateway.conftest import oai
from tests.harness import free_port, two_tier_config


def _dead_first(anthropic_url: str, port: int, retries: int) -> dict:
    cfg = two_tier_config(f"http://127.0.0.1:{port}", anthropic_url,
                          routes={"main": {"policy": "fallback", "targets": ["local", "frontier"], "retries": retries,
                                           "backoff_base": 0.01},
                                  "alone": {"policy": "fallback", "targets": ["local"], "retries": 1,
                                            "backoff_base": 0.01}})
    # A credential in the base URL must never reach the console line that names it.
    cfg["providers"]["localsrv"]["base_url"] = f"http://tok-user:s3cretpass@127.0.0.1:{port}/v1?key=qtoken123"
    return cfg


def test_a_dead_local_server_tells_the_client_what_to_check_and_the_console_where(gateway, anthropic_up, caplog):
    # Before: client and console both got "cannot connect to provider 'localsrv'": no URL, nothing to check.
    port = free_port()
    g = gateway(_dead_first(anthropic_up.url, port, retries=0))
    with caplog.at_level(logging.WARNING, logger="tierwise.requests"), pytest.raises(openai.APIStatusError) as e:
        oai(g).chat.completions.create(model="alone", messages=[{"role": "user", "content": "hi"}])
    said = str(e.value)
    assert "cannot connect to provider 'localsrv'" in said and "is its model server running?" in said, said
    assert "127.0.0.1" not in said and str(port) not in said, said  # no internal address to the client
    lines = [r.getMessage() for r in caplog.records if "cannot connect to provider localsrv at" in r.getMessage()]
    assert len(lines) == 1, caplog.text
    assert f"http://127.0.0.1:{port}/v1" in lines[0] and "tierwise doctor" in lines[0], lines[0]
    assert "s3cretpass" not in caplog.text and "qtoken123" not in caplog.text and "tok-user" not in caplog.text
    # Once per outage: the next failure adds no second line.
    with caplog.at_level(logging.WARNING, logger="tierwise.requests"), pytest.raises(openai.APIStatusError):
        oai(g).chat.completions.create(model="alone", messages=[{"role": "user", "content": "hi"}])
    assert sum("cannot connect to provider localsrv at" in r.getMessage() for r in caplog.records) == 1


def test_a_refused_connection_moves_on_to_the_next_target_without_a_retry(gateway, anthropic_up):
    # Before: `retries: 1` retried the refused connection (after a backoff) before the frontier answered.
    g = gateway(_dead_first(anthropic_up.url, free_port(), retries=1))
    raw = oai(g).chat.completions.with_raw_response.create(model="main", messages=[{"role": "user", "content": "hi"}])
    steps = raw.headers["x-tierwise-steps"]
    assert steps.count("call:local:fail") == 1 and "call:frontier:ok" in steps, steps
    # The last target keeps its retries: nothing else could answer, and a restarting server may.
    with pytest.raises(openai.APIStatusError) as e:
        oai(g).chat.completions.with_raw_response.create(model="alone", messages=[{"role": "user", "content": "hi"}])
    assert e.value.response.headers["x-tierwise-steps"].count("call:local:fail") == 2, e.value.response.headers
