"""Peak memory and time of the leak check (values_in_body) and ValueSpread.add for a body that holds one detected
value many times (what is left when ValueSpread's match budget runs out). The peak is read under tracemalloc; the
time is a separate run without it (tracemalloc slows allocation-heavy code several times over), the median of
`--rounds`. Run it against each tree for an A/B:

    PYTHONPATH=src .venv/bin/python bench/leak_check_memory.py 1300000
    PYTHONPATH=/old/tree/src .venv/bin/python bench/leak_check_memory.py 1300000
"""
import argparse
import statistics
import time
import tracemalloc

from tierwise.privacy.request_vocabulary import ValueSpread, values_in_body

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("n", type=int, nargs="?", default=1_300_000, help="occurrences of the value")
ap.add_argument("--rounds", type=int, default=3, help="timed runs (median)")
ap.add_argument("--inside-words", action="store_true",
                help="every occurrence inside a word (`xAlx`): never a leak, so the check reads the whole body")
args = ap.parse_args()
n = args.n
text = ("xAlx " if args.inside_words else "Al ") * n
body = ('{"messages":[{"role":"user","content":"' + text + '"}]}').encode()
for name, fn in (("values_in_body", lambda: values_in_body(body, {"Al": "PERSON"})),
                 ("ValueSpread.add", lambda: ValueSpread({"Al": "PERSON"}).add(text, []))):
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    times = []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    print(f"{name}: body {len(body) / 1e6:.1f} MB, {n:,} occurrences: peak {peak / 2**20:.1f} MiB, "
          f"{statistics.median(times):.3f} s (median of {args.rounds})")
