"""What `tracing.trust_traceparent` costs where a request's trace ids are made (Observer.inject / ids_for): the
header looked up by name from an attribute (`parent_header`, "" when untrusted) instead of a literal, with and
without a client's `traceparent`. CPU time per call, best of --repeat runs of --n calls.

    PYTHONPATH=src .venv/bin/python bench/traceparent_trust_cost.py
"""

from __future__ import annotations

import argparse
import timeit

from tierwise.observability.tracecontext import new_ids


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=7)
    a = ap.parse_args()
    client = {"content-type": "application/json",
              "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
    plain = {"content-type": "application/json"}
    cases = {
        "literal name (before), no header": lambda: new_ids(plain.get("traceparent"), 1.0),
        "trusted, no header": lambda: new_ids(plain.get(trusted), 1.0),
        "literal name (before), client header": lambda: new_ids(client.get("traceparent"), 1.0),
        "trusted, client header": lambda: new_ids(client.get(trusted), 1.0),
        "untrusted (default), client header": lambda: new_ids(client.get(untrusted), 1.0),
    }
    trusted, untrusted = "traceparent", ""
    for name, fn in cases.items():
        best = min(timeit.repeat(fn, number=a.n, repeat=a.repeat, timer=__import__("time").process_time))
        print(f"{name:40s} {best / a.n * 1e9:8.0f} ns a request")


if __name__ == "__main__":
    main()
