"""Detection of structured identifiers written to evade the patterns, with and without normalisation.

Data: the structured spans of `pii-presidio-synth/synth_dataset_v2.json` (CREDIT_CARD, IBAN_CODE,
US_SSN, PHONE_NUMBER, EMAIL_ADDRESS, IP_ADDRESS; 328 spans in 1,500 sentences). Each perturbation
rewrites every such gold value inside its sentence (the rest of the sentence is unchanged); the
detector (structured layer, NER off, every built-in entity) scans the sentence once with its
normalisation (`textnorm.normalise`: format characters removed, NFKC, digits and dashes to ASCII,
look-alike letters, reader-obvious escapes) and once with it switched off (the text as written).

Per entity and perturbation:
- `recall`: gold spans touched by a finding of the same entity;
- `hidden`: gold spans whose every letter and digit is covered by some finding (of any entity: a
  value redacted under another label does not leave either) -- what redaction actually removes;
- `precision`: findings of the entity that touch a gold span of that entity, over all its findings.

    TIERWISE_DATA=/work/shared/data nice -n 5 .venv/bin/python bench/privacy_evasion.py [--json]
"""

from __future__ import annotations

import argparse
import base64
import codecs
import gzip
import ipaddress
import json
import os
import re
import sys
import urllib.parse
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# PRIVACY_EVASION_SRC: another tree's src/ (a baseline worktree), to compare in the same way
sys.path.insert(0, os.environ.get("PRIVACY_EVASION_SRC") or str(ROOT / "src"))

import tierwise.privacy.detect as detect_mod  # noqa: E402
from tierwise.privacy.detect import Detector  # noqa: E402
from tierwise.privacy.detect_config import BUILTIN_ENTITIES, DetectionConfig  # noqa: E402

ENTITIES = ["CREDIT_CARD", "IBAN_CODE", "US_SSN", "PHONE_NUMBER", "EMAIL_ADDRESS", "IP_ADDRESS"]

# Cyrillic / Greek letters Unicode lists as confusable with one Latin letter (TR39).
_HOMO = {"a": "а", "c": "с", "e": "е", "o": "о", "p": "р", "x": "х", "y": "у", "A": "А", "B": "В", "C": "С",
         "E": "Е", "H": "Н", "K": "К", "M": "М", "O": "О", "P": "Р", "T": "Т", "X": "Х", "I": "І", "S": "Ѕ"}


def _between(sep: str) -> Callable[[str], str]:
    return lambda v: sep.join(v)


def fullwidth(v: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in v)


def nbsp(v: str) -> str:
    """Separators (space, dash) become no-break spaces; a value without any gets one every 4 characters."""
    if any(c in " -" for c in v):
        return "".join("\u00a0" if c in " -" else c for c in v)
    return "\u00a0".join(v[i:i + 4] for i in range(0, len(v), 4))


def homoglyph(v: str) -> str:
    return "".join(_HOMO.get(c, c) for c in v)


def arabic_digits(v: str) -> str:
    return "".join(chr(0x0660 + int(c)) if c.isdigit() else c for c in v)


def dotted(v: str) -> str:
    """Separators written as dots (`460.89.9847`); an ungrouped card or IBAN in groups of 4 (not e-mails, IPs)."""
    if "@" in v or v.count(".") == 3:
        return v
    if any(c in " -" for c in v):
        return "".join("." if c in " -" else c for c in v)
    return ".".join(v[i:i + 4] for i in range(0, len(v), 4))


def at_dot(v: str) -> str:
    """An e-mail address spelled out: `jane dot doe at example dot com`."""
    return v.replace("@", " at ").replace(".", " dot ") if "@" in v else v


def at_dot_brackets(v: str) -> str:
    return v.replace("@", " [at] ").replace(".", " [dot] ") if "@" in v else v


def spaced(v: str) -> str:
    return " ".join(c for c in v if not c.isspace())


def percent(v: str) -> str:
    return "".join(f"%{ord(c):02X}" for c in v)


def b64(v: str) -> str:
    return base64.b64encode(v.encode()).decode()


