"""Five reads of the worker list (RedisPresence.workers) with COUNT planted presence key names of MB megabytes each,
on a redis-server of its own: Redis's CPU per walk, and whether the planted keys are still there (session 35, obs6).

    PYTHONPATH=src .venv/bin/python bench/presence_long_name_walks.py COUNT MB
"""
import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, ".")
import orjson
import redis

from tests.harness import OwnRedis
from tierwise.observability.topology import RedisPresence

srv = OwnRedis(Path(tempfile.mkdtemp()), appendonly=False)  # a redis-server of its own, started when it answers
srv.start()
port, URL = srv.port, srv.url
r = redis.Redis(port=port)
for i in range(int(sys.argv[1])):
    r.set("tierwise:presence:default:" + str(i) + "n" * (int(sys.argv[2]) << 20), b"{}", ex=600)
r.set("tierwise:presence:default:w1", orjson.dumps({"capabilities": ["code"]}), ex=600)
async def main():
    p = RedisPresence(URL)
    for n in range(5):
        c = r.info("cpu")
        c = c["used_cpu_user"] + c["used_cpu_sys"]
        ids = [w["id"] for w in await p.workers()]
        c2 = r.info("cpu")
        c2 = c2["used_cpu_user"] + c2["used_cpu_sys"]
        print(f"walk {n}: Redis CPU {(c2 - c)*1000:.0f} ms, keys left {r.dbsize()}, listed {ids}, lua mem {r.info('memory')['used_memory_lua']:,}")
    await p.aclose()
asyncio.run(main())
srv.stop()
