"""Cost of reading a client's address from `Forwarded` (server/forwarded.py) per request, for a given copy of
the module (to compare a branch against main's: `git show main:src/tierwise/server/forwarded.py > /tmp/x.py`)."""

from __future__ import annotations

import importlib.util
import sys
import timeit

HEADERS = (b"for=203.0.113.7;proto=https, for=10.0.0.2",
           b'for=203.0.113.7;proto=https;host="api.example.com", for=10.0.0.2')


def main() -> None:
    spec = importlib.util.spec_from_file_location("fw", sys.argv[1] if len(sys.argv) > 1
                                                  else "src/tierwise/server/forwarded.py")
    assert spec is not None and spec.loader is not None
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    proxies = m.TrustedProxies(["10.0.0.0/8"], "forwarded")
    for value in HEADERS:
        h = [(b"forwarded", value)]
        best = min(timeit.repeat(lambda h=h: proxies.client(h), number=20000, repeat=7)) / 20000
        print(f"{value.decode()[:48]:50} {best * 1e6:.1f} us")


if __name__ == "__main__":
    main()
