"""One scan of a 1 MB hostile text, per shape, CPU seconds: the detector's work must stay linear in the text.

Shapes aimed at the session-25 additions (the second escapes, quoted-printable soft breaks, the markup view, the
grid test of spaced rows), the session-26 ones (base64 / hex decoded, escapes read again), the session-27 ones (layout, split base64, RLO) and at the older ones (spaced runs, ` @ `). Structured recognizers, NER off.

    .venv/bin/python bench/privacy_hostile_scan.py --src src [--src /tmp/base25/src]    # min of --repeat runs
"""

from __future__ import annotations

import argparse
import base64
import time

from privacy_plain_findings import detector  # the detector of a given source tree, NER off

MB = 1_000_000


def shapes() -> dict[str, str]:
    def fill(unit: str) -> str:
        return (unit * (MB // len(unit) + 1))[:MB]
    return {
        "backslashes": "\\" * MB,
        "%25 chains": fill("%25"),
        "&amp; chains": fill("&amp;"),
        "=\\n soft breaks": fill("a=\n"),
        "`**x` markup": fill("**x"),
        "`<b>` tags, digits": fill("1<b>2"),
        "emails in bold": fill("a@b.co **x** "),
        "markup every char, one stretch": fill("4<i></i>"),
        "spaced digit grid": fill("1 2 3 4 5 6 7 8 9\n"),
        "spaced digit rows, one line": fill("1 2 3 4 5 6 7 8 9 x "),
        "a @ ": fill("a @ "),
        # session 26 (encoded.py, nested escapes): every run decodes to text worth scanning
        "base64 runs of digits": fill(base64.b64encode(b"1234 5678 90").decode() + " "),
        "base64, one run of emails": base64.b64encode((b"a@b.co 1234 " * (MB // 16 + 1))[: MB * 3 // 4]).decode(),
        "base64 lines of 76": "\n".join(base64.encodebytes((b"x@y.io 5551234 " * (MB // 20 + 1))[: MB * 3 // 4])
                                        .decode().split("\n"))[:MB],
        "hex runs of emails": fill(b"ab@cd.io".hex() + " "),
        "&#37; chains": fill("&#37;"),
        # review26c (separated hex, UTF-16): one run of a MB, many short runs, runs that decode to nothing
        "separated hex, one run of emails": fill(" ".join(f"{b:02x}" for b in b"a@b.co 1234 ") + " "),
        "separated hex runs of emails": fill(":".join(f"{b:02x}" for b in b"ab@cd.io") + ", "),
        "separated hex, unprintable": fill("ff 00 "),
        "base64 of UTF-16 emails": fill(base64.b64encode("ab@cd.io 1234".encode("utf-16-le")).decode() + " "),
        "%26%23 chains": fill("%26%2337%3B"),
        # session 27 (layout.py, split base64, RLO): groups over tabs, cells and lines; pieces that look encoded
        "card groups over tabs, one run": fill("card\t4111\t1111\t1111\t1111\t"),
        "digit groups over cells and lines": fill("| 4111 | 1111 |\n"),
        "bold between digits": fill("4**1**1 "),
        "split base64 of emails": fill(" ".join(base64.b64encode(b"ab@cd.io 1234").decode()[i:i + 5] for i in range(0, 20, 5)) + " "),
        "pieces that look encoded, no base64": fill("a1 "),
        "RLO stretches of cards": fill("\u202e1111 1111 1111 1114\n"),
        "base64 padding before a line break": fill(base64.b64encode(b"ab@cd.io 1").decode() + "\nx "),
        # session 27, attack-privacy7 (cost): one base64-alphabet stretch of a MB whose only pair ends it; a MB of
        # short stretches each with a line break and 8 digits (each searched for a layout run)
        "one stretch, its pair at the end": "a" * (MB - 1) + "1",
        "stretches of 8 digits and a line break": fill("1234 5678\n."),
        "ordinary code": "",  # filled by main from this file's own text
        # review32d (round 12's 64 levels, percent-encoding between levels, rot13 and `word_` second readings)
        **nested_shapes(fill),
    }


def nested_shapes(fill) -> dict[str, str]:  # type: ignore[no-untyped-def]
    import codecs
    import gzip
    import os
    import urllib.parse

    def b64(s: str) -> str:
        return base64.b64encode(s.encode()).decode()

    def to_mb(seed: str, step) -> str:  # type: ignore[no-untyped-def]
        while len(step(seed)) <= MB:
            seed = step(seed)
        return seed

    def nest(s: str, n: int, step=b64) -> str:  # type: ignore[no-untyped-def]
        for _ in range(n):
            s = step(s)
        return s

    return {
        "one run, base64 nested to a MB (~31 levels)": to_mb("word " * 20, b64),
        "one run, base64 of percent-encoded, nested to a MB": to_mb("word " * 20, lambda s: b64(urllib.parse.quote(s, safe=""))),
        "one run, base32 nested to a MB": to_mb("word " * 20, lambda s: base64.b32encode(s.encode()).decode()),
        "one run, hex of base64 nested to a MB": to_mb("word " * 20, lambda s: b64(s).encode().hex()),
        "runs nested 12 times, decoding to nothing": fill(nest("no value here", 12) + " "),
        "runs nested 6 times through rot13": fill(codecs.encode(nest("no value here", 6), "rot13") + " "),
        "random base64 runs of 48": " ".join(base64.b64encode(os.urandom(36)).decode() for _ in range(MB // 49)),
        "ids of word_ and random base64": " ".join("toolu_" + base64.urlsafe_b64encode(os.urandom(18)).decode()
                                                  for _ in range(MB // 31)),
        # session 33 (privacy13: gzip inflated once per chain, rot13 at every level once per chain, Latin-1 prose)
        "one run, base64 nested to a MB through rot13 each level": to_mb("word " * 20, lambda s: b64(
            codecs.encode(s, "rot13"))),
        "runs nested 6 times, rot13 inside, decoding to nothing": fill(b64(codecs.encode(nest("no value", 5), "rot13"))
                                                                        + " "),
        "base64 of gzip bombs of digits": fill(b64_bytes(gzip.compress(b"1111 " * 20_000, mtime=0)) + " "),
        "base64 of gzip of emails": fill(b64_bytes(gzip.compress(b"ab@cd.io 1234 ", mtime=0)) + " "),
        "one run, gzip of a MB of digits": b64_bytes(gzip.compress(b"1234 5678 " * (MB // 10), mtime=0)),
        "base64 of Latin-1 prose with digits": fill(b64_bytes("Jöns Åberg 1234 5678 kort".encode("latin-1")) + " "),
        "base64 of UTF-8 prose with digits (read before)": fill(b64_bytes("Jöns Åberg 1234 5678 kort".encode()) + " "),
    }


def b64_bytes(b: bytes) -> str:
    return base64.b64encode(b).decode()

def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", action="append", required=True)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--only", action="append", help="only the shapes whose name holds this text")
    args = ap.parse_args()
    cases = shapes()
    own = open(__file__, encoding="utf-8").read()
    cases["ordinary code"] = (own * (MB // len(own) + 1))[:MB]
    if args.only:
        cases = {k: v for k, v in cases.items() if any(o in k for o in args.only)}
    results = {}
    for src in args.src:
        det = detector(src)
        for name, text in cases.items():
            best = float("inf")
            for _ in range(args.repeat):
                t0 = time.process_time()
                det.scan(text)
                best = min(best, time.process_time() - t0)
            results[(src, name)] = best
    print("| text (1 MB) | " + " | ".join(args.src) + " |")
    print("|---" * (len(args.src) + 1) + "|")
    for name in cases:
        print(f"| {name} | " + " | ".join(f"{results[(s, name)]:.2f}" for s in args.src) + " |")


if __name__ == "__main__":
    main()
