"""schemathesis against the gateway's published OpenAPI document, with every check.

Starts the gateway (real uvicorn on loopback) in front of the lenient upstream doubles of
tests/doubles, with one client key, and runs `schemathesis run <gateway>/openapi.json --checks all`
as a subprocess. The doubles answer every well-formed request, so a failure is the gateway's:
a 5xx, a response outside the document, a body the document allows but the gateway refuses
(positive_data_acceptance) or one it forbids but the gateway takes (negative_data_rejection),
a 405 without `Allow`, an ignored key.

    python bench/schemathesis_run.py --max-examples 1700     # >= 10,000 cases (bench/RESULTS.md)
    python bench/schemathesis_run.py --max-examples 40       # a short run (tests/fuzz/test_schemathesis.py)

Exit status is schemathesis's (0: no failures). Extra arguments after `--` go to schemathesis.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.doubles import AnthropicDouble, OpenAIDouble, Reply  # noqa: E402
from tests.harness import GatewayServer, make_config, two_tier_config  # noqa: E402

KEY_ENV = "TIERWISE_SCHEMATHESIS_KEY"
KEY = "schemathesis-client-key"


def schemathesis_bin() -> str:
    exe = Path(sys.executable).with_name("schemathesis")
    return str(exe) if exe.exists() else (shutil.which("schemathesis") or "schemathesis")


def run(max_examples: int, seed: int | None, extra: list[str], checks: str = "all") -> int:
    os.environ[KEY_ENV] = KEY
    oa, an = OpenAIDouble(strict=False), AnthropicDouble(strict=False)
    oa.start()
    an.start()
    oa.default = an.default = Reply(text="ok")
    tmp = Path(tempfile.mkdtemp(prefix="tierwise-schemathesis-"))
    cfg = two_tier_config(oa.url, an.url, routes={"main": {"policy": "fallback", "targets": ["frontier", "local"],
                                                           "retries": 0}})
    cfg["server"] = {"default_route": "main", "api_keys_env": [KEY_ENV]}
    cfg["ledger"] = {"path": str(tmp / "ledger.db")}
    # Every deployment answers; the breaker must not open on the doubles' rare 4xx to odd bodies.
    cfg["breaker"] = {"failures": 1_000_000, "cooldown": 0.1}
    g = GatewayServer(make_config(cfg, tmp)).start()
    try:
        cmd = [schemathesis_bin(), "run", f"{g.url}/openapi.json", "--checks", checks,
               "--header", f"Authorization: Bearer {KEY}", "--max-examples", str(max_examples),
               "--workers", "1", "--suppress-health-check", "all", "--continue-on-failure",
               "--request-timeout", "30", *extra]
        if seed is not None:
            cmd += ["--seed", str(seed)]
        print(" ".join(cmd), flush=True)
        env = {**os.environ, "SCHEMATHESIS_HOOKS": "schemathesis_hooks",
               "PYTHONPATH": os.pathsep.join([str(ROOT / "bench"), os.environ.get("PYTHONPATH", "")])}
        return subprocess.run(cmd, cwd=tmp, env=env).returncode
    finally:
        g.stop()
        oa.stop()
        an.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max-examples", type=int, default=1700, help="per operation and phase")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--checks", default="all", help="schemathesis checks (all by default)")
    ap.add_argument("rest", nargs=argparse.REMAINDER, help="extra schemathesis arguments (after --)")
    a = ap.parse_args()
    rest = a.rest[1:] if a.rest[:1] == ["--"] else a.rest
    sys.exit(run(a.max_examples, a.seed, rest, a.checks))


if __name__ == "__main__":
    main()
