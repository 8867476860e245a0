"""An embeddings upstream's input count too small for the inputs sent (session 37, costs9): `usage.prompt_tokens: 1`
for 4,000 characters was believed, so a key's $0.20 budget counted $0.0001 a call and embedded 12 of 12 (each ~$0.1
of input at $100 per million). Now a count below the estimate ÷ 8 (about 32 characters a token) is billed the
estimate, as a chat call's input is (usage_bounds.too_little_input)."""

from __future__ import annotations

import openai
import orjson

from tests.budgets.test_embeddings_spend import KEY, LIMIT, TEXT, _config, keys  # noqa: F401 (the fixture)
from tests.gateway.conftest import gateway, oai, openai_up  # noqa: F401 (the same fixtures)

ONE_TOKEN = orjson.dumps({"object": "list", "model": "text-embedding-3-large",
                          "data": [{"object": "embedding", "index": 0, "embedding": [0.1] * 16}],
                          "usage": {"prompt_tokens": 1, "total_tokens": 1}})


def test_one_token_for_four_thousand_characters_is_not_believed(gateway, keys, openai_up):  # noqa: F811
    openai_up.embeddings_raw = ONE_TOKEN
    g = gateway(_config(openai_up.url, {"limits": [{"name": "per-key", "per": "key", "usd": LIMIT}]}))
    answered = 0
    for _ in range(12):
        try:
            oai(g, api_key=KEY).embeddings.create(model="emb", input=[TEXT])
            answered += 1
        except openai.RateLimitError:
            break
    assert answered <= 4, f"{answered} of 12 embedded under a ${LIMIT} budget, each ~$0.1 of input"  # before: 12
