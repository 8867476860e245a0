"""A header the rules' `subagent` match reads can send the same body to another model, so it is part of the
exact-cache key: a main agent's cached answer is never served to a subagent's identical request, for Claude
Code's header and for Codex's."""

from tests.fakes import request
from tierwise.cache.keys import exact_key


def key(headers: dict[str, str]) -> str:
    return exact_key(request("same body", headers=headers), tenant="t", route="main", client_format="responses")


def test_subagent_headers_are_part_of_the_key():
    plain = key({})
    assert key({"x-claude-code-agent-id": "a1"}) != plain
    assert key({"x-openai-subagent": "collab_spawn"}) != plain
    assert key({"x-openai-subagent": "collab_spawn"}) != key({"x-openai-subagent": "compact"})
    assert key({"user-agent": "codex_exec/0.171.0"}) == plain  # headers that steer nothing stay out
