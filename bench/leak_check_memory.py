"""Peak memory of the leak check (values_in_body) and ValueSpread.add for a body that holds one detected value
many times (what is left when ValueSpread's match budget runs out)."""
import sys
import time
import tracemalloc

from tierwise.privacy.request_vocabulary import ValueSpread, values_in_body

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_300_000
text = "Al " * n
body = ('{"messages":[{"role":"user","content":"' + text + '"}]}').encode()
for name, fn in (("values_in_body", lambda: values_in_body(body, {"Al": "PERSON"})),
                 ("ValueSpread.add", lambda: ValueSpread({"Al": "PERSON"}).add(text, []))):
    tracemalloc.start()
    t0 = time.perf_counter()
    fn()
    dt = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{name}: body {len(body) / 1e6:.1f} MB, {n:,} occurrences: peak {peak / 2**20:.0f} MiB, {dt:.2f} s")
