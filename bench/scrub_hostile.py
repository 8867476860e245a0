"""CPU time of the secret scrubber on text made of key-shape anchors (`x-api-key`, `password=`, `sk-` repeated),
for this tree and another (A/B), each in a child process. Such text reaches the scrubber from an upstream's error
(4,000 characters read, scrubbed on several exits), captured content (`tracing.capture_content`, 16,384
characters, on the span and the dashboard's trace) and a feedback reason (2,000). Each text is scrubbed
`--repeat` times and the fastest is kept; a time, so the machine's load moves it (the ratios are the point).

    PYTHONPATH=src .venv/bin/python bench/scrub_hostile.py --baseline-src /tmp/base/src
    PYTHONPATH=src .venv/bin/python bench/scrub_hostile.py --baseline-src /tmp/base/src --e2e

`--e2e`: the same through a gateway on loopback (the tests' OpenAI double and harness): the upstream answers
400 with 4,000 characters of `x-api-key` (all it reads of an error), against a plain 400 of a few words; the
median wall time of 5 requests each, with the openai SDK.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

TEXTS = {
    "x-api-key × n": "x-api-key",
    "password= × n": "password=",
    "sk- × n": "sk-",
    "authorization × n": "authorization",
    "sk-…password= × n": "sk-aaaaaaaaaaaaaaaaaaaapassword=",
}
SIZES = (2_000, 4_000, 16_384)

CHILD = r"""
import json, sys, time
from tierwise.secret_scrub import SecretScrubber
texts, sizes, repeat = json.loads(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3])
s = SecretScrubber(["tw-bench-" + "0123456789abcdef" * 2])
out = {}
for name, unit in texts.items():
    for n in sizes:
        t = (unit * (n // len(unit) + 1))[:n]
        best = min((lambda: (lambda t0: (s.scrub(t), time.perf_counter() - t0)[1])(time.perf_counter()))()
                   for _ in range(repeat))
        out[f"{name}|{n}"] = best * 1000
print(json.dumps(out))
"""


E2E = r"""
import json, os, pathlib, statistics, sys, tempfile, time
sys.path.insert(0, os.getcwd())
import openai
from tests.doubles import Fail, OpenAIDouble
from tests.harness import GatewayServer, make_config
up = OpenAIDouble().start()
g = GatewayServer(make_config({"providers": {"o": {"kind": "openai", "base_url": up.url + "/v1"}},
                               "models": {"m": {"provider": "o", "model": "m"}}, "routes": {"main": "m"}},
                              pathlib.Path(tempfile.mkdtemp()))).start()
c = openai.OpenAI(base_url=g.url + "/v1", api_key="x", max_retries=0)
out = {}
for name, text in (("plain 400", "model not found"), ("400 of 4,000 chars of x-api-key", ("x-api-key" * 445)[:4000])):
    times = []
    for _ in range(5):
        up.script(Fail(400, text))
        t0 = time.perf_counter()
        try:
            c.chat.completions.create(model="main", messages=[{"role": "user", "content": "hi"}])
        except openai.BadRequestError:
            pass
        times.append((time.perf_counter() - t0) * 1000)
    out[name] = statistics.median(times)
g.stop(); up.stop()
print(json.dumps(out))
"""


def e2e(src: str) -> dict[str, float]:
    import os

    r = subprocess.run([sys.executable, "-c", E2E], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": src, "HF_HUB_OFFLINE": "1"}, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def run(src: str, repeat: int) -> dict[str, float]:
    env_src = {"PYTHONPATH": src}
    import os

    r = subprocess.run([sys.executable, "-c", CHILD, json.dumps(TEXTS), json.dumps(SIZES), str(repeat)],
                       capture_output=True, text=True, env={**os.environ, **env_src}, check=True)
    return json.loads(r.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", default="src")
    ap.add_argument("--baseline-src", required=True)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--e2e", action="store_true")
    a = ap.parse_args()
    if a.e2e:
        A, B = e2e(a.src), e2e(a.baseline_src)
        print("| upstream's error | A ms | B ms |")
        print("|---|---:|---:|")
        for key in A:
            print(f"| {key} | {A[key]:.1f} | {B[key]:.1f} |")
        return
    A, B = run(a.src, a.repeat), run(a.baseline_src, a.repeat)
    print("| text | characters | A ms | B ms | B / A |")
    print("|---|---:|---:|---:|---:|")
    for key in A:
        name, n = key.split("|")
        print(f"| {name} | {int(n):,} | {A[key]:.2f} | {B[key]:.2f} | {B[key] / A[key]:.0f} |")


if __name__ == "__main__":
    main()
