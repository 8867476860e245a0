"""The per-seed goal table from saved `bench/learning_loop.py` outputs (issue 21's goals a/b/c).

    .venv/bin/python bench/learning_loop_table.py /tmp/out/default_s{0..15}.txt

Each file is one seed's output (with the router and the drift replay). Prints one row per file and the counts
of seeds meeting (a) gap to `linear` ≥ −1.00 (at two decimals), (b) evaluation + shadow cost under 10% of the
savings (from the printed cents), (c) the drifted type back on the frontier within 200 of its requests, per block of
eight seeds (0–7, 8–15, ...).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

PAT = {
    "seed": r"seed (\d+);",
    "share": r"steady state \(last \d+\): frontier share ([\d.]+)%, loop quality ([\d.]+)",
    "gap": r"linear router .*\(gap ([+-][\d.]+) points\)",
    "ev": r"evaluation \$([\d.]+) \((\d+) judge calls, (\d+) shadow runs\) = [\d.]+% of savings; net savings \$([\d.]+)",
    "sav": r"savings \$([\d.]+); evaluation",
    "drift": r"drift at request \d+ on (\S+) .*moved back after (\w+) requests",
    "after": r"after the move back: (\d+) of (\d+) requests",
    "us": r"decision CPU time: ([\d.]+) µs",
    "whole": r"whole stream: frontier share ([\d.]+)%, quality ([\d.]+)",
}


def parse(path: Path) -> dict[str, object]:
    text = path.read_text(encoding="utf-8")
    got = {k: re.search(p, text) for k, p in PAT.items()}
    row: dict[str, object] = {"file": path.name, "seed": int(got["seed"].group(1))}
    row["share"], row["quality"] = float(got["share"].group(1)), float(got["share"].group(2))
    row["gap"] = float(got["gap"].group(1)) if got["gap"] else None
    ev, sav = float(got["ev"].group(1)), float(got["sav"].group(1))
    row["ev_pct"], row["ev"], row["net"] = ev / sav * 100, ev, float(got["ev"].group(4))
    row["verdicts"] = int(got["ev"].group(2))
    if got["drift"]:
        row["drift_type"] = got["drift"].group(1)
        d = got["drift"].group(2)
        row["drift"] = int(d) if d.isdigit() else None
    row["after"] = f"{got['after'].group(1)}/{got['after'].group(2)}" if got["after"] else "—"
    row["us"] = float(got["us"].group(1)) if got["us"] else None
    row["whole_share"], row["whole_quality"] = float(got["whole"].group(1)), float(got["whole"].group(2))
    return row


def main() -> None:
    rows = sorted((parse(Path(p)) for p in sys.argv[1:]), key=lambda r: r["seed"])
    print("| seed | frontier share, last 2,000 | loop quality | `linear` gap | evaluation / savings | net savings | "
          "verdicts | drift (type) | drifted type served locally after its move back | all three | µs/decision |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    met: dict[int, list[int]] = {}
    for r in rows:
        a = r["gap"] is not None and round(r["gap"], 2) >= -1.00
        b = r["ev_pct"] < 10.0
        c = r.get("drift") is not None and r["drift"] <= 200
        half = met.setdefault(r["seed"] // 8, [0, 0, 0, 0])
        for i, ok in enumerate((a, b, c, a and b and c)):
            half[i] += int(ok)
        print(f"| {r['seed']} | {r['share']:.1f}% | {r['quality']:.2f} | {r['gap']:+.2f} | {r['ev_pct']:.2f}% "
              f"(${r['ev']:.2f}) | ${r['net']:.2f} | {r['verdicts']} | {r.get('drift')} ({r.get('drift_type')}) | "
              f"{r['after']} | {'yes' if a and b and c else 'no'} | {r['us']} |")
    for h, m in sorted(met.items()):
        block = [r for r in rows if r["seed"] // 8 == h]
        print(f"seeds {8 * h}–{8 * h + 7}: met (a/b/c) {m[0]}/{m[1]}/{m[2]}, all three {m[3]}; net savings "
              f"${sum(r['net'] for r in block):.2f}; mean frontier share, last 2,000 "
              f"{sum(r['share'] for r in block) / len(block):.1f}%, whole stream "
              f"{sum(r['whole_share'] for r in block) / len(block):.1f}%; mean whole-stream quality "
              f"{sum(r['whole_quality'] for r in block) / len(block):.2f}")
    print("gaps: " + ", ".join(f"{r['gap']:+.2f}" for r in rows))
    print("evaluation %: " + ", ".join(f"{r['ev_pct']:.2f}" for r in rows))
    print("drift: " + ", ".join(str(r.get("drift")) for r in rows))


if __name__ == "__main__":
    main()
