"""`tierwise worker --list` against hostile presence records (session 35, obs6): one planted record of each case
(`hash`, `big`: 200 MB, `name`: a 64 MB key name, `many`: 20,000 junk records) beside one good record, on the shared
Redis's db 9 under a prefix of its own (deleted after). Prints exit code, time, bytes Redis sent, the output's head.

    PYTHONPATH=src .venv/bin/python bench/presence_list_attack.py hash|big|name|many
"""
import resource
import sys
import time

import orjson
import redis
import yaml

sys.path.insert(0, ".")
from click.testing import CliRunner

from tests.dispatch.conftest import worker_config
from tierwise.cli import main

url = "redis://127.0.0.1:6379/9"
P = "obs6probe:"
CONFIG = "/tmp/presence_list_attack.yaml"
r = redis.Redis.from_url(url)
for k in r.scan_iter(P + "*"):
    r.delete(k)
r.set(f"{P}presence:acme:good", orjson.dumps({"id": "good", "capabilities": ["classify"]}), ex=300)
case = sys.argv[1]
if case == "hash":
    r.hset(f"{P}presence:acme:h", mapping={"capabilities": "x"})
    r.expire(f"{P}presence:acme:h", 300)
elif case == "big":
    r.set(f"{P}presence:acme:big", b'{"id":"big","pad":"' + b"x" * (200 << 20) + b'"}', ex=300)
elif case == "name":
    r.set(f"{P}presence:acme:" + "n" * (64 << 20), orjson.dumps({"id": "n"}), ex=300)
elif case == "many":
    pipe = r.pipeline()
    for i in range(20000):
        pipe.set(f"{P}presence:acme:junk{i}", b"notjson", ex=300)
    pipe.execute()
open(CONFIG, "w").write(yaml.safe_dump(worker_config("http://127.0.0.1:9", P, worker_id="x", redis_url=url)))
before = int(r.info("stats")["total_net_output_bytes"])
t = time.time()
out = CliRunner().invoke(main, ["worker", "-c", CONFIG, "--list"])
print(case, "exit", out.exit_code, f"secs {time.time() - t:.2f}", f"redis sent {int(r.info('stats')['total_net_output_bytes']) - before:,}",
      "maxrss MB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
print(out.output[:300].replace("x" * 50, "x…"))
for k in r.scan_iter(P + "*", count=1000):
    r.delete(k)
