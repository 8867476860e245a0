"""tierwise as a library (`tierwise.library.Tierwise`, docs/library.md): a reflective route called from an app's own
code over real HTTP to the doubles, its boundary moving, feedback linked and counted, the CLI reading what the
library wrote, and the flywheel's files read the way fine-tuning tools read them."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, openai_up  # noqa: F401
from tests.learning.test_reflective_route import SUMMARY, judge_or_answer, reflective_config
from tierwise.errors import InvalidRequest, NotFound
from tierwise.library import Tierwise


def docs_snippets() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (Path(__file__).parents[2] / "docs" / "library.md").read_text(), re.S)


def read_jsonl_as_datasets_does(path: Path) -> list[dict]:
    """Hugging Face `datasets`' JSON builder: one object a line, one column type across the rows."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for key in {k for r in rows for k in r}:
        kinds = {type(r.get(key)).__name__ for r in rows} - {"NoneType"}
        assert len(kinds) <= 1, f"{path.name}: column {key} mixes {kinds}"
    return rows


def test_a_reflective_route_as_a_library(openai_up, anthropic_up, tmp_path):  # noqa: F811
    from tierwise.cli import main

    config = tmp_path / "tierwise.yaml"
    config.write_text(yaml.safe_dump(reflective_config(openai_up, anthropic_up)))
    openai_up.default = Reply(text="local summary")
    anthropic_up.default = judge_or_answer("good")

    async def app() -> tuple[list, dict]:
        async with Tierwise(config) as tw:
            results = []
            for i in range(12):
                results.append(await tw.chat("main", [{"role": "user", "content": f"{SUMMARY} (#{i})"}]))
                await tw.idle()
            linked = await tw.feedback(results[-1].request_id, "poor", "missed the figures")
        return results, linked

    results, linked = asyncio.run(app())
    assert (results[0].text, results[0].locality, results[0].model) == ("frontier answer", "remote", "frontier")
    assert (results[-1].text, results[-1].locality, results[-1].model) == ("local summary", "local", "local")
    assert linked["route"] == "main" and linked["task_type"] == "summarisation" and linked["tier"] == "local"
    assert linked["judging"] is True  # the route's judge looks at the poor local answer (sampling: rules)

    runner = CliRunner()
    shown = runner.invoke(main, ["boundary", "-c", str(config)])
    assert shown.exit_code == 0 and "summarisation moved local" in shown.output, shown.output
    trace = runner.invoke(main, ["trace", results[0].request_id, "-c", str(config)])
    assert trace.exit_code == 0 and "summarisation" in trace.output, trace.output
    out = tmp_path / "out"
    done = runner.invoke(main, ["flywheel", "export", "-c", str(config), "--out", str(out)])
    assert done.exit_code == 0, done.output
    sft = read_jsonl_as_datasets_does(out / "sft.jsonl")
    assert sft and all([m["role"] for m in r["messages"]] == ["user", "assistant"] for r in sft)
    assert all(isinstance(m["content"], str) and m["content"] for r in sft for m in r["messages"])
    assert {r["messages"][1]["content"] for r in sft} == {"local summary"}
    read_jsonl_as_datasets_does(out / "judge.jsonl")


def test_library_errors_are_the_gateways(openai_up, anthropic_up, tmp_path):  # noqa: F811
    config = tmp_path / "tierwise.yaml"
    config.write_text(yaml.safe_dump(reflective_config(openai_up, anthropic_up)))

    async def app() -> None:
        async with Tierwise(config) as tw:
            with pytest.raises(NotFound, match="no answer with request id"):
                await tw.feedback("req_nothing", "good")
            with pytest.raises(InvalidRequest, match="rating"):
                await tw.feedback("req_nothing", "excellent")
            with pytest.raises(InvalidRequest, match="stream"):
                await tw.chat("main", [{"role": "user", "content": "hi"}], stream=True)
            with pytest.raises(InvalidRequest):
                await tw.chat("main", [{"role": "wizard", "content": "hi"}])

    asyncio.run(app())


def test_the_docs_snippets_run_as_written(openai_up, anthropic_up, tmp_path, monkeypatch, capsys):  # noqa: F811
    """docs/library.md's config (its URLs pointed at the doubles) and code, run as a user would copy them."""
    snippets = docs_snippets()
    config = re.search(r"```yaml\n(.*?)```", (Path(__file__).parents[2] / "docs" / "library.md").read_text(), re.S)
    assert config and snippets
    text = config.group(1).replace("http://127.0.0.1:11434/v1", openai_up.url + "/v1").replace(
        "https://api.anthropic.com", anthropic_up.url)
    (tmp_path / "tierwise.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    openai_up.default = Reply(text="local summary")
    anthropic_up.default = judge_or_answer("good")
    for code in snippets:
        exec(compile(code, "docs/library.md", "exec"), {"__name__": "__main__"})
    printed = capsys.readouterr().out
    assert " remote claude " in printed.splitlines()[0], printed  # the conservative start
    assert " local qwen local summary" in printed.splitlines()[-2], printed  # summarisation earned the local tier
    assert printed.splitlines()[-1] == "summarisation local judging: True", printed


def test_the_privacy_boundary_holds_for_library_calls(openai_up, anthropic_up, tmp_path, monkeypatch):  # noqa: F811
    """A library call reaches the frontier model through the same boundary as a gateway request: the secret a
    user's code passes goes as a placeholder, and the answer brings the value back."""
    from tests.privacy.support import SECRET, leaked
    from tests.privacy.test_init_config_secrets import DOTENV, init_config

    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-not-real")
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "tierwise.yaml"
    config.write_text(yaml.safe_dump(init_config(openai_up.url, anthropic_up.url)))

    async def app():
        async with Tierwise(config) as tw:
            return await tw.chat("claude-opus-4-8", [{"role": "user", "content": DOTENV}], max_tokens=50)

    r = asyncio.run(app())
    assert r.locality == "remote" and len(anthropic_up.requests) == 1
    sent = anthropic_up.requests[0].raw
    assert not leaked(sent, [SECRET]) and b"<SECRET_1>" in sent, sent[:400]
