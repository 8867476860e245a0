"""Per-decision cost of learned routers (`score_text`) in two tierwise trees, A/B, on long prompts (issue 22:
"`stack-lsa` took 2.65 ms per decision on these longer prompts, over the 2 ms target").

The routers are fitted once, in this process (this tree), on GSM8K + MT-Bench as bench/routers_transfer_cputime.py
does, and saved; each tree's worker loads the same files, so both score with the same weights. Prompt sets:
  longest    the 300 longest MMLU prompts (median ~2,200 characters, as bench/routers_transfer_cputime.py);
  five-shot  300 MMLU questions (seeded sample) each after 5 questions of its subject with an answer letter, in
             the 5-shot format ("The following are multiple choice questions (with answers) about …");
  mt-bench   the 72 MT-Bench prompts (open questions, no options).

CPU time (default): one worker process per tree; each decision is asked of both, interleaved request by request
(the order alternating), and each worker times its own call — CPU time of its process (time.process_time_ns)
and wall time — with the token-hash cache cleared first. A plain reference (lower-case, split into words with
one regex, CRC-32 each word) is timed the same way in both workers: its ratio says whether the two saw the same
machine. Each worker also returns the score, so the table says whether the trees' decisions are identical.

`--profile`: where the time goes in tree A (`--tree`), in a child process: cProfile over every router's
decisions on every prompt set, the functions with the most own time and the routers' own functions by cumulative
time (indicative: the profiler's cost per call inflates small functions).

`--instructions`: each tree's worker runs under valgrind's callgrind (counting off until switched on), scores
every prompt once to warm up, then counts windows of `-n` decisions (callgrind_control), and a window of none
for the fixed cost of switching: user-space instructions per decision, which the machine's load does not move.

    PYTHONPATH=src TIERWISE_DATA=/work/shared/data OMP_NUM_THREADS=1 .venv/bin/python bench/routers_decision_ab.py \\
        --baseline /tmp/tc-base [--routers transfer-lsa,stack-lsa] [--prompts longest,five-shot,mt-bench] \\
        [--rounds 3] [--instructions [-n 100]] [--profile] [--numpy-hashes A] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SETS = ("longest", "five-shot", "mt-bench")
WORD = re.compile(r"\w+")


def reference(prompt: str) -> int:
    """The plain reference: a fixed amount of ordinary Python string work per prompt."""
    return sum(map(zlib.crc32, map(str.encode, WORD.findall(prompt.lower()))))


def prompt_sets(names: list[str]) -> dict[str, list[str]]:
    import numpy as np

    from tierwise.evaluation.loaders import load_benchmark

    mmlu = load_benchmark("mmlu")
    out: dict[str, list[str]] = {}
    for name in names:
        if name == "longest":
            out[name] = sorted(mmlu.prompts, key=len)[-300:]
        elif name == "five-shot":
            by_subject: dict[str, list[int]] = {}
            for i, s in enumerate(mmlu.subjects):
                by_subject.setdefault(s, []).append(i)
            prompts = []
            for i in np.random.default_rng(0).choice(len(mmlu), 300, replace=False):
                same = by_subject[mmlu.subjects[i]]
                at = same.index(int(i))
                shots = [same[(at + k) % len(same)] for k in range(1, 6)]
                head = f"The following are multiple choice questions (with answers) about {mmlu.subjects[i].replace('_', ' ')}.\n\n"
                prompts.append(head + "".join(f"{mmlu.prompts[j]} {'ABCD'[k % 4]}\n\n" for k, j in enumerate(shots))
                               + mmlu.prompts[i])
            out[name] = prompts
        elif name == "mt-bench":
            out[name] = list(load_benchmark("mt-bench").prompts)
        else:
            raise SystemExit(f"unknown prompt set {name!r}; choose from {', '.join(SETS)}")
    return out


# --- the worker: one tree's routers, loaded from the saved files --------------------------------------------
def _load(scratch: Path) -> tuple[list, dict[str, list[str]], object]:
    from tierwise.routers import features, load_router
    from tierwise.routers.features import token_hashes

    if os.environ.get("BENCH_NUMPY_HASHES"):  # --numpy-hashes: as without a C compiler at install
        features.native_hashes = None

    meta = json.loads((scratch / "run.json").read_text())
    routers = [load_router(scratch / f"router{i}") for i in range(len(meta["routers"]))]
    calls = [r.score_text for r in routers] + [reference]
    return calls, json.loads((scratch / "prompts.json").read_text()), token_hashes.cache_clear


def worker(scratch: Path) -> None:
    """Answers `router set index` lines with `cpu_ns wall_ns score` (router index -1: the plain reference)."""
    calls, prompts, clear = _load(scratch)
    for f in calls:  # warm: every call on every prompt once
        for ps in prompts.values():
            for p in ps:
                clear()
                f(p)
    print("ready", flush=True)
    for line in sys.stdin:
        r, s, i = line.split()
        f, p = calls[int(r)], prompts[s][int(i)]
        clear()
        c0, w0 = time.process_time_ns(), time.perf_counter_ns()
        score = f(p)
        w1, c1 = time.perf_counter_ns(), time.process_time_ns()
        print(c1 - c0, w1 - w0, repr(float(score)), flush=True)


def _callgrind(cmd: str) -> None:
    subprocess.run(["callgrind_control", *cmd.split(), str(os.getpid())], capture_output=True, check=True)


def counting_worker(scratch: Path, n: int) -> None:
    """Under callgrind: per router and prompt set, a window of no decision, then windows of `n` decisions
    covering the set, each dumped as `r<router>s<set>n<decisions>w<window>`."""
    import gc

    calls, prompts, clear = _load(scratch)
    for f in calls:
        for ps in prompts.values():
            for p in ps:
                clear()
                f(p)
    for r, f in enumerate(calls):
        for s, ps in enumerate(prompts.values()):
            windows = [[]] + [ps[k:k + n] for k in range(0, len(ps), n)]
            for w, window in enumerate(windows):
                gc.collect()
                _callgrind("-i on")
                for p in window:
                    clear()
                    f(p)
                _callgrind(f"-d r{r}s{s}n{len(window)}w{w}")
                _callgrind("-i off")


# --- the parent -----------------------------------------------------------------------------------------------
def fit_and_save(specs: list[str], sets: list[str], scratch: Path) -> None:
    sys.path.insert(0, str(HERE))
    from routers_transfer import build

    from tierwise.evaluation.dataset import concat, unit_scale
    from tierwise.evaluation.loaders import load_benchmark
    from tierwise.routers import save_router
    from tierwise.routers.embedding_cache import EmbeddingCache

    train = concat([unit_scale(load_benchmark(n)) for n in ("gsm8k", "mt-bench")], "gsm8k+mt-bench")
    for i, spec in enumerate(specs):
        t0 = time.time()
        save_router(build(spec, EmbeddingCache(None)).fit(train), scratch / f"router{i}")
        print(f"<!-- {spec} fitted in {time.time() - t0:.0f} s -->", flush=True)
    (scratch / "prompts.json").write_text(json.dumps(prompt_sets(sets)))
    (scratch / "run.json").write_text(json.dumps({"routers": specs, "sets": sets}))


NUMPY_HASHES: set[str] = set()  # labels of the trees whose workers hash tokens without the C extension


def tree_env(src: Path, label: str = "") -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(src), OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    if label in NUMPY_HASHES:
        env["BENCH_NUMPY_HASHES"] = "1"
    return env


def src_of(tree: str) -> Path:
    p = Path(tree).resolve()
    for cand in (p / "src", p):
        if (cand / "tierwise" / "__init__.py").is_file():
            return cand
    raise SystemExit(f"{tree}: no tierwise package in it or in its src/")


def cpu(trees: dict[str, Path], scratch: Path, specs: list[str], prompts: dict[str, list[str]], rounds: int) -> None:
    procs = {}
    for label, src in trees.items():
        procs[label] = subprocess.Popen([sys.executable, __file__, "--worker", str(scratch)], env=tree_env(src, label),
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    for p in procs.values():
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    labels = list(trees)
    names = specs + ["plain reference"]
    res: dict[tuple[str, str, str], list[tuple[int, int, str]]] = {}
    k = 0
    for _ in range(rounds):
        for s, ps in prompts.items():
            for i in range(len(ps)):
                for r in range(len(names)):
                    k += 1
                    for label in labels if k % 2 else labels[::-1]:
                        proc = procs[label]
                        assert proc.stdin is not None and proc.stdout is not None
                        proc.stdin.write(f"{r if r < len(specs) else -1} {s} {i}\n")
                        c, w, score = proc.stdout.readline().split()
                        res.setdefault((label, names[r], s), []).append((int(c), int(w), score))
    for p in procs.values():
        assert p.stdin is not None
        p.stdin.close()
        p.wait()
    a, b = labels
    print(f"\nms per decision, p50 (p90), {rounds} rounds; CPU time of each worker's process, interleaved request "
          f"by request; A = {trees[a]}, B = {trees[b]}\n")
    print("| router | prompts (n) | A CPU p50 (p90) | B CPU p50 (p90) | B ÷ A CPU p50 | A wall p50 (p90) | "
          "B wall p50 (p90) | B ÷ A wall p50 | same scores |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in names:
        for s, ps in prompts.items():
            ra, rb = res[(a, name, s)], res[(b, name, s)]
            ca, cb = [x[0] / 1e6 for x in ra], [x[0] / 1e6 for x in rb]
            wa, wb = [x[1] / 1e6 for x in ra], [x[1] / 1e6 for x in rb]
            diff = max(abs(float(x[2]) - float(y[2])) for x, y in zip(ra, rb, strict=True))
            same = sum(x[2] == y[2] for x, y in zip(ra, rb, strict=True))
            print(f"| {name} | {s} ({len(ps)}) | {_p(ca)} | {_p(cb)} | {statistics.median(cb) / statistics.median(ca):.2f} | "
                  f"{_p(wa)} | {_p(wb)} | {statistics.median(wb) / statistics.median(wa):.2f} | "
                  f"{same}/{len(ra)} (max diff {diff:.1e}) |", flush=True)


def _p(xs: list[float]) -> str:
    return f"{statistics.median(xs):.3f} ({statistics.quantiles(xs, n=10)[-1]:.3f})"


def instructions(trees: dict[str, Path], scratch: Path, specs: list[str], prompts: dict[str, list[str]], n: int) -> None:
    names = specs + ["plain reference"]
    per: dict[tuple[str, str, str], float] = {}
    for label, src in trees.items():
        out = scratch / f"cg-{label}" / "cg.out"
        out.parent.mkdir()
        subprocess.run(["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
                        sys.executable, __file__, "--count", str(scratch), "-n", str(n)], env=tree_env(src, label), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        found: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for f in out.parent.glob("cg.out*"):
            key, total = None, None
            for line in f.read_text(errors="replace").splitlines():
                m = re.match(r"desc: Trigger: dump r(\d+)s(\d+)n(\d+)w(\d+)", line)
                if m:
                    key, decisions = (int(m.group(1)), int(m.group(2))), int(m.group(3))
                if line.startswith("totals:"):
                    total = int(line.split()[1])
            if key is not None and total is not None:
                found.setdefault(key, []).append((decisions, total))
        for (r, s), rows in found.items():
            fixed = min(t for d, t in rows if d == 0)
            done = sum(d for d, _ in rows)
            per[(label, names[r], list(prompts)[s])] = sum(t - fixed for d, t in rows if d > 0) / done
        print(f"<!-- {label}: counted -->", flush=True)
    a, b = list(trees)
    print(f"\nthousand instructions per decision (callgrind, user space; every prompt of the set, windows of {n}); "
          f"A = {trees[a]}, B = {trees[b]}\n")
    print("| router | prompts (n) | A k instr | B k instr | B ÷ A |\n|---|---|---|---|---|")
    for name in names:
        for s, ps in prompts.items():
            ia, ib = per[(a, name, s)], per[(b, name, s)]
            print(f"| {name} | {s} ({len(ps)}) | {ia / 1000:,.0f} | {ib / 1000:,.0f} | {ib / ia:.2f} |")


def profiling_worker(scratch: Path, top: int = 15) -> None:
    """cProfile of every router's decisions on every prompt set, the functions with the most own time."""
    import cProfile
    import pstats

    calls, prompts, clear = _load(scratch)
    specs = json.loads((scratch / "run.json").read_text())["routers"]
    for spec, f in zip(specs, calls, strict=False):
        prof = cProfile.Profile()
        prof.enable()
        for ps in prompts.values():
            for p in ps:
                clear()
                f(p)
        prof.disable()
        print(f"\n## {spec}: own time, then the routers' functions by time with what they call")
        pstats.Stats(prof).sort_stats("tottime").print_stats(top)
        pstats.Stats(prof).sort_stats("cumulative").print_stats("tierwise/routers/", top)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--routers", default="transfer-lsa,stack-lsa")
    ap.add_argument("--prompts", default=",".join(SETS))
    ap.add_argument("--tree", default=str(ROOT), help="A: a checkout or its src/ (default: this one)")
    ap.add_argument("--baseline", required=False, help="B: a checkout or its src/ (e.g. `git archive main` + build_ext)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--instructions", action="store_true")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("-n", type=int, default=100, help="decisions per counted window (--instructions)")
    ap.add_argument("--numpy-hashes", default="", help="A, B or A,B: that tree's worker hashes tokens without the "
                    "C extension (routers/_tokenhash.c), as an install without a compiler would")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder (routers, prompts, callgrind dumps)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--count", help=argparse.SUPPRESS)
    ap.add_argument("--profile-worker", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        worker(Path(a.worker))
        return
    if a.count:
        counting_worker(Path(a.count), a.n)
        return
    if a.profile_worker:
        profiling_worker(Path(a.profile_worker))
        return
    specs, sets = [s for s in a.routers.split(",") if s], [s for s in a.prompts.split(",") if s]
    NUMPY_HASHES.update(x for x in a.numpy_hashes.split(",") if x)
    trees = {"A": src_of(a.tree), "B": src_of(a.baseline or a.tree)}
    scratch = Path(tempfile.mkdtemp(prefix="bench-decision-ab-"))
    fit_and_save(specs, sets, scratch)
    prompts = json.loads((scratch / "prompts.json").read_text())
    print(f"<!-- prompts: {', '.join(f'{s} median {statistics.median(map(len, ps)):.0f} characters' for s, ps in prompts.items())} -->")
    try:
        if a.profile:
            subprocess.run([sys.executable, __file__, "--profile-worker", str(scratch)], env=tree_env(trees["A"]),
                           check=True)
        elif a.instructions:
            instructions(trees, scratch, specs, prompts, a.n)
        else:
            cpu(trees, scratch, specs, prompts, a.rounds)
    finally:
        if a.keep:
            print(f"<!-- kept: {scratch} -->")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
