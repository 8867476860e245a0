"""An upstream that reports no usage is billed for the characters it relayed (tests/budgets/test_unreported_output.py),
at about 4 characters a token: right for English, a quarter of the truth for Chinese, Japanese or Korean (about a token
a character) and emoji (one or more each). Before session 34's review (review34b) 4,000 Chinese characters were billed
1,000 output tokens; now each such character counts as a token's worth (tierwise.tokens.text_units). Memory store."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from tests.budgets.test_unreported_output import quiet_up  # noqa: F401 (the same fixture)
from tests.doubles import Raw, Reply
from tests.gateway.conftest import gateway, oai, openai_up  # noqa: F401 (the same fixtures)
from tests.harness import two_tier_config

CHINESE = "预算控制在并发请求下保持上限" * 100  # 1,400 characters: about 1,400 tokens (o200k ~1,000, cl100k ~1,800)
KOREAN = "게이트웨이는예산한도를지킵니다" * 100  # 1,500 Hangul syllables
ENGLISH = "the budget holds under concurrency " * 40  # 1,400 characters: ~350 tokens (4 a token: as before)


def _tokens_billed(g) -> int:
    for _ in range(200):
        st = asyncio.run_coroutine_threadsafe(g.gateway.spend.status(), g.loop).result(10)
        if not st["reservations_in_flight"]:
            return int(st["budgets"][0]["tokens_used"])
        asyncio.run(asyncio.sleep(0.02))
    raise AssertionError("a reservation was never settled")


def _gateway(gateway, openai_up, up):  # noqa: F811
    cfg = two_tier_config(openai_up.url, up.url, remote_kind="openai",
                          routes={"main": {"policy": "fallback", "targets": ["frontier"], "retries": 0}})
    cfg["budgets"] = {"limits": [{"name": "cap", "tokens": 10_000_000}]}
    return gateway(cfg)


@pytest.mark.parametrize("text", [CHINESE, KOREAN], ids=["chinese", "korean"])
def test_a_cjk_answer_without_usage_is_billed_a_token_a_character(gateway, openai_up, text):  # noqa: F811
    body = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "big-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}
    openai_up.default = Raw(200, orjson.dumps(body))
    g = _gateway(gateway, openai_up, openai_up)
    r = oai(g).chat.completions.create(model="main", max_tokens=4000, messages=[{"role": "user", "content": "q"}])
    assert r.choices[0].message.content == text
    billed = _tokens_billed(g) - 30  # (less the input's estimate, a few dozen tokens)
    assert billed >= len(text), (billed, len(text))  # before: about len(text) / 4


def test_a_streamed_cjk_answer_without_usage_is_billed_a_token_a_character(gateway, openai_up, quiet_up):  # noqa: F811
    quiet_up.default = Reply(text=CHINESE, usage=(10, 1400))
    g = _gateway(gateway, openai_up, quiet_up)
    for _ in oai(g).chat.completions.create(model="main", max_tokens=4000, stream=True,
                                            messages=[{"role": "user", "content": "q"}]):
        pass
    assert _tokens_billed(g) - 30 >= len(CHINESE)


def test_english_is_billed_as_before(gateway, openai_up):  # noqa: F811
    body = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "big-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": ENGLISH}, "finish_reason": "stop"}]}
    openai_up.default = Raw(200, orjson.dumps(body))
    g = _gateway(gateway, openai_up, openai_up)
    oai(g).chat.completions.create(model="main", max_tokens=4000, messages=[{"role": "user", "content": "q"}])
    billed = _tokens_billed(g)
    assert len(ENGLISH) // 4 <= billed <= len(ENGLISH) // 4 + 60, billed
