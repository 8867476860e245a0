"""The data sets session 24's new-user walk (bench/RESULTS.md, "A new user trains a router on their own data")
ran `tierwise eval` on: none in the RouteLLM layout. Made from ../shared/data/qqp-duplicates (Quora questions)
with made-up outcomes (the weak model fails more often on long and why/how questions), plus graded prompts in
German and Chinese, very long prompts, a 30-row set, sets with one label everywhere, a CRLF+BOM file, a JSON
array, a CSV and a 50 MB file of repeated prompts under distinct ids.

    TIERWISE_DATA=../shared/data .venv/bin/python bench/new_user_datasets.py OUT_DIR
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import sys
from pathlib import Path

DATA = Path(os.environ.get("TIERWISE_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
QQP = DATA / "qqp-duplicates" / "pairs.jsonl"


def outcomes(q: str, rng: random.Random) -> tuple[int, int]:
    h = int(hashlib.md5(q.encode()).hexdigest(), 16) % 1000 / 1000
    hard = 0.2 + 0.4 * (len(q) > 80) + 0.2 * q.lower().startswith(("why", "how"))
    return (1 if h < 0.92 else 0), (0 if rng.random() < hard else 1)


def main(out: Path) -> None:
    rng = random.Random(7)
    out.mkdir(parents=True, exist_ok=True)
    qqp = [json.loads(line) for line in QQP.open()]
    rows, seen = [], set()
    for i, p in enumerate(qqp[:6000]):
        q = p["text_a"]
        if q in seen:
            continue
        seen.add(q)
        s, w = outcomes(q, rng)
        rows.append({"id": f"qqp{i}", "prompt": q, "strong": s, "weak": w, "subject": "dup" if p["label"] else "nodup",
                     "source": "quora"})

    def write(name: str, items: list[dict], **kw: object) -> None:
        with (out / name).open("w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, **kw) + "\n" for r in items)

    write("qqp_route.jsonl", rows[:4000])
    write("qqp_new.jsonl", rows[4000:5000])
    de = ("Wie viele Einwohner hat Berlin ? Erkläre die Relativitätstheorie einfach . Warum ist der Himmel blau ? "
          "Schreibe ein Gedicht über den Herbst . Was kostet ein Brot in München").split()
    zh = list("为什么天空是蓝色的请解释相对论写一首关于秋天的诗北京有多少人口计算二加二等于几")
    multi = []
    for i in range(300):
        if i % 2:
            q = "".join(rng.choice(zh) for _ in range(rng.randint(5, 60))) + "？"
        else:
            q = " ".join(rng.choice(de) for _ in range(rng.randint(4, 40)))
        q += " 🙂"
        s = rng.randint(6, 10)
        w = max(1, min(10, s - (len(q) // 20) + rng.randint(-2, 2)))
        multi.append({"id": f"m{i}", "prompt": q, "strong": s, "weak": w, "subject": "zh" if i % 2 else "de"})
    write("multi_lang.jsonl", multi, ensure_ascii=False)
    long = []
    for i in range(120):
        base = (qqp[i]["text_a"] + " " + qqp[i]["text_b"]).split()
        q = "Context: " + " ".join(rng.choice(base) for _ in range(rng.randint(2000, 12000)))
        q += "\nQuestion: " + qqp[i]["text_a"]
        long.append({"prompt": q, "strong": 1, "weak": int(len(q) < 40000)})
    write("long.jsonl", long)
    write("tiny30.jsonl", rows[:30])
    write("same.jsonl", [{**r, "strong": 1, "weak": 1} for r in rows[:200]])
    write("same_gap.jsonl", [{**r, "strong": 1, "weak": 0} for r in rows[:200]])
    with (out / "crlf_bom.jsonl").open("wb") as f:
        f.write(b"\xef\xbb\xbf")
        for r in rows[:500]:
            r = {**r, "prompt": r["prompt"] + " — naïve café ☕ \u2028 中文"}
            f.write((json.dumps(r, ensure_ascii=False) + "\r\n").encode())
        f.write(b"\r\n\r\n")
    (out / "array.json").write_text(json.dumps(rows[:300], indent=2))
    with (out / "data.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["id", "prompt", "strong", "weak", "subject", "source"])
        w.writeheader()
        w.writerows(rows[:300])
    with (out / "big50.jsonl").open("w") as f:
        n = i = 0
        while n < 50_000_000:
            r = rows[i % len(rows)]
            line = json.dumps({**r, "id": f"b{i}", "prompt": r["prompt"] + " " + "filler text " * 30,
                               "strong_response": "x" * 200}) + "\n"
            f.write(line)
            n += len(line)
            i += 1


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/new_user_data"))
