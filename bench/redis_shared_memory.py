"""What a client that fills the answer cache does to the other state on the same Redis.

A redis-server of this run's own (a free port, `--maxmemory`, `--maxmemory-policy` as given); one
`tierwise serve` process with the Redis answer cache and a Redis budget on it; an OpenAI SDK client asks
`--requests` distinct questions (temperature 0: cacheable) whose answers are `--answer-kb` KB each. Printed:
the outcomes, the budget's counted spend next to the real spend, and Redis's memory and evictions.

    PYTHONPATH=src .venv/bin/python bench/redis_shared_memory.py --policy noeviction
    PYTHONPATH=src .venv/bin/python bench/redis_shared_memory.py --policy allkeys-lru
    PYTHONPATH=src .venv/bin/python bench/redis_shared_memory.py --policy noeviction --cache-max-bytes 4194304

(`--cache-max-bytes` sets the cache's own `max_bytes`, which the Redis backend keeps since session 23; its
default, 64 MiB, is more than this 8 MB server holds.)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2
import openai
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.doubles import OpenAIDouble, Reply  # noqa: E402
from tests.harness import ServeProcess, free_port  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--policy", default="noeviction")
    ap.add_argument("--maxmemory", default="8mb")
    ap.add_argument("--requests", type=int, default=120)
    ap.add_argument("--answer-kb", type=int, default=100)
    ap.add_argument("--cache-max-bytes", type=int, default=64 * 1024 * 1024)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        rport = free_port()
        rs = subprocess.Popen(["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--maxmemory", args.maxmemory, "--maxmemory-policy", args.policy,
                               "--dir", str(tmp)], stdout=subprocess.DEVNULL)
        time.sleep(0.5)
        url = f"redis://127.0.0.1:{rport}/0"
        up = OpenAIDouble()
        up.default = Reply(text=("y" * 1023 + " ") * args.answer_kb, usage=(20, 25 * args.answer_kb))
        up.start()
        port = free_port()
        cfg = tmp / "tw.yaml"
        cfg.write_text(f"""
server: {{port: {port}, default_route: main}}
ledger: {{path: {tmp / 'ledger.db'}}}
providers:
  cloud: {{kind: openai, base_url: "{up.url}/v1", locality: remote}}
models:
  frontier: {{provider: cloud, model: big, price: {{input: 3, output: 15}}}}
routes:
  main: {{policy: fallback, targets: [frontier], retries: 0}}
cache: {{enabled: true, backend: redis, redis_url: "{url}", all_routes: true, max_entry_bytes: 1048576,
         max_bytes: {args.cache_max_bytes}}}
budgets:
  store: {{backend: redis, redis_url: "{url}"}}
  limits: [{{name: day, usd: 1000}}]
""")
        s = ServeProcess(cfg, port, tmp)
        seen: dict[str, int] = {}
        try:
            oc = openai.OpenAI(base_url=s.url + "/v1", api_key="k", max_retries=0, timeout=30)
            for i in range(args.requests):
                try:
                    oc.chat.completions.create(model="main", temperature=0, max_tokens=30000,
                                               messages=[{"role": "user", "content": f"question {i}"}])
                    seen["answered"] = seen.get("answered", 0) + 1
                except openai.APIStatusError as e:
                    k = f"http {e.status_code}: {str(e.message)[:70]}"
                    seen[k] = seen.get(k, 0) + 1
            time.sleep(1)
            st = httpx2.get(s.url + "/v1/tierwise/budgets", timeout=10).json()
            r = redis.Redis.from_url(url)
            info = r.info()
            counted = st["budgets"][0].get("usd_used") if st.get("budgets") else None
            real = len(up.requests) * (20 * 3 + 25 * args.answer_kb * 15) / 1e6
            print(f"policy {args.policy}, maxmemory {args.maxmemory}: {seen}")
            print(f"  upstream calls {len(up.requests)}, real spend ${real:.4f}, budget counted {counted}; "
                  f"redis used {info['used_memory_human']}, evicted_keys {info['evicted_keys']}, keys {r.dbsize()}")
            r.close()
        finally:
            s.stop()
            up.stop()
            rs.kill()
            rs.wait()


if __name__ == "__main__":
    main()
