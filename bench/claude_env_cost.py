"""What `tierwise claude`'s withholding of the gateway's secrets costs per launch (review38c): the plain substring test
of session 38 against `secret_scrub.finder` (every form of each secret and its 12-character runs, one automaton)."""

from __future__ import annotations

import argparse
import os
import secrets
import timeit

from tierwise.secret_scrub import finder


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variables", type=int, default=100, help="variables added to this environment")
    ap.add_argument("--secrets", type=int, default=10)
    ap.add_argument("--number", type=int, default=20)
    a = ap.parse_args()
    for i in range(a.variables):
        os.environ[f"BENCH_VAR_{i}"] = "/usr/local/bin:/usr/bin:" + secrets.token_hex(16)
    withheld = {secrets.token_urlsafe(30) for _ in range(a.secrets)}

    def substring() -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if not any(s in v for s in withheld)}

    def forms() -> dict[str, str]:
        holds = finder(withheld)
        return {k: v for k, v in os.environ.items() if not holds(v)}

    old = timeit.timeit(substring, number=a.number) / a.number
    new = timeit.timeit(forms, number=a.number) / a.number
    print(f"{len(os.environ)} variables, {a.secrets} secrets: substring {old * 1e3:.2f} ms, finder {new * 1e3:.2f} ms "
          f"per launch ({new / old:.0f}x)")


if __name__ == "__main__":
    main()
