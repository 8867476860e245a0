"""review28e: bypass probes of the session-28 views; prints FOUND/MISSED per case."""
import base64

from tierwise.privacy.detect import Detector
from tierwise.privacy.detect_config import BUILTIN_ENTITIES, DetectionConfig

det = Detector(DetectionConfig.model_validate({"classes": {"all": {"detectors": list(BUILTIN_ENTITIES)}}, "ner": {"enabled": False}}))
em = "jane.doe@example.com"
card = "4111 1111 1111 1111"
def b32(s, lower=False, pad=True):
    x = base64.b32encode(s.encode()).decode()
    if not pad:
        x = x.rstrip("=")
    return x.lower() if lower else x
cases = {
 "b32 upper pad": f"secret {b32('mail ' + em)} end",
 "b32 lower nopad": f"secret {b32('mail ' + em, True, False)} end",
 "b32 upper nopad": f"secret {b32('mail ' + em, False, False)} end",
 "b32 mixed case": f"secret {b32('mail ' + em)[:16].lower() + b32('mail ' + em)[16:]} end",
 "b32 of b32": f"x {b32(b32('mail ' + em))} y",
 "b64 of b32": f"x {base64.b64encode(b32('mail ' + em).encode()).decode()} y",
 "b32 of b64": f"x {b32(base64.b64encode(('mail ' + em).encode()).decode())} y",
 "b64^3": f"x {base64.b64encode(base64.b64encode(base64.b64encode(('mail ' + em).encode()))).decode()} y",
 "b85 of b64": f"x {base64.b85encode(base64.b64encode(('mail ' + em).encode())).decode()} y",
 "b64 of b85": f"x {base64.b64encode(base64.b85encode(('mail ' + em).encode())).decode()} y",
 "b85 plain": f"x {base64.b85encode(('mail ' + em).encode()).decode()} y",
 "a85 plain": f"x {base64.a85encode(('mail ' + em).encode()).decode()} y",
 "a85 frame": f"x {base64.a85encode(('mail ' + em).encode(), adobe=True).decode()} y",
 "b85 card": f"x {base64.b85encode(('card ' + card).encode()).decode()} y",
 "b85 split 2 tokens": "x " + base64.b85encode(('mail ' + em).encode()).decode()[:15] + " " + base64.b85encode(('mail ' + em).encode()).decode()[15:] + " y",
 "b64 split across lines": "x " + base64.b64encode(('mail ' + em).encode()).decode()[:13] + "\n" + base64.b64encode(('mail ' + em).encode()).decode()[13:] + " y",
 "b64 two halves": "x " + base64.b64encode(b"mail jane.doe@ex").decode() + " " + base64.b64encode(b"ample.com").decode() + " y",
 "%u mixed": "jane.doe%u0040example%u002Ecom",
 "%u lower": "jane.doe%u0040example.com",
 "%%u": "jane.doe%25u0040example.com",
 "css no space": "jane.doe\\40 example.com",
 "css 6": "jane.doe\\000040example.com",
 "octal": "jane.doe\\100example.com",
 "octal dbl": "jane.doe\\\\100example.com",
 "N{} at": "jane.doe\\N{COMMERCIAL AT}example.com",
 "N{} lower": "jane.doe\\N{commercial at}example.com",
 "N{} full stop": "jane\\N{FULL STOP}doe\\N{COMMERCIAL AT}example\\N{FULL STOP}com",
 "N{} fullwidth at": "jane.doe\\N{FULLWIDTH COMMERCIAL AT}example.com",
 "N{} small at": "jane.doe\\N{SMALL COMMERCIAL AT}example.com",
 "esc of esc %5C": "jane.doe%5Cu0040example.com",
 "esc of esc %5C100": "jane.doe%5C100example.com",
 "&#92;u0040": "jane.doe&#92;u0040example.com",
 "\\u005C u0040": "jane.doe\\u005Cu0040example.com",
 "%5Cx40": "jane.doe%5Cx40example.com",
 "octal \\056": "jane\\056doe\\100example\\056com",
 "css \\2e": "jane\\2e doe\\40 example\\2e com",
 "html &commat;": "jane.doe&commat;example.com",
 "digit words card": "card four one one one one one one one one one one one one one one one",
 "digit words capital": "card FOUR ONE ONE ONE, ONE ONE ONE ONE, ONE ONE ONE ONE, ONE ONE ONE ONE",
 "digit words ssn": "ssn five three six two two eight one four seven",
 "digit words 'and'": "ssn five three six and two two and eight one four seven",
 "digit words slash": "ssn five/three/six/two/two/eight/one/four/seven",
 "digit words nosp": "ssn fivethreesix-twotwo-eightonefourseven",
 "digit words double": "phone four one five double five five two six seven one",
 "look S/B": "SSN 536-22-8l47",
 "look Z": "card 4lll llll llll llll",
 "look pipe": "card 4|||-||||-||||-||||",
 "look fullwidth": "card 4ｌｌｌ ｌｌｌｌ ｌｌｌｌ ｌｌｌｌ",
 "look O only": "card 4OOO OOOO OOOO OOOO",
 "phone tab": "phone\t415\t555\t2671",
 "phone mixed gap": "phone 415\t555 | 2671",
 "ip cells": "| ip | 203 | 0 | 113 | 45 |",
 "ip mixed gap": "ip 203\t0\n113\t45",
 "ip no cue": "| 203 | 0 | 113 | 45 |",
 "ip cue later word": "| addr | 203 | 0 | 113 | 45 |",
}
for k, v in cases.items():
    fs = det.scan(v)
    print(f"{k:24} {'FOUND ' + ','.join(sorted({f.entity for f in fs})) if fs else 'MISSED'}   {v[:70]!r}")
