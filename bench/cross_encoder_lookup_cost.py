"""CPU of one semantic lookup's verifier step on 4 candidates: the shipped verifier (pair_model.py) and
the cross-encoder experiment (cross_encoder_model.py), plus embedding the new question, per lookup.

The cross-encoder's cost does not depend on its weights: any file written by
`bench/cache_quality_cross.py --save PATH` will do. CPU time (time.process_time), one torch thread,
40 lookups over 10 short questions, medians.

Run:  PYTHONPATH=src:bench nice -n 5 python bench/cross_encoder_lookup_cost.py /tmp/cross.npz
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
QS = ["What is the capital of France?", "How do I learn Python quickly?", "What is the best way to lose weight?",
      "Who will win the next US presidential election?", "How can I improve my English speaking skills?",
      "What are the best books on machine learning for beginners?", "Why is the sky blue?",
      "How do I start a small business with little money?", "What is the meaning of life?",
      "How can I get a job at Google as a software engineer?"]


def main() -> None:
    import torch
    from cross_encoder_model import CrossVerifier, encode_states

    from tierwise.cache.pair_model import PairModel
    from tierwise.cache.semantic import TokenEmbedder

    torch.set_num_threads(1)
    emb, old = TokenEmbedder("all-MiniLM-L6-v2"), PairModel.load()
    st = emb._st
    cross = CrossVerifier.load(sys.argv[1], st[0].auto_model)
    got = [emb.encode_one(q) for q in QS]
    states = [encode_states([q], st, cross.split)[0][1] for q in QS]
    t: dict[str, list[float]] = {k: [] for k in ("embed", "old", "embed+states", "cross")}
    for i in range(40):
        q, c = QS[i % 10], [(i + k) % 10 for k in range(1, 5)]
        c0 = time.process_time()
        vec, toks = emb.encode_one(q)
        c1 = time.process_time()
        old.prob([QS[j] for j in c], [q] * 4, np.stack([got[j][0] for j in c]), np.repeat(vec[None], 4, 0),
                 [got[j][1] for j in c], [toks] * 4)
        c2 = time.process_time()
        s = encode_states([q], st, cross.split)[0][1]
        c3 = time.process_time()
        cross.prob([states[j] for j in c], [s] * 4)
        c4 = time.process_time()
        for k, v in zip(t, (c1 - c0, c2 - c1, c3 - c2, c4 - c3), strict=True):
            t[k].append(v)
    print(f"shipped: embed the question {np.median(t['embed']) * 1e3:.1f} ms CPU, verify 4 candidates "
          f"{np.median(t['old']) * 1e3:.1f} ms CPU")
    print(f"cross-encoder: embed the question (+ split states) {np.median(t['embed+states']) * 1e3:.1f} ms CPU, "
          f"verify 4 candidates {np.median(t['cross']) * 1e3:.1f} ms CPU")


if __name__ == "__main__":
    main()
