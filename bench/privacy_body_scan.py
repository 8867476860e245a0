"""What scanning the client's forwarded body (request_scan: `body...` locations) costs per crossing.

The request of `bench/privacy_boundary.py` (~2,600 tokens, 15 values, `pii: redact`, NER off) as
an Anthropic client sends it: encoded to a Messages body, decoded again, so it carries its
`source_body` as a real request does. Timed (CPU time of this thread, median of rounds): a first
crossing (fresh guard: scan + policy + redaction + leak check + restore) and a warm one (the next
remote call of the same request), with the body, and with it dropped (`with_changes`: the
canonical texts only). Run it against each tree for an A/B:

    PYTHONPATH=src nice -n 5 .venv/bin/python bench/privacy_body_scan.py
    PYTHONPATH=/old/tree/src nice -n 5 .venv/bin/python bench/privacy_body_scan.py

`--payload-kib N` adds a base64 PDF document block of N KiB (and `--payload-kib 0`, the default,
none): what the check that a payload is base64 indeed (request_scan.payload_url) costs.
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import os
import statistics
import time
import timeit
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parent
spec = importlib.util.spec_from_file_location("privacy_boundary", HERE / "privacy_boundary.py")
pb = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
spec.loader.exec_module(pb)  # type: ignore[union-attr]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--payload-kib", type=int, default=0, help="add a base64 PDF document of this many KiB")
    args = ap.parse_args()
    from tierwise.config import parse_config
    from tierwise.gateway import Gateway
    from tierwise.policies.base import Context
    from tierwise.privacy.boundary import Boundary, Guard
    from tierwise.trace import Trace
    from tierwise.wire import anthropic_messages

    base = """
providers:
  cloud: {kind: anthropic, base_url: "http://127.0.0.1:9", locality: remote}
models:
  frontier: {provider: cloud, model: big}
ledger: {enabled: false}
privacy: {ner: {enabled: false}, classes: {pii: {}}, policy: {pii: redact}}
"""
    cfg = parse_config(base)
    gw = Gateway(cfg)
    dep = gw.deployments["frontier"]
    b = Boundary(cfg.privacy)
    body = orjson.loads(orjson.dumps(anthropic_messages.encode_request(pb.big_request(), "frontier")))
    if args.payload_kib:
        pdf = base64.b64encode(b"%PDF-1.4\n" + os.urandom(args.payload_kib * 768)).decode()
        first = body["messages"][0]
        text = first["content"] if isinstance(first["content"], list) else [{"type": "text", "text": first["content"]}]
        first["content"] = [{"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                                             "data": pdf}}, *text]
    with_body = anthropic_messages.decode_request(body, {})
    assert with_body.source_body is not None
    without = with_body.with_changes()

    def crossing(g: Guard, r: object) -> None:
        c = Context(Trace("req_bench", "main"), gw.resolve)
        out, p, check = g.outgoing(dep, r, c)  # type: ignore[arg-type]
        check(orjson.dumps(dep.codec.encode_request(out, "big")))
        if p is not None:
            from tierwise.privacy.redact_canonical import restore_response
            restore_response(pb.answer_for(out), p)

    warm = {id(with_body): Guard(b, "main"), id(without): Guard(b, "main")}
    for r in (with_body, without):
        crossing(warm[id(r)], r)
    res: dict[str, list[float]] = {k: [] for k in ("first+body", "first", "warm+body", "warm")}
    for _ in range(7):
        for name, r in (("first+body", with_body), ("first", without)):
            res[name].append(statistics.median(timeit.repeat(lambda r=r: crossing(Guard(b, "main"), r), number=20,
                                                             repeat=5, timer=time.thread_time)) / 20)
        for name, r in (("warm+body", with_body), ("warm", without)):
            res[name].append(statistics.median(timeit.repeat(lambda r=r: crossing(warm[id(r)], r), number=50,
                                                             repeat=5, timer=time.thread_time)) / 50)
    for k, v in res.items():
        print(f"{k:12s} {statistics.median(v) * 1e6:9.0f} µs")


if __name__ == "__main__":
    main()
