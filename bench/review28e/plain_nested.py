"""review28e: findings the nested-encoding reading (`encoded._inner`) adds on the plain corpora, within a time budget."""
import sys
import time

sys.path.insert(0, "bench")
from privacy_plain_findings import texts

from tierwise.privacy import encoded as E
from tierwise.privacy.detect import Detector
from tierwise.privacy.detect_config import BUILTIN_ENTITIES, DetectionConfig

det = Detector(DetectionConfig.model_validate({"classes": {"all": {"detectors": list(BUILTIN_ENTITIES)}}, "ner": {"enabled": False}}))
budget = float(sys.argv[1])
t0 = time.time()
chars = {}
hits = []
n = 0
for kind, t in texts():
    if time.time() - t0 > budget:
        break
    chars[kind] = chars.get(kind, 0) + len(t)
    n += 1
    for _, c in E._b64_runs(t):
        raw = E._decode_b64(c)
        dec = E._text(raw) if raw else None
        if dec is None or E._B64_ONLY.fullmatch(dec):
            inner = E._inner(raw)
            b32 = E._b32(c) if len(c) >= 16 and E._B32.fullmatch(c) else None
            inner32 = E._inner(b32) if b32 else None
            for got in (inner, inner32):
                if got is not None:
                    hits.append((kind, c[:40], got[:60], [f.entity for f in det._decoded(got)]))
    for a, b in E._tokens85(t):
        tok = t[a:b]
        if E._NOT_85.search(tok) is None and E._A85_TOKEN.fullmatch(tok):
            for read in (__import__("base64").a85decode, __import__("base64").b85decode):
                try:
                    got = E._inner(read("".join(tok.split())))
                except Exception:
                    got = None
                if got is not None:
                    hits.append((kind, tok[:40], got[:60], [f.entity for f in det._decoded(got)]))
print(f"texts {n}, characters: {chars}, {time.time() - t0:.0f} s")
print(f"nested readings that decode to text worth scanning: {len(hits)}")
for h in hits[:20]:
    print("  ", h)
