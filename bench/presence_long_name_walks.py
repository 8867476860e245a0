"""Five reads of the worker list (RedisPresence.workers) with COUNT planted presence key names of MB megabytes each,
on a redis-server of its own: Redis's CPU per walk, and whether the planted keys are still there (session 35, obs6).

    PYTHONPATH=src .venv/bin/python bench/presence_long_name_walks.py COUNT MB
"""
import asyncio
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, ".")
import orjson
import redis

from tests.harness import free_port
from tierwise.observability.topology import RedisPresence

port = free_port()
d = tempfile.mkdtemp()
srv = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", d, "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
time.sleep(0.5)
URL = f"redis://127.0.0.1:{port}/0"
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
srv.terminate()
