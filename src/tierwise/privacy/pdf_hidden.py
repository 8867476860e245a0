"""Text a PDF carries that pypdf's page `extract_text` does not give as one scannable string, read in the extraction
child (privacy/pdf_text.py) after the pages.

Review of round 13 (review33d): under `pii: redact` these reached the remote model inside an unchanged PDF:
- a line drawn one glyph per `Tj` with positioning between them: pypdf's spacing heuristic gave
  `j ane. doe@exampl e. com`, which no recognizer reads, while a renderer (and the model) shows the address.
  `lines` joins each baseline's glyph runs in x order, with no spaces of its own;
- an annotation's appearance stream (`/AP`: a FreeText box, a stamp, a filled form field drawn with no `/Contents`):
  the page shows it, page text has it not. `appearances` reads each as a page would;
- strings in any object (an outline's titles, a file specification's name and description, a link's URI, a field's
  value, JavaScript), the XMP metadata stream and embedded files (attachments) that are text: `strings`.
What is still not read: text drawn as images, glyphs a font draws as other characters than its ToUnicode map says,
objects of an earlier revision or outside the cross-reference table (docs/privacy.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

_MAX_OBJECTS = 100_000  # indirect objects visited for strings (the child's time bound ends a larger file too)
_MAX_DEPTH = 8  # nesting of direct objects inside one indirect object
_MIN_STRING = 4


def lines(page: Any) -> list[str]:
    """Each baseline of `page`'s text-showing operands (`Tj`, `TJ`, `'`, `"`), joined in x order with no spaces of
    pypdf's (its own joined text gets a space wherever a glyph is placed apart from the one before). The operands'
    bytes as the font's simple encoding has them (latin-1): the page text still gives what a font maps."""
    runs: dict[int, list[tuple[float, str]]] = {}

    def visit(op: bytes, args: Any, cm: Any, tm: Any) -> None:
        if op not in (b"Tj", b"TJ", b"'", b'"') or not args:
            return
        arg = args[-1]
        parts = arg if op == b"TJ" and isinstance(arg, list) else [arg]
        text = "".join(_chars(p) for p in parts)
        if text.strip():
            x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
            y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
            runs.setdefault(round(y), []).append((x, text))

    page.extract_text(visitor_operand_before=visit)
    return ["".join(t for _, t in sorted(r, key=lambda p: p[0])) for _, r in sorted(runs.items(), reverse=True)]


def _chars(v: Any) -> str:
    if isinstance(v, bytes):
        return bytes(v).decode("latin-1")
    return str(v) if isinstance(v, str) else ""


def appearances(reader: Any, page: Any) -> Iterator[str]:
    """The text of `page`'s annotations' appearance streams (normal, rollover, down; every state)."""
    from pypdf import PageObject
    from pypdf.generic import DictionaryObject, NameObject, StreamObject

    annots = page.get("/Annots")
    if annots is None:
        return
    for a in list(annots.get_object())[:1000]:
        ap = a.get_object().get("/AP")
        ap = ap.get_object() if ap is not None else None
        if not isinstance(ap, DictionaryObject):
            continue
        for key in ("/N", "/R", "/D"):
            v = ap.get(key)
            if v is None:
                continue
            forms = [v] if isinstance(v.get_object(), StreamObject) else list(v.get_object().values())[:16]
            for f in forms:
                blank = PageObject.create_blank_page(reader, 612, 792)
                blank[NameObject("/Resources")] = DictionaryObject(
                    {NameObject("/XObject"): DictionaryObject({NameObject("/Ap0"): f})})
                content = StreamObject()
                content.set_data(b"q /Ap0 Do Q")
                blank.replace_contents(content)  # type: ignore[arg-type]  # (pypdf reads any stream as contents)
                yield blank.extract_text()


def strings(reader: Any, decode: Callable[[bytes], str | None]) -> Iterator[str]:
    """Every string of the document's objects, and the text of its XMP and embedded-file streams (`decode`: bytes
    to text, or None for binary)."""
    from pypdf.generic import ArrayObject, DictionaryObject, StreamObject

    size = int(reader.trailer.get("/Size", 0) or 0)

    def walk(v: Any, depth: int) -> Iterator[str]:
        if isinstance(v, str):  # TextStringObject (and names, which are short words: skipped by length below)
            if len(v) >= _MIN_STRING and not v.startswith("/"):
                yield str(v)
        elif isinstance(v, bytes):
            got = decode(bytes(v))
            if got and len(got) >= _MIN_STRING:
                yield got
        elif depth < _MAX_DEPTH and isinstance(v, DictionaryObject):
            for k, x in v.items():
                if k not in ("/Contents",) or not isinstance(x, ArrayObject):
                    yield from walk(x, depth + 1)
        elif depth < _MAX_DEPTH and isinstance(v, ArrayObject):
            for x in v:
                yield from walk(x, depth + 1)

    for i in range(1, min(size, _MAX_OBJECTS)):
        try:
            obj = reader.get_object(i)
        except Exception:  # noqa: BLE001 - a free or broken entry: other objects are still read
            continue
        if isinstance(obj, StreamObject):
            kind = (obj.get("/Type"), obj.get("/Subtype"))
            if "/EmbeddedFile" in kind or "/Metadata" in kind or "/XML" in kind or "/JS" in obj:
                got = decode(obj.get_data())
                if got:
                    yield got
        yield from walk(obj, 0)
