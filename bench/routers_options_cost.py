"""CPU time per decision of `transfer-lsa-options` (static token vectors, session 27) and
`transfer-lsa-options-minilm` (a MiniLM pass over the options per request, session 26) against `transfer-lsa` alone
(issue 22): fitted on 2,000 MMLU questions (high-school mathematics left out), scored on 300 others, 2 rounds,
interleaved request by request; every request's options are embedded anew. `--parts` also times the MiniLM
member's pieces (parsing the options, tokenising, the transformer's forward pass) and the prompt's own MiniLM pass
(what a deployment that already embeds the prompt pays). bench/RESULTS.md, session 27, transfer8."""

from __future__ import annotations

import argparse
import time

import numpy as np

from tierwise.evaluation.loaders import load_benchmark
from tierwise.routers import make_router


def p50_p90(v: list[int]) -> str:
    return f"p50 {np.median(v) / 1e6:.2f}, p90 {np.quantile(v, 0.9) / 1e6:.2f}"


def parts(test: list[str]) -> None:
    import torch

    from tierwise.routers.features import Embedder
    from tierwise.routers.options import verbal_options

    st = Embedder()._load()
    tok, hf = st.tokenizer, st[0].auto_model
    opts = [o for o in map(verbal_options, test) if o]
    got: dict[str, list[int]] = {"parse options": [], "tokenise options (transformers)": [],
                                 "forward pass over options": [], "MiniLM pass over the prompt": []}
    for _ in range(2):
        for p in test:
            t = time.process_time_ns()
            verbal_options(p)
            got["parse options"].append(time.process_time_ns() - t)
            t = time.process_time_ns()
            st.encode([p], show_progress_bar=False)
            got["MiniLM pass over the prompt"].append(time.process_time_ns() - t)
        for o in opts:
            t = time.process_time_ns()
            enc = tok(o, padding=True, truncation=True, max_length=256, return_tensors="pt")
            got["tokenise options (transformers)"].append(time.process_time_ns() - t)
            t = time.process_time_ns()
            with torch.inference_mode():
                hf(**enc)
            got["forward pass over options"].append(time.process_time_ns() - t)
    for k, v in got.items():
        print(f"{k}: CPU ms {p50_p90(v)} ({len(v)})", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--routers", default="transfer-lsa-options,transfer-lsa-options-minilm")
    ap.add_argument("--parts", action="store_true")
    args = ap.parse_args()
    m = load_benchmark("mmlu").without_subjects(["high_school_mathematics"], name="mmlu")
    ix = np.random.default_rng(0).permutation(len(m))
    train = m.where(np.isin(np.arange(len(m)), ix[:2000]), "train")
    routers = {s: make_router(s).fit(train) for s in args.routers.split(",")}
    for s, r in routers.items():
        print(f"{s}: member weight in force {r.used}", flush=True)
    test = [m.prompts[i] for i in ix[2000:2300]]
    base = next(iter(routers.values())).base
    times: dict[str, list[int]] = {"transfer-lsa": [], **{s: [] for s in routers}}
    for _ in range(2):
        for p in test:
            t = time.process_time_ns()
            base.score_text(p)
            times["transfer-lsa"].append(time.process_time_ns() - t)
            for s, r in routers.items():
                t = time.process_time_ns()
                r.score_text(p)  # a request's options bypass any cache: embedded anew every time
                times[s].append(time.process_time_ns() - t)
    ref = np.median(times["transfer-lsa"])
    for k, v in times.items():
        print(f"{k}: CPU ms per decision {p50_p90(v)}, p50 ratio to transfer-lsa {np.median(v) / ref:.2f} "
              f"({len(v)} decisions)", flush=True)
    if args.parts:
        parts(test)


if __name__ == "__main__":
    main()
