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

import re
from collections.abc import Callable, Iterator
from typing import Any

_MAX_OBJECTS = 100_000  # indirect objects read for strings, listed or not (past it: unreadable)
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


class TooManyObjects(Exception):
    """A PDF with more objects than the scan reads: the extraction child fails, the PDF reads as unreadable."""


def strings(reader: Any, decode: Callable[[bytes], str | None]) -> Iterator[str]:
    """Every string of the document's objects, and the text of its XMP and embedded-file streams (`decode`: bytes
    to text, or None for binary)."""
    size = int(reader.trailer.get("/Size", 0) or 0)
    if size > _MAX_OBJECTS:  # review36f: objects past the bound were read by no one (now: unreadable, fails closed)
        raise TooManyObjects(f"more than {_MAX_OBJECTS} objects")
    drawn = _drawn(reader)
    for i in range(1, size):
        try:
            obj = reader.get_object(i)
        except Exception:  # noqa: BLE001 - a free or broken entry: other objects are still read
            continue
        yield from _object_texts(obj, i in drawn, decode)


_OBJ = re.compile(rb"(?<![0-9])([0-9]{1,10})[ \t\r\n\f\x00]+([0-9]{1,5})[ \t\r\n\f\x00]+obj(?![A-Za-z])")


def unlisted(reader: Any, raw: bytes, decode: Callable[[bytes], str | None]) -> Iterator[str]:
    """The texts of the objects written in `raw` at an offset no cross-reference entry gives (review36f): an earlier
    revision's object, or one no table lists, read as `strings` reads a listed one (its streams decoded, an object
    stream's strings). `outside_objects` reads only what lies outside streams, with a regular expression: such a
    stream (Flate, ASCIIHex, an earlier revision's object stream) and a string of nested parentheses reached the
    remote model unread."""
    listed: set[int] = set()
    for table in reader.xref.values():
        for off in table.values():
            if isinstance(off, int) and 0 <= off < len(raw):
                head = raw[off:off + 64]
                listed.add(off + len(head) - len(head.lstrip()))
    crypt = getattr(reader, "_encryption", None)
    n = 0
    for m in _OBJ.finditer(raw):
        if m.start() in listed:
            continue
        n += 1
        if n > _MAX_OBJECTS:  # (fails closed, as `strings`: the object after the bound held the address)
            raise TooManyObjects(f"more than {_MAX_OBJECTS} objects no table lists")
        try:
            obj = _object_at(reader, m.end())
        except Exception:  # noqa: BLE001 - a broken object: the others are still read
            continue
        yield from _object_texts(obj, False, decode)
        if crypt is not None and crypt.is_decrypted():  # an encrypted file's: as written, and decrypted
            try:
                plain = crypt.decrypt_object(_object_at(reader, m.end()), int(m.group(1)), int(m.group(2)))
            except Exception:  # noqa: BLE001 - as above
                continue
            yield from _object_texts(plain, False, decode)


def _object_at(reader: Any, at: int) -> Any:
    """The object whose header ends at `at`, parsed (anew each time: decryption changes an object in place)."""
    from pypdf._utils import read_non_whitespace
    from pypdf.generic import read_object

    reader.stream.seek(at)
    read_non_whitespace(reader.stream)
    reader.stream.seek(-1, 1)
    return read_object(reader.stream, reader)


