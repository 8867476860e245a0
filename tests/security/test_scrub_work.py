"""The scrubber's work on text made of key-shape anchors is linear in the text.

Each anchor found by the Aho-Corasick pass (`password`, `x-api-key`, `sk-`, `key=`, ...) ran its shape's regular
expression from there to wherever it stopped: a key name (`[a-z_-]*`) or a value ran on to the end of a run made
of anchors, and every anchor inside it did so again. 16 KB of `x-api-key` repeated took 4.4 s of CPU, 64 KB
78 s, on the event loop: an upstream's error (4,000 characters, scrubbed on each exit), captured content
(16,384 characters with `tracing.capture_content`) and a feedback reason all reach it. Work is counted here, not
timed: each shape attempt's reach (how far the engine may read) and the characters its matches consumed (a few
shapes may overlap a character: at most four times the text), recorded by a wrapper around each compiled shape. Real HTTP on loopback for the upstream's error, the openai SDK as client.
"""

from __future__ import annotations

import secrets
from typing import Any

import openai
import pytest

from tests.doubles import Fail, OpenAIDouble
from tests.harness import GatewayServer, make_config
from tierwise import secret_scrub
from tierwise.secret_scrub import SecretScrubber

WINDOW = 4096  # the most a shape attempt may read past its anchor
HOSTILE = {"x-api-key": "x-api-key", "password=": "password=", "sk-": "sk-", "authorization": "authorization",
           "alternating": "sk-aaaaaaaaaaaaaaaaaaaapassword="}


class Recording:
    """A compiled shape that notes, for each attempt, how far it may read and how much its match consumed."""

    def __init__(self, pattern: Any, seen: list[tuple[int, int, int]]) -> None:
        self.p, self.seen = pattern, seen
        self.groupindex, self.pattern = pattern.groupindex, pattern.pattern

    def match(self, text: str, pos: int = 0, endpos: int | None = None) -> Any:
        reach = (len(text) if endpos is None else min(endpos, len(text))) - pos
        m = self.p.match(text, pos) if endpos is None else self.p.match(text, pos, endpos)
        self.seen.append((len(text), reach, m.end() - pos if m else 0))
        return m


@pytest.fixture
def attempts(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, int]]:
    seen: list[tuple[int, int, int]] = []
    wrapped: dict[int, Recording] = {}
    table = {a: wrapped.setdefault(id(p), Recording(p, seen)) for a, p in secret_scrub._COMPILED.items()}
    monkeypatch.setattr(secret_scrub, "_COMPILED", table)
    return seen


def _assert_linear(seen: list[tuple[int, int, int]], length: int) -> None:
    mine = [s for s in seen if s[0] == length]
    assert mine, "no shape was tried on the text"
    assert max(reach for _, reach, _ in mine) <= WINDOW, "a shape attempt may read to the end of the text"
    consumed = sum(c for _, _, c in mine)
    assert consumed <= 4 * length, f"shape matches consumed {consumed:,} characters of a {length:,}-character text"


@pytest.mark.parametrize("name", list(HOSTILE))
def test_text_made_of_anchors_costs_work_linear_in_its_length(attempts: list[tuple[int, int, int]], name: str) -> None:
    unit = HOSTILE[name]
    text = (unit * (16_384 // len(unit) + 1))[:16_384]
    out = SecretScrubber(["tw-work-" + secrets.token_hex(16)]).scrub(text)
    _assert_linear(attempts, len(text))
    if name in ("password=", "sk-", "alternating"):  # still redacted as before
        assert "[redacted]" in out and len(out) < 100, out[:200]


def test_an_upstreams_error_made_of_anchors_is_scrubbed_in_linear_work(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch, attempts: list[tuple[int, int, int]]) -> None:
    key = "tw-work-" + secrets.token_hex(20)
    monkeypatch.setenv("TW_WORK_OAI", key)
    up = OpenAIDouble(api_key=key).start()
    text = f"bad key {key} " + ("x-api-key" * 500)[:3_000] + " " + ("password=" * 120)[:900]  # within the 4,000 read
    up.script(Fail(400, text))
    g = GatewayServer(make_config({
        "providers": {"o": {"kind": "openai", "base_url": up.url + "/v1", "api_key_env": "TW_WORK_OAI"}},
        "models": {"m": {"provider": "o", "model": "m"}}, "routes": {"main": "m"}}, tmp_path)).start()
    try:
        with pytest.raises(openai.BadRequestError) as e:
            g.keep(openai.OpenAI(base_url=g.url + "/v1", api_key="unused", max_retries=0)).chat.completions.create(
                model="main", messages=[{"role": "user", "content": "hi"}])
    finally:
        g.stop()
        up.stop()
    assert key not in str(e.value) and "[redacted]" in str(e.value)
    lengths = {n for n, _, _ in attempts if n >= 2_000}
    assert lengths, "the upstream's text never reached the scrubber"
    for n in lengths:
        _assert_linear(attempts, n)
