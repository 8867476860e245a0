"""Which words of an upstream's error text are internal addresses, and masking them (`[address]`), for
providers/error_pages.py (a provider's JSON message, a proxy's plain text; the 2xx error bodies, stream error events
and embeddings answers that go through `error_pages.masked`).

Internal, masked wherever it stands:
- an IPv4 address of four dotted parts, each decimal, octal (`0177`) or hex (`0x7f`), the dots ASCII or ideographic
  (`。`, `．`, `｡`: URL parsers read them as dots); an `ip-10-1-2-3` host name (AWS's);
- an IPv6 address, with its zone (`fe80::1%eth0`) and an IPv4 tail (`::ffff:10.0.0.1`), bracketed, with a port;
- a 32-bit hex number (`0x7f000001`) that read as an IPv4 address is not a public one (a Windows error code such as
  `0x80004005` is a public address and is kept);
- a `host:port` whose host is one label (`ollama:11434`, a compose or Kubernetes service), a name, a 32-bit number
  (`2130706433:8080`) or a short dotted form (`127.1:8080`);
- a name under a private suffix (`.internal`, `.corp`, `.local`, `.lan`, `.svc`, `.localhost`, `in-addr.arpa`, ...),
  and `localhost`;
- a URL's host when it is one label (`http://vllm-0/v1`) or a number in any form a resolver reads (`http://2130706433/`,
  `http://0x7f000001/`, `http://127.1/`); a URL's user name (a service account's);
- a name with the root's trailing dot (`ollama.:11434`, `http://vllm-0.:8000/`: resolvers read it as the name).
Read through (`readable`, before the mask; wire11): percent-encoding, JSON escapes left in a message (`\\u002e`,
`\\/`: a nested error's JSON quoted as a string), HTML character references (`&#46;`, `&period;`, `&colon;`), up to
four layers of them in any order; characters no reader shows (zero-width space and joiners, soft hyphen, word joiner,
bidi controls: Unicode's default-ignorable code points) are dropped, and compatibility forms folded (NFKC: fullwidth
digits, `․`), as a URL parser folds them. Before, `10&#46;0&#46;0&#46;1` and `10\\u002e0...` were kept whole, and
`1<ZWSP>0.0.0.1` kept its `1` and masked the wrong address.
Not masked: a whole number or a short dotted one anywhere else (token counts, sizes, `3.11.2`, `12:30`), a public
host name (`gpu-3.cluster.example`), a one-label name outside a URL without a port (`vllm-0`): no text tells them from
words. Plain text (`text_mask`) also loses every URL; a provider's JSON message (`json_mask`) keeps a public one (its
documentation's).
"""

from __future__ import annotations

import html
import ipaddress
import re
import unicodedata
from urllib.parse import unquote

from tierwise.providers.address_words import harmless