def _object_texts(obj: Any, drawn: bool, decode: Callable[[bytes], str | None]) -> Iterator[str]:
    """The strings of indirect object `obj`, and its stream's text unless a page draws it (`drawn`) or it is binary."""
    from pypdf.generic import ArrayObject, DictionaryObject, StreamObject

    def walk(v: Any, depth: int) -> Iterator[str]:
        if isinstance(v, str):  # TextStringObject, and names (privacy16: `/jane.doe#40example.com`, see `_NAME`)
            if v.startswith("/"):
                if _NAME.search(v):
                    yield v[1:]
            elif len(v) >= _MIN_STRING:
                yield str(v)
        elif isinstance(v, bytes):
            got = decode(bytes(v))
            if got and len(got) >= _MIN_STRING:
                yield got
        elif depth < _MAX_DEPTH and isinstance(v, DictionaryObject):
            for k, x in v.items():
                yield from walk(k, depth + 1)  # (a key is a name: any name may be written)
                if k not in ("/Contents",) or not isinstance(x, ArrayObject):
                    yield from walk(x, depth + 1)
        elif depth < _MAX_DEPTH and isinstance(v, ArrayObject):
            for x in v:
                yield from walk(x, depth + 1)

    if isinstance(obj, StreamObject) and obj.get("/Type") == "/ObjStm":
        try:  # privacy16: an object stream's objects that no table lists
            yield from texts(obj.get_data(), decode)
        except Exception:  # noqa: BLE001 - as above
            pass
    elif isinstance(obj, StreamObject) and not drawn and not _BINARY_KEYS.intersection(obj) and not (
            _BINARY_KINDS.intersection((obj.get("/Type"), obj.get("/Subtype")))):
        # XMP, attachments, JavaScript; privacy16: any other stream that is text and that no page draws (a
        # stream no object refers to, a private application's data): the file carries it. Page contents and
        # forms are read as drawn; fonts, images, colour profiles and functions are binary.
        try:
            data = obj.get_data()
        except Exception:  # noqa: BLE001 - a stream pypdf cannot decode (its filter): the bound of its reading
            data = b""
        got = decode(data) if data else None
        if got and (_drawing(got) or "begincmap" in got):  # a Type 3 glyph, a pattern, a CMap: strings only
            yield from texts(data, decode)
        elif got:
            yield got
        if got and "TJ" in got:
            yield from kerned(got)
    yield from walk(obj, 0)


# A name read as text: one with an `@` or a `.` between letters or digits, or four digits (an address, a card); the
# names a PDF's structure uses are words and short numbers (`/Type1`, `/F12`, `/ABCDEF+Helvetica-Bold`). Review36f:
# or a space (`#20`), or digits joined by `-` or `/` (a phone number `/+46#2070#20123#2045#2067`, `/+46-70-123-45-67`
# has no four digits in a row: it left unread)
_NAME = re.compile(r"\w[@.]\w|\d{4}|\s|\d[-/]\d")
_BINARY_KINDS = frozenset({"/XObject", "/Image", "/Form", "/Font", "/FontFile", "/FontFile2", "/FontFile3", "/ObjStm",
                           "/XRef", "/Type1C", "/CIDFontType0C", "/OpenType", "/Pattern", "/Shading"})
_BINARY_KEYS = frozenset({"/Length1", "/Length2", "/Length3", "/Width", "/BitsPerComponent", "/FunctionType",
                          "/PatternType", "/ShadingType", "/N", "/BBox", "/Matrix"})


_OPERAND = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)|/\S+|[A-Za-z][A-Za-z01]{0,2}\*?|[\[\]'\"<>{}()]+")


# privacy17: a `TJ` array's strings with the kerning numbers between them (`[(jane.d) -20 (oe@exam) 30 (ple.com)] TJ`,
# how most producers write a line): in a content stream no page draws (an earlier revision's page, replaced by an
# incremental update), its strings were read one by one and the address in pieces reached the remote model
_TJ = re.compile(r"\[((?:\s*(?:\((?:\\.|[^\\)])*\)|<[0-9A-Fa-f\s]*>|[-+]?(?:\d+\.?\d*|\.\d+)))*)\s*\]\s*TJ")
_TJ_PART = re.compile(r"\(((?:\\.|[^\\)])*)\)|<([0-9A-Fa-f\s]*)>")
_TJ_ESCAPE = re.compile(r"\\([0-7]{1,3}|.)", re.S)
_TJ_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}


