"""How closely static token vectors distilled from all-MiniLM-L6-v2 reproduce the option counts of a full MiniLM
pass (issue 22, session 27, transfer8; outcome-free: no strong/weak label is read). 1,500 MMLU questions (seed 1,
high-school mathematics out), their verbal options; Pearson r of option_cos_mean / nearest / spread against the
full pass, for table variants (ST mean pooling of [CLS] t [SEP] or the middle token, centred or not, top principal
components removed, SIF weights a/(a+p) from the options' token frequencies). Exploration script, kept as run."""

import time

import numpy as np
import torch

from tierwise.evaluation.loaders import load_benchmark
from tierwise.routers.features import Embedder
from tierwise.routers.options import geometry, verbal_options

m = load_benchmark("mmlu").without_subjects(["high_school_mathematics"], name="mmlu")
ix = np.random.default_rng(1).permutation(len(m))[:1500]
opts = [o for o in (verbal_options(m.prompts[i]) for i in ix) if o]
flat = list(dict.fromkeys(o for os_ in opts for o in os_))
print(len(opts), "questions", len(flat), "options", flush=True)
st = Embedder()._load()
tok = st.tokenizer
t0 = time.process_time()
E = st.encode(flat, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
print("exact cpu", time.process_time() - t0, flush=True)
at = {o: i for i, o in enumerate(flat)}
exact = np.array([geometry(E[[at[o] for o in os_]]) for os_ in opts])
ids = [tok(o, add_special_tokens=False, truncation=True, max_length=254)["input_ids"] for o in flat]
W0 = st[0].auto_model.embeddings.word_embeddings.weight.detach().numpy()


def unit(x):
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def variant(table, center=False):
    tb = table - table.mean(0) if center else table
    S = unit(np.array([tb[i].mean(0) if len(i) else np.zeros(384) for i in ids]))
    return np.array([geometry(S[[at[o] for o in os_]]) for os_ in opts])


hf = st[0].auto_model
V = tok.vocab_size
mid = np.zeros((V, 384), np.float32)
T = np.zeros((V, 384), np.float32)
with torch.inference_mode():
    for s in range(0, V, 1024):
        i = torch.arange(s, min(V, s + 1024))
        x = torch.stack([torch.full_like(i, tok.cls_token_id), i, torch.full_like(i, tok.sep_token_id)], 1)
        h = hf(input_ids=x, attention_mask=torch.ones_like(x)).last_hidden_state
        mid[s : s + len(i)] = h[:, 1].numpy()
        T[s : s + len(i)] = h.mean(1).numpy()
# token frequencies over the sample's options (outcome-free)
cnt = np.zeros(V)
for i in ids:
    np.add.at(cnt, i, 1)
p = cnt / cnt.sum()


def run(name, table, center=False, pcs=0, sif=None):
    tb = table - table.mean(0) if center else table.copy()
    if pcs:
        u, s, vt = np.linalg.svd(tb[cnt > 0] - tb[cnt > 0].mean(0), full_matrices=False)
        P = vt[:pcs]
        tb = tb - (tb @ P.T) @ P
    w = np.ones(V) if sif is None else sif / (sif + p)
    S = unit(np.array([(tb[i] * w[i][:, None]).sum(0) if len(i) else np.zeros(384) for i in ids]))
    g = np.array([geometry(S[[at[o] for o in os_]]) for os_ in opts])
    r = [np.corrcoef(g[:, k], exact[:, k])[0, 1] for k in range(3)]
    print(f"{name:40s}", " ".join(f"{v:.3f}" for v in r), flush=True)


for nm, tb in (("out-mean", T), ("mid", mid)):
    for c in (False, True):
        for pcs in (0, 1, 3):
            for sif in (None, 1e-3, 1e-4):
                run(f"{nm} c={c} pcs={pcs} sif={sif}", tb, c, pcs, sif)