_DOT = "[.\u3002\uff0e\uff61]"
_V4PART = r"(?:0x[0-9a-f]{1,2}|0[0-7]{3}|\d{1,3})"  # decimal, octal, hex, as inet_aton reads a dotted part
_NUM = r"(?:0x[0-9a-f]{1,8}|\d{1,12})"  # one part of a short form (`127.1`) or the whole address (`2130706433`)
# A name (and a URL's scheme) begins where no name character stands before it, and its parts are taken possessively:
# review33c, a name's pattern was tried at every `\b` of `a.a.a.…` or `a-a-…`, each try running to the text's end:
# 4,000 such characters took 1.0-1.5 s of the event loop to mask, 16,000 took 18 s (quadratic). Now one try per run.
_AFTER_HOST = r"(?=[:/?#\s'\"),;\]}]|$)"  # what may follow a URL's host
_HOST = (
    # IPv6 with an IPv4 tail (`::ffff:10.0.0.1`, mapped: the tail alone was masked, `::ffff:` kept)
    r"(?<![\w:])\[?(?:[0-9a-f]{0,4}:){2,6}\d{1,3}(?:\.\d{1,3}){3}(?:%[\w.-]+)?\]?(?::\d+)?"
    rf"|\b{_V4PART}(?:{_DOT}{_V4PART}){{3}}\b(?::\d+)?"
    # IPv6: eight groups, or fewer around a `::` (not a time, 12:30:45), bracketed with a port or not, its zone
    r"|(?<![\w:])\[?(?:(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}|(?:[0-9a-f]{1,4}(?::[0-9a-f]{1,4})*)?::"
    r"(?:[0-9a-f]{1,4}(?::[0-9a-f]{1,4})*)?)(?![\w:]|\.\d)(?:%[\w.-]+)?\]?(?::\d+)?"
    # (a first label without `_`, not `n_ctx:4096`; a letter in the name, not `12:30`; not a time, `2026-12-06T12:30`)
    r"|(?<![\w.-])(?!\d{4}-\d\d-\d\dt)(?=[a-z0-9.-]*[a-z])[a-z0-9][a-z0-9-]*+(?:\.[\w-]++)*+\.?:\d{2,5}\b(?!\.\d)"
    r"|\b(?:0x[0-9a-f]{1,8}|\d{8,12}|\d{1,3}(?:\.\d{1,3}){1,2}):\d{2,5}\b(?!\.\d)"  # 2130706433:80, 127.1:80
    r"|(?<![\w.-])(?:[\w-]++\.)+(?:internal|corp|local|localdomain|lan|intranet|home\.arpa|private|svc|localhost"
    r"|in-addr\.arpa|ip6\.arpa)\b"
    r"|\bip-\d{1,3}(?:-\d{1,3}){3}\b"
    r"|\blocalhost\b"
    # a URL's host: a number in any form, or one label (a service's name) after a user or not
    rf"|(?:(?<=://)|(?<=@)){_NUM}(?:{_DOT}{_NUM}){{0,3}}{_AFTER_HOST}"
    rf"|(?<=://)(?:[^\s/@]+@)?[a-z0-9_-]+\.?{_AFTER_HOST}"
    r"|(?<=://)[^\s/@]+@")  # a URL's user (its password scrubbed before: a service account's name)
_IN_JSON = re.compile(_HOST, re.IGNORECASE)
_IN_TEXT = re.compile(r"(?<![\w+.-])[a-z][a-z0-9+.-]*+://\S+|" + _HOST, re.IGNORECASE)
_ESCAPE = re.compile(r"\\(?:u([0-9a-f]{4})|x([0-9a-f]{2})|([/\\\"]))", re.IGNORECASE)
# Unicode's default-ignorable code points (DerivedCoreProperties.txt): drawn as nothing, skipped by readers and resolvers
_INVISIBLE = re.compile("[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
                        "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
                        "\U000e0000-\U000e0fff]")
_HEX32 = re.compile(r"\b0x[0-9a-f]{7,8}\b", re.IGNORECASE)


def _hex_address(m: re.Match[str]) -> str:
    return m.group() if ipaddress.IPv4Address(int(m.group(), 16)).is_global else "[address]"


def _unescaped(m: re.Match[str]) -> str:
    code = m.group(1) or m.group(2)
    if code is None:
        return m.group(3)  # (an escaped backslash: what it escapes is read on the next pass)
    c = int(code, 16)
    return m.group() if 0xD800 <= c <= 0xDFFF else chr(c)  # (a lone surrogate: no text, and orjson refuses it)


def readable(text: str) -> str:
    """`text` as a reader (or a resolver) would read its addresses: encodings undone, invisible characters dropped,
    compatibility forms folded (see the module's docstring). For error text only: what the mask reads; the client
    is shown it only where it reveals something to mask (providers/error_pages.py, review34c)."""
    for _ in range(4):  # (layers: `&amp;#46;`, `%26%2346%3B`, a URL encoded twice)
        before = text
        if "%" in text:
            text = unquote(text)
        if "\\" in text:
            text = _ESCAPE.sub(_unescaped, text)
        if "&" in text:
            text = html.unescape(text)
        if text == before:
            break
    if not text.isascii():
        text = unicodedata.normalize("NFKC", _INVISIBLE.sub("", text))
    return text


def _masked(m: re.Match[str]) -> str:
    return m.group() if harmless(m) else "[address]"


def json_mask(text: str) -> str:
    """A provider's JSON error message: its internal addresses masked, a public URL kept."""
    text = _IN_JSON.sub(_masked, text)
    return _HEX32.sub(_hex_address, text) if "0" in text else text


def text_mask(text: str) -> str:
    """A proxy's plain text: its URLs and internal addresses masked."""
    text = _IN_TEXT.sub(_masked, text)
    return _HEX32.sub(_hex_address, text) if "0" in text else text