def backslashed(v: str) -> str:
    """A backslash before every `@ . - + _` (a Perl string, a regular expression, Markdown)."""
    return "".join("\\" + c if c in "@.-+_" else c for c in v)


def quoted_printable(v: str) -> str:
    """An e-mail's `@` as quoted-printable (`jane.doe=40example.com`)."""
    return v.replace("@", "=40")


def quoted_local(v: str) -> str:
    """An e-mail's local part quoted, with a space in it (`"jane doe"@example.com`)."""
    if "@" not in v:
        return v
    local, _, domain = v.partition("@")
    return '"' + local.replace(".", " ") + '"@' + domain


def _grouped(sep: str) -> Callable[[str], str]:
    """Separators (space, dash) become `sep`; a value without any, groups of 4 (not e-mails, IPs)."""
    def fn(v: str) -> str:
        if "@" in v or v.count(".") == 3:
            return v
        if any(c in " -" for c in v):
            return "".join(sep if c in " -" else c for c in v)
        return sep.join(v[i:i + 4] for i in range(0, len(v), 4))
    return fn


def _escaped_twice(table: dict[str, str]) -> Callable[[str], str]:
    return lambda v: "".join(table.get(c, c) for c in v)


def qp_dots(v: str) -> str:
    """Quoted-printable `.` and `@` (`192=2E168=2E1=2E20`, `jane=2Edoe=40example=2Ecom`)."""
    return v.replace(".", "=2E").replace("@", "=40")


