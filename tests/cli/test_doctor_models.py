"""`tierwise doctor` against what the providers' model lists say (session 26's leftovers): a remote model id its
provider does not list, with the closest listed id, and a provider whose `kind` is the other API's. Before, a
typo'd frontier model showed only at the first request, and `kind: openai` pointed at an Anthropic server (or the
reverse) read as "reached" or "key refused"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from tests.doubles import AnthropicDouble, OpenAIDouble
from tierwise.cli import main


def doctor(tmp_path: Path, providers: dict[str, Any], models: dict[str, Any]) -> str:
    (tmp_path / "tierwise.yaml").write_text(yaml.safe_dump({
        "providers": providers, "models": models, "routes": {"main": [next(iter(models))]},
        "ledger": {"enabled": False}}))
    return CliRunner().invoke(main, ["doctor"]).output


def test_a_remote_model_id_its_provider_does_not_list_is_named_with_the_closest(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TW_TEST_FRONTIER_KEY", "k-test")
    with AnthropicDouble(api_key="k-test", models=["claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"]) as a, \
            OpenAIDouble(models=["gpt-5.1", "gpt-5-mini"]) as o:
        providers = {"a": {"kind": "anthropic", "base_url": a.url, "api_key_env": "TW_TEST_FRONTIER_KEY",
                           "locality": "remote"},
                     "o": {"kind": "openai", "base_url": o.url + "/v1", "locality": "remote"}}
        price = {"input": 3, "output": 15}
        out = doctor(tmp_path, providers, {
            "typo": {"provider": "a", "model": "claude-sonet-4-5-20250929", "price": price},
            "alias": {"provider": "a", "model": "claude-sonnet-4-5", "price": price},  # served: extended by a listed id
            "gpt": {"provider": "o", "model": "gpt-5.l", "price": price},
            "fine": {"provider": "o", "model": "gpt-5-mini", "price": price}})
        lines = [ln for ln in out.splitlines() if "is not among the models" in ln]
        assert len(lines) == 2, out
        assert "model typo: 'claude-sonet-4-5-20250929'" in lines[0] and \
            "did you mean 'claude-sonnet-4-5-20250929'?" in lines[0], out
        assert "model gpt: 'gpt-5.l'" in lines[1] and "did you mean 'gpt-5.1'?" in lines[1], out
        # nothing spent: the model lists only
        assert {(r.method, r.path) for r in [*a.requests, *o.requests]} == {("GET", "/v1/models")}


def test_a_provider_of_the_other_apis_kind_is_named_by_doctor(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TW_TEST_FRONTIER_KEY", "k-test")
    with AnthropicDouble(api_key="k-test") as a, OpenAIDouble(api_key="k-test") as o:
        for kind, url, other in [("openai", a.url + "/v1", "anthropic"), ("openai", a.url, "anthropic"),
                                 ("anthropic", o.url + "/v1", "openai"), ("anthropic", o.url, "openai")]:
            out = doctor(tmp_path, {"p": {"kind": kind, "base_url": url, "api_key_env": "TW_TEST_FRONTIER_KEY",
                                          "locality": "remote"}},
                         {"m": {"provider": "p", "model": "x", "price": {"input": 1, "output": 1}}})
            [line] = [ln for ln in out.splitlines() if " provider p (" in ln]
            assert line.startswith("✗") and f"but the provider has kind: {kind}: set kind: {other}" in line, \
                (kind, url, out)
            assert "key" not in line.split(":", 1)[1].split("set kind")[0], line  # not "the key was refused"


class DualApiServer(OpenAIDouble):
    """A server that serves both APIs (llama.cpp, vLLM, Ollama): an OpenAI-shaped model list, and its Anthropic
    Messages endpoint refuses an empty body with a 400 in OpenAI's shape (as llama.cpp does)."""

    def add_routes(self, app: Any) -> None:
        super().add_routes(app)
        app.router.add_post("/v1/messages", self.route(self._messages))

    async def _messages(self, request: Any) -> Any:
        rec = await self.record(request)
        return self.error_response(rec, 400, "'messages' is required")


def test_a_server_that_also_speaks_the_configured_api_is_not_a_wrong_kind(tmp_path, monkeypatch):
    """review26b: `kind: anthropic` on llama.cpp (which serves /v1/messages) read as ✗ "set kind: openai"."""
    monkeypatch.chdir(tmp_path)
    with DualApiServer(models=["qwen"]) as d:
        out = doctor(tmp_path, {"p": {"kind": "anthropic", "base_url": d.url, "locality": "local"}},
                     {"m": {"provider": "p", "model": "qwen"}})
        [line] = [ln for ln in out.splitlines() if " provider p (" in ln]
        assert line.startswith("✓") and "set kind" not in line, out
        assert ("POST", "/v1/messages") in {(r.method, r.path) for r in d.requests}  # asked, with an empty body
