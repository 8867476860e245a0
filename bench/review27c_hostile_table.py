"""Review27c probe: a saved transfer-lsa-options router (/tmp/r27c/r, built by fitting it on tests/routers/test_option_geometry data) with hostile static-token tables; prints refused / loaded+score / crash per case."""

import shutil

import numpy as np

from tierwise.routers import RouterError, load_router

src = "/tmp/r27c/r"
with np.load(src + ".npz") as z:
    base = dict(z)
shutil.copy(src + ".json", "/tmp/r27c/h.json")
P = "Question: which is right?\nA. a rise in demand\nB. an increase in consumption\nC. photosynthesis in green plants\nD. the French revolution\nAnswer:"


def case(name, **over):
    a = dict(base)
    a.update(over)
    a = {k: v for k, v in a.items() if v is not None}
    np.savez_compressed("/tmp/r27c/h.npz", **a)
    try:
        r = load_router("/tmp/r27c/h")
    except RouterError as e:
        print(f"{name}: refused: {str(e)[:150]}")
        return
    except Exception as e:
        print(f"{name}: CRASH at load {type(e).__name__} {e}"[:200])
        return
    try:
        print(f"{name}: loaded; score {r.score_text(P)}")
    except Exception as e:
        print(f"{name}: CRASH at score {type(e).__name__} {e}"[:200])


t = base["vectors/table"]
w = base["vectors/weight"]
print("table", t.shape, t.dtype, "weight", w.shape, w.dtype)
case("ok")
nan = t.copy()
nan[:] = np.nan
case("nan table", **{"vectors/table": nan})
inf = t.astype(np.float64)
inf[:, 0] = 1e6
case("float64 over float16 range", **{"vectors/table": inf})
wn = w.copy()
wn[:] = np.inf
case("inf weight", **{"vectors/weight": wn})
case("narrow table", **{"vectors/table": t[:, :2].copy()})
case("empty table", **{"vectors/table": t[:0].copy(), "vectors/weight": w[:0].copy()})
case("3d table", **{"vectors/table": t.reshape(len(t), 2, -1).copy()})
case("str table", **{"vectors/table": np.array(["a"] * 3), "vectors/weight": w[:3].copy()})
case("complex table", **{"vectors/table": t.astype(np.complex64)})
case("no table", **{"vectors/table": None})
case("neg weight", **{"vectors/weight": -w})
