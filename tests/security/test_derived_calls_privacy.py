"""Remote calls made for a client's request that carry only part of it, or what a model made of it (review31b,
session 31): a request the privacy boundary keeps local (`local_only` data anywhere in it) is shown to no remote
model in any part. The guard scans what each call sends; a cascade's LLM judge is sent the last user text and the
local answer, an ensemble's agents start from the last user text, and a rating's re-check kept the turns' text
blocks only: a value in the system prompt or a tool result is in none of those, and the rest of the request left."""

from __future__ import annotations

import json

import yaml

from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401
from tests.privacy.support import SEEDS, privacy_config
from tests.security.test_loop_privacy import _gateway, rate_poor_asking_no_one

EMAIL = SEEDS["EMAIL_ADDRESS"]
PRIVATE = "Confirm the complaint of customer Q-PRIVATE-7781 in two sentences, please, for the team."
SYSTEM = {"role": "system", "content": f"The customer's address is {EMAIL}."}
ROUTES = {
    "judged": {"policy": "cascade", "tiers": ["local", "frontier"],
               "verifiers": [{"type": "llm_judge", "model": "frontier"}]},
    "ens": {"policy": "ensemble", "ensemble": "two"},
}
ENSEMBLE = {"name": "two", "agents": [
    {"name": "extract", "model": "local", "prompt": "List the facts in: {input}"},
    {"name": "answer", "model": "frontier", "depends_on": ["extract"], "prompt": "Write the reply from: {input}"}]}


def _remote_saw(up, text: str) -> bool:
    return any(text in json.dumps(r.body) for r in up.requests)


def _setup(gateway, openai_up, anthropic_up, tmp_path):  # noqa: F811
    ens_dir = tmp_path / ".tierwise" / "ensembles"
    ens_dir.mkdir(parents=True)
    (ens_dir / "two.yaml").write_text(yaml.safe_dump(ENSEMBLE, sort_keys=False))
    cfg = privacy_config(openai_up.url, anthropic_up.url, ROUTES, policy={"pii": "local_only", "secrets": "block"})
    cfg["server"]["default_route"] = "judged"
    openai_up.default = lambda rec: Reply(text="Summary: " + ("Q-PRIVATE-7781" if "Q-PRIVATE" in rec.raw.decode()
                                                              else "plain") + " complains.")
    anthropic_up.default = Reply(text="Fine.\nVERDICT: good")
    return oai(gateway(cfg))


def test_a_cascades_remote_judge_is_not_shown_a_local_only_request(gateway, openai_up, anthropic_up, tmp_path):  # noqa: F811
    """Before: the local tier answered, the judge's call carried the last user text (and the answer), in which the
    boundary found nothing: it left, while the e-mail address in the system prompt made the request `local_only`."""
    client = _setup(gateway, openai_up, anthropic_up, tmp_path)
    r = client.chat.completions.create(model="judged", messages=[SYSTEM, {"role": "user", "content": PRIVATE}])
    assert r.choices[0].message.content == "Summary: Q-PRIVATE-7781 complains."  # served locally
    assert not _remote_saw(anthropic_up, "Q-PRIVATE-7781")
    assert not anthropic_up.requests
    # the same in a stream
    chunks = client.chat.completions.create(model="judged", messages=[SYSTEM, {"role": "user", "content": PRIVATE}],
                                            stream=True)
    assert "Q-PRIVATE-7781" in "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert not anthropic_up.requests
    # a request without protected data is still judged
    client.chat.completions.create(model="judged", messages=[{"role": "user", "content": "Confirm the plain one."}])
    assert _remote_saw(anthropic_up, "You are grading") and _remote_saw(anthropic_up, "plain")


def test_an_ensembles_remote_agent_is_not_given_what_a_local_agent_made_of_a_local_only_request(
        gateway, openai_up, anthropic_up, tmp_path):  # noqa: F811
    """Before: the ensemble ran on the last user text; the local agent's summary of it went to the remote agent."""
    client = _setup(gateway, openai_up, anthropic_up, tmp_path)
    try:
        client.chat.completions.create(model="ens", messages=[SYSTEM, {"role": "user", "content": PRIVATE}])
    except Exception as e:  # the remote agent may not run: the ensemble fails clearly (no local agent in its place)
        assert "local_only" in str(e)
    assert not _remote_saw(anthropic_up, "Q-PRIVATE-7781")
    client.chat.completions.create(model="ens", messages=[{"role": "user", "content": "The plain one."}])
    assert _remote_saw(anthropic_up, "Write the reply from: Summary: plain")


def test_a_poor_rating_does_not_show_the_judge_a_request_whose_tool_result_kept_it_local(
        gateway, openai_up, anthropic_up):  # noqa: F811
    """Before: the route kept the turns' text blocks of a locally served answer's request for a rating's check; an
    e-mail address in a tool result (which kept the request from the frontier) was not among them, the check passed
    and the judge was shown the request's last user text."""
    g, route, client = _gateway(gateway, openai_up, anthropic_up)
    r = client.chat.completions.with_raw_response.create(model="main", messages=[
        {"role": "user", "content": PRIVATE},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": f"customer: {EMAIL}"}])
    rate_poor_asking_no_one(g, route, r, anthropic_up)
    assert not _remote_saw(anthropic_up, "Q-PRIVATE-7781")
