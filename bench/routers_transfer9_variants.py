"""Issue 22, round 9 (session 28, transfer9): the preview of group-robust variants of `transfer-lsa` (C3), read
from the files `routers_transfer9_preview.py dump` writes (training rows' leave-subject-out member scores, shape
counts, outcomes), without refitting the TF-IDF members: member weights from the lower quartile of per-subject
leads (`dro-w`), the shape member fitted on the counts whose sign agrees across subject folds and sources
(`sign-shape`), the shape member without the subjects whose strong model is not clearly better (`drop-shape`), and a
fourth member, shape counts to weak fails (`wf-*`). A preview only (bench/RESULTS.md, session 28, transfer9).

    PYTHONPATH=$PWD/src .venv/bin/python bench/routers_transfer9_variants.py lobo2026 subjfold2026
"""
# ruff: noqa
import os, sys, numpy as np
from pathlib import Path
sys.path.insert(0, "bench")
from routers_transfer9_preview import blend, _D
from routers_transfer_proxies import paired_leads
from sklearn.linear_model import Ridge
from tierwise.evaluation.metrics import apgr, routing_curve
from tierwise.routers import transfer as T
from tierwise.routers.transfer import _rank

def A(sc, s, w): return apgr(routing_curve(sc, s, w))

def oofw(oof, src, st, wk):
    names = [n for n in np.unique(src) if (src == n).sum() >= 100]
    votes = [(n, float((src == n).sum()) ** 0.5) for n in names if st[src == n].mean() != wk[src == n].mean()]
    tot = sum(v for _, v in votes)
    lead = np.array([sum(v * (A(oof[src == n, j], st[src == n], wk[src == n]) - 0.5) for n, v in votes) / tot for j in range(oof.shape[1])])
    w = np.maximum(lead, 0)
    return w if w.sum() > 0 else np.ones(oof.shape[1])

def dro_weights(f, q=0.25, minrows=50):
    oof, src, subj, st, wk = f["tr_oof"], f["tr_src"], f["tr_subj"], f["tr_strong"], f["tr_weak"]
    keys = np.array([a + ":" + (b if a == "mmlu" else "") for a, b in zip(src, subj)])
    groups = [k for k in np.unique(keys) if (keys == k).sum() >= minrows and st[keys == k].mean() != wk[keys == k].mean()]
    lead = np.array([[A(oof[keys == g, j], st[keys == g], wk[keys == g]) - 0.5 for g in groups] for j in range(oof.shape[1])])
    w = np.maximum(np.quantile(lead, q, axis=1), 0)
    return (w if w.sum() > 0 else np.ones(oof.shape[1])), lead

def shape_fit(x, gain, w, cols):
    mu, sd = x.mean(0), x.std(0); sd = np.where(sd > 0, sd, 1)
    coef = np.zeros(x.shape[1])
    if cols.any():
        r = Ridge(alpha=10.0).fit(((x - mu) / sd)[:, cols], gain, sample_weight=w)
        coef[cols] = r.coef_; b = r.intercept_
    else:
        b = float(np.average(gain, weights=w))
    return coef, b, mu, sd

def sign_keep(x, gain, w, src, subj, need=1.0):
    mm = np.flatnonzero(src == "mmlu")
    sf = (T.subject_folds(src[mm], list(subj[mm]), 3, 0) or [mm]) if len(mm) else []
    groups = [mm[g] for g in sf] + [np.flatnonzero(src == s) for s in np.unique(src) if s != "mmlu" and (src == s).sum() >= 100]
    signs = []
    groups = [g for g in groups if len(g) >= 20]
    for g in groups:
        c, *_ = shape_fit(x[g], gain[g] - gain[g].mean(), w[g], np.ones(x.shape[1], bool))
        signs.append(np.sign(c))
    signs = np.array(signs)
    pos, neg = (signs > 0).mean(0), (signs < 0).mean(0)
    return np.maximum(pos, neg) >= need

