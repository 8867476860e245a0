"""A viewer key's trace of a request that failed with the answer in its error: an `ensemble` route's agent whose
output does not match its `output_schema` fails the run with the validator's words, which quote the output
("'...' is not of type 'integer'"): the model's answer, as the client's request and the ledger's
`error_message` carry it."""

from __future__ import annotations

import httpx2 as httpx
import openai
import orjson
import pytest

from tests.ensembles.conftest import stub_config, upstream, write_ensemble  # noqa: F401 (a fixture)
from tests.harness import GatewayServer, make_config
from tests.security.test_dashboard_roles import KEYS, bearer

WORDS = "ZEBRA-5521 the merger closes on Friday"


@pytest.fixture
def project(tmp_path):
    (tmp_path / ".tierwise" / "ensembles").mkdir(parents=True)
    return tmp_path


def test_a_viewer_reads_no_answer_through_a_failed_ensemble_s_error(project, upstream, monkeypatch):  # noqa: F811
    for env, value in KEYS.items():
        monkeypatch.setenv(env, value)
    upstream.answer = lambda model, prompt: orjson.dumps({"n": WORDS}).decode()
    write_ensemble(project, {"name": "count", "agents": [
        {"name": "counter", "model": "small",
         "output_schema": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}}]})
    data = stub_config(upstream.url)
    data["routes"]["ens"] = {"policy": "ensemble", "ensemble": "count"}
    data["server"] = {"api_keys_env": ["OPS"], "admin_keys_env": ["ADMIN"]}
    data["observability"] = {"dashboard": {"enabled": True, "viewer_keys_env": ["VIEW"], "recent": 10}}
    g = GatewayServer(make_config(data, project)).start()
    try:
        client = g.keep(openai.OpenAI(base_url=g.url + "/v1", api_key="key-ops", max_retries=0))
        with pytest.raises(openai.APIStatusError) as ei:
            client.chat.completions.create(model="ens", messages=[{"role": "user", "content": "count them"}])
        rid = ei.value.response.headers["x-tierwise-request-id"]
        g.flush()

        def trace(key: str, of: str) -> str:
            got = httpx.get(g.url + "/dashboard/api/trace", params={"id": of}, headers=bearer(key))
            assert got.status_code == 200, got.text
            return got.text

        for i in range(10):  # the request leaves the in-memory feed: its trace now comes from the ledger
            with pytest.raises(openai.APIStatusError):
                client.chat.completions.create(model="ens", messages=[{"role": "user", "content": f"again {i}"}])
        g.flush()
        admin = trace("key-admin", rid)
        assert "ZEBRA-5521" in admin  # (the words are there to withhold)
        seen = trace("key-view", rid)
        assert "ZEBRA-5521" not in seen, seen
        assert "counter" in seen  # which agent failed stays readable
    finally:
        g.stop()
