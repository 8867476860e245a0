"""The strong share a saved router gives through a gateway's `learned` route (`target_share: 0.3`,
`refit_threshold: false`: the saved calibration alone) on held-out prompts: the tests' OpenAI and Anthropic doubles
on loopback, the openai SDK as client, one request per prompt of a JSONL file.

    PYTHONPATH=src .venv/bin/python bench/review24b_gateway_share.py ROUTER.json HELD.jsonl
"""
import json
import pathlib
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import openai  # noqa: E402

from tests.doubles import AnthropicDouble, OpenAIDouble, Reply  # noqa: E402
from tests.harness import GatewayServer, make_config, two_tier_config  # noqa: E402

router, held_path = sys.argv[1], sys.argv[2]
held = [json.loads(line)["prompt"] for line in open(held_path) if line.strip()]
lo, hi = OpenAIDouble().start(), AnthropicDouble().start()
lo.default, hi.default = Reply(text="local"), Reply(text="frontier")
cfg = make_config(two_tier_config(lo.url, hi.url, routes={"main": {
    "policy": "learned", "router": router, "strong": "frontier", "weak": "local", "target_share": 0.3,
    "refit_threshold": False}}), pathlib.Path(tempfile.mkdtemp()))
g = GatewayServer(cfg).start()
try:
    c = openai.OpenAI(base_url=g.url + "/v1", api_key="unused", max_retries=0)
    n = sum(c.chat.completions.create(model="main", messages=[{"role": "user", "content": p}])
            .choices[0].message.content == "frontier" for p in held)
finally:
    g.stop()
    lo.stop()
    hi.stop()
print(f"{router}: {n} of {len(held)} to the strong model ({100 * n / len(held):.1f}%)")