def kerned(text: str) -> Iterator[str]:
    """Each `TJ` array of a content stream's `text`, its strings joined (what the page would show on that line)."""
    for m in _TJ.finditer(text):
        parts = []
        for p in _TJ_PART.finditer(m.group(1)):
            if p.group(2) is not None:
                h = "".join(p.group(2).split())
                parts.append(bytes.fromhex(h + "0" * (len(h) % 2)).decode("latin-1"))
            else:
                parts.append(_TJ_ESCAPE.sub(_unescape, p.group(1)))
        if len(parts) > 1:
            yield "".join(parts)


def _unescape(m: re.Match[str]) -> str:
    e = m.group(1)
    return chr(int(e, 8) & 0xFF) if e[0] in "01234567" else _TJ_ESCAPES.get(e, e)


def _drawing(text: str) -> bool:
    """Is `text` PDF drawing syntax (numbers, names, one- to three-letter operators), nine words in ten or more?"""
    words = text.split()[:2000]
    return bool(words) and sum(1 for w in words if _OPERAND.fullmatch(w)) * 10 >= len(words) * 9


def _drawn(reader: Any) -> set[int]:
    """The object numbers of the pages' content streams (read as the pages' text)."""
    from pypdf.generic import ArrayObject, IndirectObject

    out: set[int] = set()
    for page in reader.pages:
        c = page.get("/Contents")
        got = c.get_object() if isinstance(c, IndirectObject) else c
        refs: list[Any] = list(got) if isinstance(got, ArrayObject) else [c]
        out.update(r.idnum for r in refs if isinstance(r, IndirectObject))
    return out


_STREAM = re.compile(rb"stream\r?\n.*?endstream", re.S)
_COMMENT = re.compile(rb"%(?!PDF-|%EOF)([^\r\n]{4,})")


def outside_objects(raw: bytes, decode: Callable[[bytes], str | None]) -> list[str]:
    """What a PDF's bytes carry outside the objects its reader reaches (privacy16): its comments (`%` to the end of a
    line: readers skip them), and the strings of every object written in it, outside streams, whether or not the
    cross-reference table lists it (an object no table lists, an earlier revision's `/Author`). Approximate: a `%`
    inside a string reads the string's rest as a comment too."""
    bare = _STREAM.sub(b"", raw)
    out = [*texts(bare, decode)]
    for m in _COMMENT.finditer(bare):
        got = decode(m.group(1))
        if got and got.strip():
            out.append(got)
    return out


_LITERAL = re.compile(rb"\((?:\\.|[^\\()]|\((?:\\.|[^\\()])*\))*\)", re.S)
_HEX = re.compile(rb"<([0-9A-Fa-f\s]{8,})>")
_ESC = re.compile(rb"\\([0-7]{1,3}|\r\n|.)", re.S)
_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f", b"\r\n": b"", b"\n": b"", b"\r": b""}


def texts(data: bytes, decode: Callable[[bytes], str | None]) -> Iterator[str]:
    """The literal `( )` and hex `< >` strings written in `data` (PDF syntax), as text; those `decode` reads and
    `_MIN_STRING` long or more."""
    def unescape(m: re.Match[bytes]) -> bytes:
        e = m.group(1)
        return bytes([int(e, 8) & 0xFF]) if e[:1].isdigit() else _ESCAPES.get(e, e)

    found = [_ESC.sub(unescape, m.group()[1:-1]) for m in _LITERAL.finditer(data)]
    for m in _HEX.finditer(data):
        h = re.sub(rb"\s", b"", m.group(1))
        found.append(bytes.fromhex((h + b"0" * (len(h) % 2)).decode()))
    for b in found:
        got = decode(b[2:].decode("utf-16-be", "replace").encode() if b[:2] == b"\xfe\xff" else b)
        if got and len(got.strip()) >= _MIN_STRING:
            yield got
