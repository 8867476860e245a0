"""review28e: do the batched views find what the per-candidate ones did on the plain corpora?"""
import sys
import time

sys.path.insert(0, "bench")
# the merge's modules: git show 438c6b5c:src/tierwise/privacy/<name>.py > /tmp/r28e/old/old_<name>.py
sys.path.insert(0, "/tmp/r28e/old")
import old_digit_views
import old_encoded
import old_layout_contact
from privacy_plain_findings import texts

from tierwise.privacy import digit_views, encoded, layout_contact
from tierwise.privacy.detect import Detector
from tierwise.privacy.detect_config import BUILTIN_ENTITIES, DetectionConfig
from tierwise.privacy.textnorm import normalise

det = Detector(DetectionConfig.model_validate({"classes": {"all": {"detectors": list(BUILTIN_ENTITIES)}}, "ner": {"enabled": False}}))
budget = float(sys.argv[1])
t0 = time.time()
n = 0
chars = 0
diffs = []
total = [0, 0]
for kind, t in texts():
    if time.time() - t0 > budget:
        break
    n += 1
    chars += len(t)
    norm = normalise(t)[0]
    for name, old, new, txt, scan in (("digit", old_digit_views.digit_view_findings, digit_views.digit_view_findings, norm, det._joined),
                                      ("contact", old_layout_contact.contact_layout_findings, layout_contact.contact_layout_findings, norm, det._joined),
                                      ("b85", old_encoded.encoded85_findings, encoded.encoded85_findings, t, det._decoded)):
        a = {(f.entity, f.start, f.end) for f in old(txt, scan)}
        b = {(f.entity, f.start, f.end) for f in new(txt, scan)}
        total[0] += len(a)
        total[1] += len(b)
        if a != b:
            diffs.append((kind, name, sorted(a - b)[:3], sorted(b - a)[:3], txt[:0]))
print(f"texts {n}, characters {chars:,}, {time.time() - t0:.0f} s; findings per-candidate {total[0]}, batched {total[1]}; texts differing {len(diffs)}")
for d in diffs[:15]:
    print("  ", d)
