"""One blackboard exchange of a gateway against a workers' hash of N planted fields of SIZE bytes stamped now (a
worker's Redis user may HSET that hash), on a redis-server of its own (session 35, obs6). TTL: the board's `ttl_s`
(3600 keeps the fields fresh while they are planted
5, the default, lets them go stale first).

    PYTHONPATH=src .venv/bin/python bench/board_workers_hash_attack.py N SIZE TTL
"""
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, ".")
import redis
import redis.asyncio as aredis

from tests.harness import OwnRedis
from tierwise.dispatch.blackboard import Blackboard
from tierwise.dispatch.blackboard_settings import BlackboardConfig
from tierwise.providers.breaker import CircuitBreaker
from tierwise.providers.live_stats import LiveStats

srv = OwnRedis(Path(tempfile.mkdtemp()), appendonly=False)  # a redis-server of its own, started when it answers
srv.start()
port, URL = srv.port, srv.url
N, SIZE = int(sys.argv[1]), int(sys.argv[2])
async def main():
    admin = aredis.from_url(URL)
    prefix = "p:"
    own = LiveStats(window=20, breaker=CircuitBreaker())
    gw = Blackboard(BlackboardConfig(enabled=True, key_prefix=prefix, replica_id="gw-1", timeout=30, ttl_s=float(sys.argv[3])), {"frontier": own}, URL)
    await gw.start()
    now_ms = int((await admin.time())[0]) * 1000
    pipe = admin.pipeline(transaction=False)
    for i in range(N):
        pipe.hset(prefix + "workers", f"w{i}", f"{now_ms} " + '{"models":{"m":{"w":1,"pad":"' + "x" * SIZE + '"}}}')
    await pipe.execute()
    r = redis.Redis(port=port)
    b = int(r.info("stats")["total_net_output_bytes"])
    c = r.info("cpu")["used_cpu_user"] + r.info("cpu")["used_cpu_sys"]
    t = time.monotonic()
    p = time.process_time()
    await gw.exchange()
    print(f"{N} fields x {SIZE} B: one exchange: Redis sent {int(r.info('stats')['total_net_output_bytes']) - b:,} B, "
          f"Redis CPU {r.info('cpu')['used_cpu_user'] + r.info('cpu')['used_cpu_sys'] - c:.2f} s, wall {time.monotonic()-t:.2f} s, gateway CPU {time.process_time()-p:.2f} s, peers {gw.replicas}, degraded {gw.degraded}")
    await gw.close()
    await admin.aclose()
asyncio.run(main())
srv.stop()
