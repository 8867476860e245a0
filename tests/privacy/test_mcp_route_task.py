"""MCP `route_task` takes data classes into account (tierwise.privacy.routing_advice)."""

from __future__ import annotations

from pathlib import Path

import yaml
from mcp import Client

from tests.ensembles.conftest import stub_config
from tests.harness import make_config
from tierwise.ensembles.library import Library
from tierwise.ensembles.service import EnsembleService
from tierwise.gateway import Gateway
from tierwise.mcp_server import build_mcp_server

HARD = "design the architecture of a distributed system and plan it"


async def advice(tmp_path: Path, privacy: dict | None, **args) -> dict:
    data = stub_config("http://127.0.0.1:9")
    data["providers"]["cloud"]["regions"] = ["us"]
    if privacy is not None:
        data["privacy"] = {"ner": {"enabled": False}, **privacy}
    (tmp_path / ".tierwise" / "ensembles").mkdir(parents=True, exist_ok=True)
    gw = Gateway(make_config(yaml.safe_dump(data), tmp_path))
    try:
        async with Client(build_mcp_server(EnsembleService(gw, Library(tmp_path)))) as c:
            r = await c.call_tool("route_task", args)
            if r.is_error:
                return {"error": " ".join(getattr(b, "text", "") for b in r.content)}
            return r.structured_content  # type: ignore[return-value]
    finally:
        await gw.close()


async def test_local_only_class_keeps_hard_work_local(tmp_path):
    pol = {"classes": {"pii": {}, "phi": {}}, "policy": {"phi": "local_only", "pii": "redact"}}
    a = await advice(tmp_path, pol, task=HARD, data_classes=["phi"])
    assert a["tier"] == "local" and a["model"] in ("small", "tiny")
    assert a["privacy"]["frontier_allowed"] is False and "'phi' is local_only" in a["privacy"]["reason"]
    b = await advice(tmp_path, pol, task=HARD)
    assert b["tier"] == "frontier" and b["privacy"]["classes"] == {}


async def test_classes_found_in_the_sample(tmp_path):
    pol = {"classes": {"pii": {}}, "policy": {"pii": "local_only"}}
    a = await advice(tmp_path, pol, task=HARD, sample="Patient mail: jane.doe@example.com, card 4111 1111 1111 1111")
    assert a["tier"] == "local" and a["privacy"]["classes"] == {"pii": 2}
    assert a["privacy"]["entities"] == {"EMAIL_ADDRESS": 1, "CREDIT_CARD": 1}
    assert "jane.doe" not in str(a)
    redact = await advice(tmp_path, {"classes": {"pii": {}}, "policy": {"pii": "redact"}}, task=HARD,
                          sample="mail jane.doe@example.com")
    assert redact["tier"] == "frontier" and "redacted" in redact["privacy"]["reason"]


async def test_regions_and_unknown_classes(tmp_path):
    pol = {"classes": {"pii": {}}, "policy": {"pii": {"action": "allow", "regions": ["eu"]}}}
    a = await advice(tmp_path, pol, task=HARD, data_classes=["pii"])
    assert a["tier"] == "local" and a["privacy"]["frontier_models"] == []
    assert "unknown data class" in (await advice(tmp_path, pol, task=HARD, data_classes=["phi9"]))["error"]


async def test_without_privacy_config(tmp_path):
    a = await advice(tmp_path, None, task=HARD)
    assert a["tier"] == "frontier" and "privacy" not in a
    b = await advice(tmp_path, None, task=HARD, data_classes=["pii"])
    assert b["tier"] == "frontier" and "no privacy policy" in b["privacy"]["note"]




async def test_unknown_route_is_an_error_not_the_default_policy(tmp_path):
    # A misspelt route must not silently get `privacy.policy`: here that would advise the
    # frontier for data the named route keeps local.
    pol = {"classes": {"pii": {}}, "policy": {"pii": "redact"}, "routes": {"main": {"pii": "local_only"}}}
    assert (await advice(tmp_path, pol, task=HARD, data_classes=["pii"], route="main"))["tier"] == "local"
    err = (await advice(tmp_path, pol, task=HARD, data_classes=["pii"], route="mian"))["error"]
    assert "unknown route 'mian'" in err and "main" in err
