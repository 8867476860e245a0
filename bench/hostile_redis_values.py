"""Values written into a deployment's Redis keys from outside (session 32, obs4): what one gateway then does.

One in-process gateway (the tests' doubles: an Anthropic upstream at $3/$15 per million tokens, 40 in / 400 out per
answer), its budgets, answer cache and approvals on the shared Redis's db 9 under prefixes of the run's own (deleted
after). Against the tree at `--src` (default this checkout's; main's for "before"):

- `budget`: a $0.005/day budget is spent (requests until refused), then `-1000000` is written into its USD counter;
  then `--requests` more requests: how many the upstream answered (and paid) after the write.
- `rate`: a 3-a-minute rate limit is used up, its request counter set to `-1000`, then `--requests` more.
- `cache`: the cached answer's entry is replaced by a valid one of `--planted-mb` MB (the bound is 64 KiB); then
  `--lookups` identical requests: bytes Redis sent out (INFO `total_net_output_bytes`, the shared server's: other
  traffic adds to it), the characters of the answers the client got, and the upstream's calls.

    PYTHONPATH=src .venv/bin/python bench/hostile_redis_values.py [--src OTHER/src]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = "redis://127.0.0.1:6379/9"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", default=str(ROOT / "src"))
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--lookups", type=int, default=10)
    ap.add_argument("--planted-mb", type=float, default=8.0)
    a = ap.parse_args()
    sys.path.insert(0, a.src)
    sys.path.insert(1, str(ROOT))
    import openai
    import redis

    from tests.doubles import AnthropicDouble, OpenAIDouble, Reply
    from tests.gateway.conftest import oai
    from tests.harness import GatewayServer, drop_redis_keys, make_config, two_tier_config

    r = redis.Redis.from_url(REDIS_URL)
    ant, loc = AnthropicDouble(), OpenAIDouble()
    ant.start()
    loc.start()
    ant.default = Reply(text="ok", usage=(40, 400))

    def ask(c: openai.OpenAI, n: int, model: str = "main") -> list[object]:
        out: list[object] = []
        for _ in range(n):
            try:
                out.append(c.chat.completions.create(model=model, max_tokens=50, temperature=0,
                                                     messages=[{"role": "user", "content": "x"}]))
            except openai.APIStatusError as e:
                out.append(e.status_code)
        return out

    def gw(prefix: str, **kw: object) -> GatewayServer:
        cfg = two_tier_config(loc.url, ant.url, **kw)
        cfg["ledger"] = {"enabled": False}
        return GatewayServer(make_config(cfg, Path(tempfile.mkdtemp()))).start()

    def hset_all(prefix: str, first: str, value: str) -> None:
        for k in r.scan_iter(match=prefix + "*"):
            if r.type(k) == b"hash" and (b":b:" in k or b":rl:" in k):
                for f in r.hkeys(k):
                    if f.decode()[0] == first:
                        r.hset(k, f, value)

    print(f"tree: {a.src}")
    for kind in ("budget", "rate"):
        prefix = f"tw-bench-hostile:{uuid.uuid4().hex[:10]}:"
        store = {"backend": "redis", "redis_url": REDIS_URL, "key_prefix": prefix, "timeout": 30}
        kw: dict[str, object] = ({"budgets": {"store": store, "limits": [{"name": "team", "usd": 0.005}]}}
                                 if kind == "budget" else
                                 {"budgets": {"store": store},
                                  "rate_limits": {"limits": [{"name": "rpm", "per": "global", "requests_per_minute": 3}]}})
        g = gw(prefix, **kw)
        ant.requests.clear()
        try:
            c = oai(g)
            before = ask(c, 12 if kind == "budget" else 5)
            paid0 = len(ant.requests)
            ok0 = sum(1 for x in before if not isinstance(x, int))
            hset_all(prefix, "u" if kind == "budget" else "r", "-1000000" if kind == "budget" else "-1000")
            ant.requests.clear()
            after = ask(c, a.requests)
            ok = sum(1 for x in after if not isinstance(x, int))
            codes = sorted({x for x in after if isinstance(x, int)})
            print(f"{kind}: {ok0} answered before the cap; after the write {ok} of {a.requests} answered "
                  f"(upstream calls {len(ant.requests)}), refusals {codes}; before the write: {paid0} calls")
        finally:
            g.stop()
            drop_redis_keys(REDIS_URL, prefix)

    prefix = f"tw-bench-hostile-cache-{uuid.uuid4().hex[:8]}:"
    cache = {"enabled": True, "backend": "redis", "redis_url": REDIS_URL, "redis_prefix": prefix,
             "redis_timeout": 30, "max_entry_bytes": 65536, "routes": {"main": {}}}
    ant.default = Reply(text="HONESTANSWERTEXT", usage=(40, 400))
    g = gw(prefix, cache=cache, routes={"main": ["frontier"]})
    try:
        c = oai(g)
        ask(c, 2)
        (key,) = [k for k in r.scan_iter(match=prefix + "*") if r.type(k) == b"string" and
                  b"HONESTANSWERTEXT" in (r.get(k) or b"")]
        r.set(key, r.get(key).replace(b"HONESTANSWERTEXT", b"P" * int(a.planted_mb * 1e6)), keepttl=True)  # type: ignore[union-attr]
        ant.requests.clear()
        out0 = r.info("stats")["total_net_output_bytes"]
        got = ask(c, a.lookups)
        sent = r.info("stats")["total_net_output_bytes"] - out0
        chars = [len(x.choices[0].message.content or "") for x in got if not isinstance(x, int)]  # type: ignore[attr-defined]
        print(f"cache: {a.lookups} lookups of a planted {a.planted_mb:g} MB entry: Redis sent {sent / 1e6:.2f} MB "
              f"({sent / a.lookups / 1e6:.3f} MB a lookup); answers' characters {sorted(set(chars))}; "
              f"upstream calls {len(ant.requests)}")
    finally:
        g.stop()
        drop_redis_keys(REDIS_URL, prefix)
        ant.stop()
        loc.stop()
        r.close()
    os._exit(0)


if __name__ == "__main__":
    main()
