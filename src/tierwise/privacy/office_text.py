"""The text an office document's XML shows, for the privacy scan (privacy18).

A `.docx`, `.xlsx`, `.pptx` or OpenDocument file is a zip of XML files, which privacy/archives.py reads as text: the
scan saw the markup. Word cuts a paragraph into runs wherever formatting, a spelling mark or a revision id changes
(`<w:r><w:t>jane.doe@</w:t></w:r><w:r><w:rPr><w:b/></w:rPr><w:t>example.com</w:t></w:r>`), OpenDocument wraps
spans (`<text:span>4111</text:span> 1111 1111 1111`): a value cut by markup was read in pieces and reached the
remote model. `office_text` gives the text as displayed: the tags inside a paragraph dropped (its runs joined), a
paragraph, line break, cell or tab as a line break or tab, XML's character references decoded, then the attribute
values a person may have written (`w:author`, `descr`) and whatever is in no simple tag (comments, processing
instructions, malformed tags) as written. It stands in for the XML (privacy/archives.py): the redacted
text sent in a withheld file's place carries no markup that holds a value's pieces. A few linear regular expressions;
the archive's bounds bound its size.
"""

from __future__ import annotations

import html
import re

# Office XML namespaces' markers: WordprocessingML, SpreadsheetML, DrawingML (PowerPoint), OpenDocument
_OFFICE = ("<w:t", "<a:t", "<si>", "<si ", "<v>", "<is>", "<text:", "<office:")
# Tags that end a line or a cell as displayed (a paragraph, a heading, a line break, a cell, a row, a tab, a space)
# review38d: a tag holds no `<` (`[^<>]`): with `[^>]`, each `<` with no `>` after it scanned to the end of the part
# (240 KB of `<w:br ` took 18 s; an 8 MB part, hours)
_BREAKS = re.compile(r"</(?:w:p|a:p|text:p|text:h|si|row|table:table-row)>|<(?:w:br|w:cr|a:br|text:line-break)\b[^<>]*>"
                     r"|</(?:c|w:tc|table:table-cell)>|<(?:w:tab|text:tab|text:s)\b[^<>]*/>")
_TAG = re.compile(r"<[^<>]*>")


def is_office_xml(text: str) -> bool:
    """Does `text` look like an office document's XML part (worth reading as displayed)?"""
    return text.lstrip("\ufeff").startswith("<") and any(m in text for m in _OFFICE)


def office_text(xml: str) -> str:
    """`xml`'s text as displayed (see the module docstring)."""
    def brk(m: re.Match[str]) -> str:
        t = m.group()
        return " " if t.startswith("<text:s") else "\t" if "tab" in t or t in ("</c>", "</w:tc>", "</table:table-cell>") \
            else "\n"

    shown = _SIMPLE_TAG.sub("", _BREAKS.sub(brk, xml))
    # what is in no simple tag (a comment, a processing instruction, CDATA, a malformed tag) as written, each apart
    odd = _TAG.findall(shown)
    # an attribute's value a person wrote (a tracked change's or comment's `w:author`, an image's `descr`, a
    # hyperlink's `tooltip`); not the ids, sizes and flags most attributes hold
    # review38d: and any value holding nine digits or more (the fewest of a phone, SSN, card or IBAN): `_ID`'s paths
    # took `descr="4111/1111/1111/1111"`, which the raw XML scan had read
    people = [v for v in _ATTR.findall(xml) if not _ID.fullmatch(v) or len(_DIGIT.findall(v)) >= 9]
    return html.unescape(_TAG.sub("", shown) + "\n" + "\n".join(odd + people))


_SIMPLE_TAG = re.compile(r'</?[A-Za-z_][\w:.-]*(?:\s+[\w:.-]+="[^"<>]*")*\s*/?>')  # (an XML name: no digit first)
_ATTR = re.compile(r'\s[\w:.-]+="([^"<>]*)"')
_DIGIT = re.compile(r"[0-9]")
# (numbers of six digits at most: a card or phone number in an attribute is read)
_ID = re.compile(r"[0-9A-Fa-f]{0,8}|[\w.-]{0,3}|-?[0-9]{0,6}(?:\.[0-9]+)?(?:pt|in|cm|mm|%)?|true|false|on|off"
                 r"|[\w:.-]*/[\w:./-]*")