def shape_member(f, mode, target="gain"):
    x, src, subj, st, wk = f["tr_shape"], f["tr_src"], f["tr_subj"], f["tr_strong"], f["tr_weak"]
    gain = T.centred_within(st - wk, src) if target == "gain" else T.centred_within(1 - wk, src)
    w = T.source_weights(src, 0.5) * T.subject_factors(src, list(subj), 0.5)
    if mode == "drop":  # subjects whose strong model is not clearly better than the weak: label artefacts
        keep = np.ones(len(x), bool)
        for k in np.unique(subj[src == "mmlu"]):
            i = (src == "mmlu") & (subj == k)
            if st[i].mean() - wk[i].mean() < 0.08:
                keep[i] = False
        w = w * keep
    n = len(x); oof = np.zeros(n)
    folds = T.subject_folds(src, list(subj), 3, 0)
    for te in folds:
        tr = np.setdiff1d(np.arange(n), te)
        cols = sign_keep(x[tr], gain[tr], w[tr], src[tr], subj[tr]) if mode == "sign" else np.ones(x.shape[1], bool)
        c, b, mu, sd = shape_fit(x[tr], gain[tr], w[tr], cols)
        oof[te] = ((x[te] - mu) / sd) @ c + b
    cols = sign_keep(x, gain, w, src, subj) if mode == "sign" else np.ones(x.shape[1], bool)
    c, b, mu, sd = shape_fit(x, gain, w, cols)
    test = ((f["shape"] - mu) / sd) @ c + b
    grid = np.quantile(oof, np.linspace(0, 1, 257))
    return _rank(test, grid, np.linspace(0, 1, 257)), oof, cols

for group in ([] if sys.argv[1:] == ["--registered"] else sys.argv[1:]):
    files = sorted(Path(os.environ.get("PREVIEW_DIR", "/tmp/transfer9/prev2")).glob(f"{group}--*.npz"))
    rows, leads = {}, {}
    for p in files:
        f = dict(np.load(p, allow_pickle=True))
        d = _D(f["strong"], f["weak"])
        pts = np.linspace(0, 1, 257)
        R = np.stack([_rank(f["s"][:, j], f["grid"][j], pts) for j in range(3)], 1)
        base = blend(f, "C3")
        wd, lead = dro_weights(f)
        sh_plain, _, _ = shape_member(f, "plain")
        sh_sign, _, cols = shape_member(f, "sign")
        R2 = R.copy(); R2[:, 2] = sh_sign
        R3 = R.copy(); R3[:, 2] = sh_plain
        R5 = R.copy(); R5[:, 2] = shape_member(f, "drop")[0]
        wf_sign, wf_oof, wcols = shape_member(f, "sign", "wf")
        wf_plain, wfp_oof, _ = shape_member(f, "plain", "wf")
        w4 = oofw(np.c_[f["tr_oof"], wf_oof], f["tr_src"], f["tr_strong"], f["tr_weak"])
        w4p = oofw(np.c_[f["tr_oof"], wfp_oof], f["tr_src"], f["tr_strong"], f["tr_weak"])
        print("  w4", np.round(w4, 3), "w4p", np.round(w4p, 3), "wf kept", int(wcols.sum()))
        cand = {"C3": base, "C3-rebuilt": np.average(R3, 1, weights=f["weights"]),
                "dro-w": np.average(R, 1, weights=wd), "sign-shape": np.average(R2, 1, weights=f["weights"]), "drop-shape": np.average(R5, 1, weights=f["weights"]),
                "wf-sign4": np.average(np.c_[R, wf_sign], 1, weights=w4), "wf-plain4": np.average(np.c_[R, wf_plain], 1, weights=w4p),
                "wf-sign4eq": np.average(np.c_[R, wf_sign], 1, weights=np.r_[f["weights"], f["weights"].mean()])}
        print(p.stem, "w", np.round(f["weights"], 3), "dro", np.round(wd, 3), "kept", int(cols.sum()), "/", len(cols))
        for k, v in cand.items():
            rows.setdefault(k, []).append(A(v, d.strong, d.weak)); leads.setdefault(k, []).append(paired_leads(v, base, d, 300))
    print(group)
    for k, v in rows.items():
        m = np.mean(np.stack(leads[k]), 0); m = m[np.isfinite(m)]
        print(f"{k:10s}", " ".join(f"{a:.3f}" for a in v), f"mean {np.mean(v):.3f} lead {np.mean(v)-np.mean(rows['C3']):+.3f} ({np.quantile(m,.025):+.3f}…{np.quantile(m,.975):+.3f})")


