"""A learned route that only measures shift (`shift: {demote: false}`) on traffic unlike its training data: does its
threshold follow the traffic to `target_share`? Trains a linear router on generated support-desk questions, then
serves generated German/poem prompts through `tierwise.library.Tierwise` to the loopback doubles of tests/doubles,
and prints the threshold's source and the strong share of the last 100 requests (session 36, newuser36b).

    PYTHONPATH=src .venv/bin/python bench/monitor_refit.py [--requests 240]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.doubles

from tests.doubles import AnthropicDouble, OpenAIDouble, Reply  # noqa: E402
from tierwise.evaluation.dataset import OutcomeDataset  # noqa: E402
from tierwise.library import Tierwise  # noqa: E402
from tierwise.routers import make_router, save_router  # noqa: E402
from tierwise.routers.shift import attach_profile  # noqa: E402


def training(n: int, rng: random.Random) -> OutcomeDataset:
    prompts, weak = [], []
    for i in range(n):
        hard = rng.random() < 0.4
        prompts.append(f"Explain invoice #{i} {'with prorated refunds, VAT reversal and currency conversion' if hard else 'total'}."
                       if i % 2 else f"Write a Python function that {'parses nested JSON' if hard else 'adds two numbers'} ({i}).")
        weak.append(0.0 if hard and rng.random() < 0.8 else 1.0)
    return OutcomeDataset("support", prompts, np.ones(n), np.array(weak), [str(i) for i in range(n)])


def shifted(n: int, rng: random.Random) -> list[str]:
    words = ["Wald", "Fluss", "Berg", "Stadt", "Licht", "Nacht"]
    return [rng.choice(["Translate to German: ", "Summarise this poem: "]) +
            " ".join(rng.choice(words) for _ in range(rng.randint(3, 30))) for _ in range(n)]


async def serve(config: Path, prompts: list[str]) -> tuple[str, float]:
    strong, source = [], ""
    async with Tierwise(config) as tw:
        for p in prompts:
            r = await tw.chat("main", [{"role": "user", "content": p}])
            strong.append(r.locality == "remote")
            source = next(s for s in r.steps if s["kind"] == "decision")["detail"]["threshold_source"]
    return source, float(np.mean(strong[-100:]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=240)
    args = ap.parse_args()
    rng = random.Random(7)
    local, frontier = OpenAIDouble(), AnthropicDouble()
    local.start()
    frontier.start()
    local.default, frontier.default = Reply(text="local answer"), Reply(text="frontier answer")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            data = training(240, rng)
            save_router(attach_profile(make_router("linear").fit(data), data.prompts), Path(tmp) / "r")
            config = Path(tmp) / "tierwise.yaml"
            config.write_text(f"""ledger: {{path: ledger.db}}
providers:
  local: {{kind: openai, base_url: {local.url}/v1, locality: local}}
  cloud: {{kind: anthropic, base_url: {frontier.url}, locality: remote}}
models:
  weak: {{provider: local, model: m}}
  strong: {{provider: cloud, model: claude-sonnet-4-5, price: {{input: 3, output: 15}}}}
routes:
  main: {{policy: learned, router: r.json, strong: strong, weak: weak, target_share: 0.3,
         shift: {{window: 40, min_requests: 20, demote: false}}}}
""")
            source, share = asyncio.run(serve(config, shifted(args.requests, rng)))
            print(f"threshold_source: {source}; strong share of the last 100 requests: {share:.2f} (target 0.30)")
    finally:
        local.stop()
        frontier.stop()


if __name__ == "__main__":
    main()
