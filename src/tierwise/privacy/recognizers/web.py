"""URLs: every web address written with a scheme (`https://...`, `ftp://...`) or starting `www.`.

Found at each `://` and `www.` (plain `find`s), then read to the next whitespace; trailing
punctuation of the sentence (`.`, `,`, `)` without its `(`, quotes, `>`) is not part of it.
Bare host names (`example.com`) are not URLs here: in prose and code they are mostly file names
and module paths (`os.path`, `setup.py`), and a host name alone rarely identifies a person.

A URL is a class of its own (`URL`): whether it is sensitive is a policy's choice (an intranet
address, a document link with a token in it, a personal site), so it is in no data class by
default. A URL's credentials (`user:pass@`) are `URL_CREDENTIALS` and its secrets in the query
(`?token=...`) are `SECRET`; both score higher and win an overlap.
"""

from __future__ import annotations

from collections.abc import Iterator

import regex

from tierwise.privacy.finding import Finding
from tierwise.privacy.recognizers.prescan import Prescan, prescan_of

_SCHEME_URL = regex.compile(r"(?i)(?<![A-Za-z0-9+.-])[a-z][a-z0-9+.-]{0,20}://[^\s<>\"'`]+")
_WWW_URL = regex.compile(r"(?i)(?<![\w@./:-])www\.[^\s<>\"'`]+")
_HOST_CHAR = regex.compile(r"[\w-]")
_TRAIL = ".,;:!?'\"*_>]})"
_PAIRS = {")": "(", "]": "[", "}": "{"}


def _trim(text: str, start: int, end: int) -> int:
    """End of the URL without the sentence's trailing punctuation (a closing bracket stays when
    the URL holds its opening one: `https://en.wikipedia.org/wiki/Mercury_(planet)`)."""
    while end > start and text[end - 1] in _TRAIL:
        c = text[end - 1]
        if c in _PAIRS and text.count(_PAIRS[c], start, end) >= text.count(c, start, end):
            break
        end -= 1
    return end


class UrlRecognizer:
    name = "pattern.url"
    entities = frozenset({"URL"})

    def find(self, text: str, pre: Prescan | None = None) -> Iterator[Finding]:
        lowered = prescan_of(text, pre).lower
        # (start to try, end of the anchor, pattern): at the scheme before each `://` (the run of
        # scheme characters right before it), at each `www.`
        anchors: list[tuple[int, int, regex.Pattern[str]]] = []
        i = lowered.find("://")
        while i >= 0:
            s = i
            while s > 0 and i - s <= 21 and (text[s - 1].isascii() and (text[s - 1].isalnum() or text[s - 1] in "+.-")):
                s -= 1
            anchors.append((s, i + 3, _SCHEME_URL))
            i = lowered.find("://", i + 3)
        i = lowered.find("www.")
        while i >= 0:
            anchors.append((i, i + 4, _WWW_URL))
            i = lowered.find("www.", i + 4)
        anchors.sort(key=lambda x: x[0])
        last = 0
        for start, after, rx in anchors:
            if start < last:
                continue  # inside the URL just found (keeps a run of `://` linear)
            m = rx.match(text, start)
            if m is None:
                continue
            end = _trim(text, start, m.end())
            # a host after the scheme; after `www.` a host name with a dot (`www.example.com`)
            if end <= after or not _HOST_CHAR.match(text, after):
                continue
            if rx is _WWW_URL and text.find(".", after, end) < 0:
                continue
            last = end
            yield Finding("URL", start, end, 0.6, self.name)
