"""Data sets for reviewing `tierwise eval` as a second new user (session 24, review24b), written to the folder given:
- `pii_train.csv` (1,100 rows) / `pii_held.csv`, `pii_held.jsonl` (400): the PII-annotated sentences of
  `$TIERWISE_DATA/pii-presidio-synth` as "mask the personal data" prompts with made-up outcomes (the weak model
  fails more on addresses, line breaks, long text, card numbers); the CSV in another column order
  (weak, subject, prompt, id, strong, notes), prompts with quoted commas and line breaks, integer ids;
- `chats_list.jsonl` / `chats_text.jsonl`: MT-Bench's two-turn questions with 1–10 grades, the prompt as a list of
  messages / as one text; `near_*.jsonl`: 150 noise-labelled prompts twice, the copy alike, with a trailing
  newline, or capitalised with doubled spaces; `big.json`: a pretty-printed array of 40,000 rows;
  empty and header-only files.

    TIERWISE_DATA=/work/shared/data .venv/bin/python bench/review24b_data.py /tmp/r24b
"""
import csv
import json
import os
import random
import sys

OUT = sys.argv[1]
DATA = os.environ.get("TIERWISE_DATA", "../shared/data")
rng = random.Random(7)
d = json.load(open(DATA + '/pii-presidio-synth/synth_dataset_v2.json'))
rows = []
for i, r in enumerate(d):
    t = r["full_text"]
    ents = {s["entity_type"] for s in r["spans"]}
    hard = ("STREET_ADDRESS" in ents) + ("\n" in t) + (len(t) > 150) + ("CREDIT_CARD" in ents)
    p_weak = [0.85, 0.6, 0.35, 0.15, 0.1][hard]
    strong = 1 if rng.random() < 0.9 else 0
    weak = 1 if rng.random() < p_weak else 0
    rows.append({"id": 1000 + i, "prompt": "Mask the personal data in: " + t, "strong": strong, "weak": weak,
                 "subject": sorted(ents)[0] if ents else "none"})
train, held = rows[:1100], rows[1100:]
cols = ["weak", "subject", "prompt", "id", "strong", "notes"]
for name, rs in (("pii_train.csv", train), ("pii_held.csv", held)):
    with open(f"{OUT}/{name}", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in rs:
            w.writerow([r["weak"], r["subject"], r["prompt"], r["id"], r["strong"], 'a "note", with comma'])
with open(f"{OUT}/pii_held.jsonl", "w") as f:
    for r in held:
        f.write(json.dumps(r) + "\n")
# multi-turn chats with 1-10 grades
qs = [json.loads(line) for line in open(DATA + '/routellm-gpt4-mixtral/mt_bench/question.jsonl')]
with open(f"{OUT}/chats_list.jsonl", "w") as f:
    for q in qs:
        f.write(json.dumps({"id": q["question_id"], "prompt": [{"role": "user", "content": t} for t in q["turns"]],
                            "strong": rng.randint(6, 10), "weak": rng.randint(1, 10)}) + "\n")
with open(f"{OUT}/chats_text.jsonl", "w") as f:
    for q in qs:
        f.write(json.dumps({"id": q["question_id"], "prompt": "\n\n".join(q["turns"]),
                            "strong": rng.randint(6, 10), "weak": rng.randint(1, 10)}) + "\n")
open(f"{OUT}/empty.csv", "w").close()
open(f"{OUT}/empty.jsonl", "w").close()
open(f"{OUT}/empty.json", "w").close()
open(f"{OUT}/header.csv", "w").write("prompt,strong,weak\n")
open(f"{OUT}/header2.csv", "w").write("prompt,strong,weak\r\n\r\n")
open(f"{OUT}/arr_empty.json", "w").write("[]")
# ids: int vs str, duplicate id different prompts
with open(f"{OUT}/ids.jsonl", "w") as f:
    for i in range(40):
        f.write(json.dumps({"id": i if i % 2 else str(i), "prompt": f"question {i}", "strong": 1, "weak": int(i % 3 == 0)}) + "\n")
rng = random.Random(3)
rows = [{"prompt": f"question {rng.randrange(10**9)} about {rng.randrange(10**9)}", "strong": 1, "weak": rng.randrange(2)}
        for _ in range(150)]
for name, f in (("ws", lambda p: p + "\n"), ("case", lambda p: p.capitalize() + "  "), ("same", lambda p: p)):
    with open(f"{OUT}/near_{name}.jsonl", "w") as fh:
        for copy in "ab":
            for i, r in enumerate(rows):
                fh.write(json.dumps({**r, "id": f"{copy}-{i}", "prompt": r["prompt"] if copy == "a" else f(r["prompt"])})
                         + "\n")
big = [{"id": i, "prompt": f"Some prompt text about thing number {i} " * 8, "strong": 1, "weak": i % 2}
       for i in range(40000)]
open(f"{OUT}/big.json", "w").write(json.dumps(big, indent=2))
open(f"{OUT}/deep.json", "w").write("[" * 200000 + "]" * 200000)
open(f"{OUT}/openlast.csv", "w").write('strong,weak,prompt\n1,0,"q1 never closed\n1,0,q2\n1,1,q3\n0,1,q4\n')
open(f"{OUT}/dup.csv", "w").write("prompt,strong,weak,prompt\nq1,1,0,other\n")