def registered(group="p4"):
    """The registered P4 comparison (bench/RESULTS.md, session 28, transfer9): C3 and D (`drop-shape`) only."""
    from tierwise.evaluation.baselines import random_scores
    from tierwise.evaluation.metrics import bootstrap_apgr
    order = ["fold0", "fold1", "fold2", "fold3", "fold4", "fold5", "fold6", "fold7", "gsm8k", "mt-bench"]
    files = {p.stem.split("--")[1]: p for p in Path(os.environ.get("PREVIEW_DIR", "/tmp/transfer9/p4dump")).glob(f"{group}--*.npz")}
    parts = [k for k in order if k in files]
    rows, leads, tests = {"random": {}, "C3": {}, "D": {}}, [], {}
    for k in parts:
        f = dict(np.load(files[k], allow_pickle=True))
        d = _D(f["strong"], f["weak"])
        pts = np.linspace(0, 1, 257)
        R = np.stack([_rank(f["s"][:, j], f["grid"][j], pts) for j in range(3)], 1)
        R[:, 2] = shape_member(f, "drop")[0]
        sc = {"random": np.random.default_rng(0).random(len(d.strong)), "C3": blend(f, "C3"),
              "D": np.average(R, 1, weights=f["weights"])}
        for name, v in sc.items():
            a = A(v, d.strong, d.weak)
            ci = bootstrap_apgr(v, d.strong, d.weak, rounds=300)
            lead = bootstrap_apgr(v, d.strong, d.weak, against=sc["random"], rounds=300)
            star = "" if lead.low > 0 else (" ↓" if lead.high < 0 else " ~")
            rows[name][k] = (a, ci.low, ci.high, star)
        pl = paired_leads(sc["D"], sc["C3"], d, 300)
        leads.append(pl)
        tests[k] = (len(d.strong), pl)
    print("| router | " + " | ".join(f"{k} ({tests[k][0]})" for k in parts) + " | worst lower bound | mean |")
    print("|---|" + "---|" * (len(parts) + 2))
    for name, r in rows.items():
        print(f"| {name} | " + " | ".join(f"{r[k][0]:.3f} ({r[k][1]:.3f}–{r[k][2]:.3f}){r[k][3]}" for k in parts)
              + f" | {min(r[k][1] for k in parts):.3f} | {np.mean([r[k][0] for k in parts]):.3f} |")
    cells = []
    for k in parts:
        v = tests[k][1][np.isfinite(tests[k][1])]
        cells.append(f"{rows['D'][k][0] - rows['C3'][k][0]:+.3f} ({np.quantile(v, .025):+.3f}…{np.quantile(v, .975):+.3f})")
    m = np.mean(np.stack(leads), 0); m = m[np.isfinite(m)]
    point = np.mean([rows['D'][k][0] - rows['C3'][k][0] for k in parts])
    print("| D − C3, paired | " + " | ".join(cells) + f" | | **{point:+.3f} ({np.quantile(m, .025):+.3f}…{np.quantile(m, .975):+.3f})** |")


if __name__ == "__main__" and sys.argv[1:] == ["--registered"]:
    registered()