def _middle(v: str) -> int:
    """A cut near the middle with a non-space character on both sides."""
    for d in range(len(v)):
        for i in (len(v) // 2 - d, len(v) // 2 + d):
            if 0 < i < len(v) and not v[i - 1].isspace() and not v[i].isspace():
                return i
    return len(v) // 2


def qp_soft_break(v: str) -> str:
    i = _middle(v)
    return v[:i] + "=\n" + v[i:]


def html_inside(v: str) -> str:
    """`j<b></b>ane@ex<span>ample</span>.com`: an empty tag after the first character, a span over the middle."""
    i = _middle(v)
    j = min(len(v), i + 3)
    return v[0] + "<b></b>" + v[1:i] + "<span>" + v[i:j] + "</span>" + v[j:]


def markdown_inside(v: str) -> str:
    """`jane.doe@**exa**mple.com`, `4111 **11**11 1111 1111`: bold over three characters in the middle."""
    i = _middle(v)
    j = min(len(v), i + 3)
    return v[:i] + "**" + v[i:j] + "**" + v[j:]


_WORDS = dict(zip("0123456789", "zero one two three four five six seven eight nine".split(), strict=True))

PERTURB: dict[str, Callable[[str], str]] = {
    "none": lambda v: v,
    "fullwidth": fullwidth,
    "arabic-indic digits": arabic_digits,
    "zero-width space": _between("\u200b"),
    "soft hyphen": _between("\u00ad"),
    "nbsp": nbsp,
    "homoglyph": homoglyph,
    "dots as separators": dotted,
    "e-mail `at` / `dot`": at_dot,
    "e-mail `[at]` / `[dot]`": at_dot_brackets,
    "spaced out": spaced,
    "percent-encoded": percent,
    "base64": b64,
    "backslash-escaped": backslashed,
    "quoted-printable": quoted_printable,
    "e-mail quoted local part": quoted_local,
    # session 25 (attack-privacy5)
    "tabs between groups": _grouped("\t"),
    "line breaks between groups": _grouped("\n"),
    "quoted-printable `=2E` / `=40`": qp_dots,
    "quoted-printable soft line break": qp_soft_break,
    "escaped twice `%2540`": _escaped_twice({"@": "%2540", ".": "%252E", "-": "%252D"}),
    "escaped twice `\\\\u0040`": _escaped_twice({"@": "\\\\u0040", ".": "\\\\u002e", "-": "\\\\u002d"}),
    "escaped twice `&amp;#64;`": _escaped_twice({"@": "&amp;#64;", ".": "&amp;#46;", "-": "&amp;#45;"}),
    "HTML tags inside": html_inside,
    "Markdown bold inside": markdown_inside,
    # session 26 (attack-privacy6)
    "hex": lambda v: v.encode().hex(),
    "base64 URL-safe, unpadded": lambda v: base64.urlsafe_b64encode(v.encode()).decode().rstrip("="),
    "percent-encoded `&#64;`": _escaped_twice({"@": "%26%2364%3B", ".": "%26%2346%3B", "-": "%26%2345%3B"}),
    "HTML reference to `%40`": _escaped_twice({"@": "&#37;40", ".": "&#37;2E", "-": "&#37;2D"}),
    "spaced out, two spaces": lambda v: "  ".join(c for c in v if not c.isspace()),
    "e-mail's local part spaced": lambda v: " ".join(v.partition("@")[0]) + "@" + v.partition("@")[2] if "@" in v else v,
    # session 27 (attack-privacy7)
    "table cells between groups": _grouped(" | "),
    "Markdown bold between two digits": lambda v: v[0] + "**" + v[1] + "**" + v[2:],
    "right-to-left override": lambda v: "\u202e" + v[::-1] + "\u202c",
    "base64 split every 7": lambda v: " ".join(b64(v)[i:i + 7] for i in range(0, len(b64(v)), 7)),
    "base64 wrapped every 10": lambda v: "\n".join(b64(v)[i:i + 10] for i in range(0, len(b64(v)), 10)),
    # session 28 (attack-privacy8)
    "`%u0040` escapes": _escaped_twice({"@": "%u0040", ".": "%u002e", "-": "%u002d"}),
    "CSS `\\40 ` escapes": _escaped_twice({"@": "\\40 ", ".": "\\2e ", "-": "\\2d "}),
    "octal `\\100` escapes": _escaped_twice({"@": "\\100", ".": "\\056", "-": "\\055"}),
    "base32": lambda v: base64.b32encode(v.encode()).decode(),
    "base64 of base64": lambda v: base64.b64encode(base64.b64encode(v.encode())).decode(),
    "Ascii85": lambda v: base64.a85encode(v.encode()).decode(),
    "digits as words": lambda v: " ".join(_WORDS.get(c, c) for c in v if not c.isspace()),
    "look-alike letters for 0 and 1": lambda v: v.translate(str.maketrans("01", "Ol")),
    # session 29 (attack-privacy9)
    "base32 in mixed case": lambda v: "".join(c.lower() if i % 2 else c
                                              for i, c in enumerate(base64.b32encode(v.encode()).decode())),
    "base64 three times": lambda v: b64(b64(b64(v))),
    "quoted-printable throughout": lambda v: "".join(f"={ord(c):02X}" for c in v),
    "UTF-7 throughout": lambda v: "+" + base64.b64encode(v.encode("utf-16-be")).decode().rstrip("=") + "-",
    "bullets between groups": _grouped("\u2022"),
    "commas between groups": _grouped(","),
    "semicolons between groups": _grouped(";"),
    "digits as French words": lambda v: " ".join(_WORDS_FR.get(c, c) for c in v if not c.isspace()),
    "IP in `dot` words": lambda v: v.replace(".", " dot ") if _IPV4.fullmatch(v) else v,
    "IP as a URL's host, one number": lambda v: f"http://{int(ipaddress.IPv4Address(v))}/" if _IPV4.fullmatch(v) else v,
    "e-mail with a bare `at`": lambda v: v.replace("@", " at "),
    # session 30 (attack-privacy10)
    "bars for 1": lambda v: v.translate(str.maketrans("1", "|")),
    "digits as Portuguese words": lambda v: " ".join(_WORDS_PT.get(c, c) for c in v if not c.isspace()),
    "digits as Dutch words": lambda v: " ".join(_WORDS_NL.get(c, c) for c in v if not c.isspace()),
    "base64 four times": lambda v: b64(b64(b64(b64(v)))),
    "groups of three": lambda v: v if "@" in v or _IPV4.fullmatch(v) else " ".join(
        _compact(v)[i:i + 3] for i in range(0, len(_compact(v)), 3)),
    "dots between groups": _grouped("."),
    "glued into a file name": lambda v: "scan" + (v if _IPV4.fullmatch(v) else _compact(v)) + ".pdf",
    # session 31 (privacy11)
    "base64 five times": lambda v: b64(b64(b64(b64(b64(v))))),
    "glued to a word for it": lambda v: _glued_word(v),
    "a bar between digits": lambda v: re.sub(r"[0-9]{2,}", lambda m: "|".join(m.group()), v) if "@" not in v else v,
    # session 31 (review31d): a number written to pass for one of round 11's "no phone" shapes
    "after a currency sign": lambda v: v if "@" in v or _IPV4.fullmatch(v) else "$" + v,
    "a range's dash after four digits": lambda v: v if "@" in v or _IPV4.fullmatch(v) else (
        _compact(v)[:4] + "-" + _compact(v)[4:]),
    "a ratio's slash after four digits": lambda v: v if "@" in v or _IPV4.fullmatch(v) else (
        _compact(v)[:4] + "/" + _compact(v)[4:]),
    # session 32 (privacy12)
    "base64 six times": lambda v: b64(b64(b64(b64(b64(b64(v)))))),
    "base64 of percent-encoded base64 of hex": lambda v: b64(urllib.parse.quote(b64(v.encode().hex()), safe="")),
    "base64 through rot13": lambda v: codecs.encode(b64(v), "rot13"),
    # session 33 (privacy13)
    "gzip, then base64": lambda v: base64.b64encode(gzip.compress(v.encode(), mtime=0)).decode(),
    "rot13 inside base64": lambda v: b64(codecs.encode(b64(v), "rot13")),
    "hex of rot13'd base64": lambda v: codecs.encode(b64(v), "rot13").encode().hex(),
    "bracketed area code glued to a word": lambda v: _glued_area(v),
}


def _glued_area(v: str) -> str:
    """A phone's last ten digits as `x(415)555-2671y`, glued to words; other values unchanged (not counted)."""
    d = _compact(v)
    if "@" in v or _IPV4.fullmatch(v) or not d.isdigit() or not 10 <= len(d) <= 11 or (len(d) == 11 and d[0] != "1"):
        return v
    return f"ref({d[-10:-7]}){d[-7:-4]}-{d[-4:]}ext"


def _glued_word(v: str) -> str:
    """`tax536228147.pdf`, `call_+14155552671.wav`, `host203.0.113.45.log`, `card4111...pdf`: the value glued to a
    word for its kind (the kind told by its shape; an e-mail unchanged)."""
    if "@" in v:
        return v
    if _IPV4.fullmatch(v):
        return f"host{v}.log"
    digits = _compact(v)
    if v.startswith("+"):
        return f"call_+{digits}.wav"
    if len(digits) == 9 and digits.isdigit():
        return f"tax{digits}.pdf"
    if 13 <= len(digits) <= 19 and digits.isdigit():
        return f"card{digits}.pdf"
    if digits[:2].isalpha():
        return f"iban{digits}.pdf"
    return f"cell{digits}.wav"


_WORDS_FR = dict(zip("0123456789", "zéro un deux trois quatre cinq six sept huit neuf".split(), strict=True))
_WORDS_PT = dict(zip("0123456789", "zero um dois três quatro cinco seis sete oito nove".split(), strict=True))
_WORDS_NL = dict(zip("0123456789", "nul een twee drie vier vijf zes zeven acht negen".split(), strict=True))


def _compact(v: str) -> str:
    """Letters and digits only (an e-mail stays as it is)."""
    return "".join(c for c in v if c.isalnum()) if "@" not in v else v
_IPV4 = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")
ONLY: set[str] = set()


def data_path() -> Path:
    base = os.environ.get("TIERWISE_DATA")
    root = Path(base) if base else ROOT.parent / "shared" / "data"
    return root / "pii-presidio-synth" / "synth_dataset_v2.json"


def perturbed(row: dict, fn: Callable[[str], str], only_changed: bool) -> tuple[str, list[tuple[str, int, int, bool]]]:
    """The sentence with every targeted gold value rewritten, and the new spans of those values, each
    with whether it counts for recall (with `only_changed`: the perturbation changed it; it does not
    apply to the others, which still count for precision)."""
    spans = sorted((s["start_position"], s["end_position"], s["entity_type"]) for s in row["spans"])
    text, out, pos, gold = row["full_text"], [], 0, []
    for a, b, ent in spans:
        if ent not in ENTITIES or a < pos:
            continue
        out.append(text[pos:a])
        start = sum(len(x) for x in out)
        new = fn(text[a:b])
        out.append(new)
        gold.append((ent, start, start + len(new), new != text[a:b] or not only_changed))
        pos = b
    out.append(text[pos:])
    return "".join(out), gold


def run(normalise_on: bool) -> dict[str, dict[str, dict[str, float]]]:
    det = Detector(DetectionConfig.model_validate({
        "classes": {"all": {"detectors": list(BUILTIN_ENTITIES)}}, "ner": {"enabled": False}}))
    rows = [r for r in json.loads(data_path().read_text()) if any(s["entity_type"] in ENTITIES for s in r["spans"])]
    saved = detect_mod.normalise
    if not normalise_on:
        detect_mod.normalise = lambda t: (t, None)  # type: ignore[assignment]
    try:
        res: dict[str, dict[str, dict[str, float]]] = {}
        for name, fn in PERTURB.items():
            if ONLY and name not in ONLY and name != "none":
                continue
            n: dict[str, int] = defaultdict(int)
            hit: dict[str, int] = defaultdict(int)
            hidden: dict[str, int] = defaultdict(int)
            pred: dict[str, int] = defaultdict(int)
            good: dict[str, int] = defaultdict(int)
            for row in rows:
                text, gold = perturbed(row, fn, name != "none")
                found = det.scan(text)
                covered = set()
                for f in found:
                    covered.update(range(f.start, f.end))
                for ent, a, b, counted in gold:
                    if not counted:
                        continue
                    n[ent] += 1
                    if any(f.entity == ent and f.start < b and a < f.end for f in found):
                        hit[ent] += 1
                    if all(i in covered for i in range(a, b) if text[i].isalnum()):
                        hidden[ent] += 1
                for f in found:
                    if f.entity in ENTITIES:
                        pred[f.entity] += 1
                        if any(e == f.entity and f.start < b and a < f.end for e, a, b, _ in gold):
                            good[f.entity] += 1
            res[name] = {e: {"spans": n[e], "recall": hit[e] / n[e] if n[e] else float("nan"),
                             "hidden": hidden[e] / n[e] if n[e] else float("nan"),
                             "precision": good[e] / pred[e] if pred[e] else float("nan")} for e in ENTITIES}
        return res
    finally:
        detect_mod.normalise = saved


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--only", action="append", default=[], help="a perturbation's name (repeatable)")
    args = ap.parse_args()
    ONLY.update(args.only)
    both = {"normalised": run(True), "as written": run(False)}
    if args.json:
        print(json.dumps(both, indent=1))
        return
    short = {"CREDIT_CARD": "card", "IBAN_CODE": "IBAN", "US_SSN": "SSN", "PHONE_NUMBER": "phone",
             "EMAIL_ADDRESS": "email", "IP_ADDRESS": "IP"}
    for metric in ("recall", "hidden", "precision"):
        print(f"\n{metric} (normalised / as written)\n")
        print("| perturbation | " + " | ".join(short[e] for e in ENTITIES) + " |")
        print("|---" * (len(ENTITIES) + 1) + "|")
        for name in PERTURB:
            if ONLY and name not in ONLY and name != "none":
                continue
            cells = []
            for e in ENTITIES:
                a, b = both["normalised"][name][e][metric], both["as written"][name][e][metric]
                cells.append("n/a" if not both["normalised"][name][e]["spans"] else f"{a:.2f} / {b:.2f}")
            print(f"| {name} | " + " | ".join(cells) + " |")
    spans = both["normalised"]["none"]
    print("\nspans: " + ", ".join(f"{short[e]} {int(spans[e]['spans'])}" for e in ENTITIES))


if __name__ == "__main__":
    main()
