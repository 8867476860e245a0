"""Secrets: API keys by their issuers' known prefixes, JWTs, PEM private keys, `password=...`
assignments, and long high-entropy tokens (Shannon entropy per character above a threshold).

The entropy rule wants length >= 20, letters and digits mixed, and both cases for tokens that
are not hex: ordinary identifiers (`get_user_by_email_address`), words and paths stay below.
Hex strings (commit hashes, checksums) count only after a secret cue (`token`, `key`, `secret`,
`password`, ...): a SHA in a coding request is not a credential.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterator

import ahocorasick_rs

from tierwise.privacy.encoded import holds_text
from tierwise.privacy.finding import Finding
from tierwise.privacy.recognizers.ids import context_before
from tierwise.privacy.recognizers.prescan import Prescan, class_table, prescan_of
from tierwise.privacy.text_payload import read

_PREFIXED = re.compile(
    r"(?<![\w-])(?:"
    r"sk-ant-(?:api|admin)\d{2}-[\w-]{20,}"  # Anthropic
    r"|sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"  # OpenAI
    r"|gh[pousr]_[A-Za-z0-9]{30,}"  # GitHub tokens
    r"|github_pat_[A-Za-z0-9_]{22,}"
    r"|(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}"  # AWS access key ids
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"  # Slack
    r"|xapp-\d-[A-Za-z0-9-]{10,}"
    r"|AIza[0-9A-Za-z_-]{35}"  # Google API key
    r"|ya29\.[0-9A-Za-z_-]{20,}"  # Google OAuth access token
    r"|glpat-[A-Za-z0-9_-]{20,}"  # GitLab
    r"|(?:sk|rk|pk)_(?:live|test)_[0-9A-Za-z]{16,}"  # Stripe
    r"|whsec_[0-9A-Za-z]{20,}"
    r"|hf_[A-Za-z0-9]{30,}"  # Hugging Face
    r"|npm_[A-Za-z0-9]{36}"  # npm
    r"|pypi-[A-Za-z0-9_-]{50,}"  # PyPI
    r"|SG\.[\w-]{16,32}\.[\w-]{30,50}"  # SendGrid
    r"|shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}"  # Shopify
    r"|dop_v1_[a-f0-9]{64}"  # DigitalOcean
    r"|gsk_[A-Za-z0-9]{40,}"  # Groq
    r"|r8_[A-Za-z0-9]{30,}"  # Replicate
    r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"  # JWT
    r")(?![\w-])"
)
_SLACK_HOOK = re.compile(r"https://hooks\.slack\.com/services/[A-Za-z0-9/_-]{20,}")
_PEM = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----[\s\S]{16,20000}?"
    r"-----END (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----"
)
# `password = "hunter2"`, `api_key: abc...`, `Authorization: Bearer ...`: the value is the secret. The cue may end
# a snake-case name (`DB_PASSWORD=...`, `SESSION_SECRET=...` in a `.env`): `_` before it, not a letter or digit.
_ASSIGN = re.compile(
    r"(?i)(?<![^\W_])(?:pass(?:word|wd|phrase)?|pwd|secret|api[_-]?key|apikey|access[_-]?key|secret[_-]?key|"
    r"client[_-]?secret|auth[_-]?token|access[_-]?token|refresh[_-]?token|private[_-]?key|token|"
    r"passwort|kennwort|lösenord|mot de passe|contraseña)"
    r"[\"']?\s*(?:[:=]|=>|\bis\b)\s*[\"']?(?P<v>[^\s\"',;]{6,200})"
)
# Values that set a switch, not a secret: `FIRST_PASS=enabled` (a cue word ending a name: `pass` as in a pass over
# the data) was redacted as a password (privacy15); nobody's password is `enabled`.
_SETTING_WORDS = frozenset({"none", "null", "true", "false", "required", "enabled", "disabled", "enable", "disable",
                            "on", "off", "yes", "no", "auto", "optional", "default", "always", "never", "strict"})
_BEARER = re.compile(r"(?i)\b(?:bearer|basic)\s+(?P<v>[A-Za-z0-9._~+/=-]{16,})")
_TOKEN = re.compile(r"(?<![\w+/=-])[A-Za-z0-9+/_=-]{20,}(?![\w+/=-])")
# Runs of 20+ token characters (`[A-Za-z0-9+/_=.-]{20,}`), found by `Prescan.runs_of`.
_RUN_CHARS = class_table("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_=.-")
# An assignment or a bearer value can follow a cue word only if this does (checked at the cue's end).
_ASSIGN_GATE = re.compile(r"(?i)[\w -]{0,12}[\"']?\s*(?:[:=]|is\b)|\s+[A-Za-z0-9._~+/=-]{16}")
_ASSIGN_KEYS = ("pass", "pwd", "secret", "key", "token", "kennwort", "lösenord", "mot de passe", "contraseña",
                "bearer", "basic")
_ASSIGN_AC = ahocorasick_rs.AhoCorasick(list(_ASSIGN_KEYS))
# privacy15: the pattern was `[a-z]*(?:[A-Z][a-z]{2,}|[A-Z]{1,4}(?![a-z])|\d{1,4}|[a-z]{2,})+`, whose lower-case
# runs split many ways: a token of 30 small letters then `A1+` took 0.4 s, each 2 letters more ~2.5x (a 60-character
# message held the scan for hours). Each run is now taken whole (possessive, one split point for capitals): the same
# matches on 200,968 tokens (identifiers of src/ and docs/, random ones), linear in the token.
_CAMEL = re.compile(r"(?:[a-z](?=[A-Z0-9]))?(?:[A-Z][a-z]{2,}+|[A-Z]+(?=[A-Z][a-z]|[^A-Za-z]|$)|\d++|[a-z]{2,}+)+")
_HEX = re.compile(r"^[0-9a-fA-F]+$")
# `NAME=` at a token's start (a `.env` line, a query parameter): the name, then the `=`.
_ENV_NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*)=")
# A variable's name that says its value is secret; such a value may be shorter than 20.
_SECRET_NAME = re.compile(r"(?i)pass|pwd|secret|token|key|credential|auth|signature|salt|cookie|session")
_CUED_MIN_LEN = 8
# A path's part: a word with at most its first letter a capital, or an all-capitals name (README, SKILL). A relative
# path (`r0/skill-creator/SKILL`, as Codex lists its skills in every prompt) needs two parts or more.
_PART = r"(?:[A-Za-z0-9]?[a-z0-9._-]*|[A-Z]{2,12})"
_PATH = re.compile(rf"(?:~|\.{{1,2}})?(?:/{_PART})+/?|{_PART}(?:/{_PART})+/?")
_ABS_PATH = re.compile(rf"(?:~|\.{{1,2}})?(?:/{_PART})+/?")
# A run of 12+ letters and digits that switches between them 4 times or more (`q8zk2vn7xlp4`, hex, base36): a key's
# characters, not a file or folder name (`r0`, `x86_64`, `2026-12-07`, `sha256sum`). A relative "path" holding one is a
# token in a URL (`com/v1/Keys/a1b2c3...`) or a key under a prefix (`vault/Prod/q8zk...`): review35e.
_ALNUM_RUN = re.compile(r"[A-Za-z0-9]{12,}")
_SECRET_CUE = re.compile(r"(?i)(?:token|key|secret|passw|credential|auth|bearer|signature|sig)\W{0,3}\S{0,12}\s*$")


def _random_run(tok: str) -> bool:
    for m in _ALNUM_RUN.finditer(tok):
        r = m.group()
        if sum(a.isdigit() != b.isdigit() for a, b in zip(r, r[1:], strict=False)) >= 3:
            return True
    return False


def shannon_bits(s: str) -> float:
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values())


def _windows(hits: list[tuple[int, int]], n: int) -> Iterator[tuple[int, int]]:
    """The windows (20 characters before a cue, 260 from it) of sorted cue positions `hits`, overlapping ones joined."""
    lo = hi = -1
    for i, _e in hits:
        a, b = max(0, i - 20), min(n, i + 260)
        if a <= hi:
            hi = b
            continue
        if hi >= 0:
            yield lo, hi
        lo, hi = a, b
    if hi >= 0:
        yield lo, hi


# Where an assignment's cue word can start before the cue `_ASSIGN_AC` finds in it (`private_key`: 8 before `key`),
# and the letters such a word starts with
_BACK = 8
_FIRST = frozenset("psakctrlmb")
_ASSIGN_KEYS_ANY_CASE = re.compile("(?i)" + "|".join(re.escape(k) for k in sorted(_ASSIGN_KEYS, key=len, reverse=True)))


def _assignments(text: str, lowered: str, exact: bool = True) -> Iterator[Finding]:
    """`password = ...`, `api_key: ...`, `Bearer ...` values: `_ASSIGN` and `_BEARER` matched where a cue word can
    start, inside the windows of the cues `_ASSIGN_GATE` lets through (a cue followed by `=`, `:`, `is`).

    privacy16: each cue's window (20 characters before it, 260 after) was searched whole, again for every cue in it:
    `key=` repeated cost ~5 us a character (the detector's worst case: 20 s of a worker thread at the 4 M-character
    request bound). Now the patterns are tried only at the starts a cue word can have, every one of them (a window's
    search skipped starts inside an earlier match: what it found is found here too, with a value as long or longer),
    and matches are kept in order of their values' starts, each one reaching past the last kept (one inside another
    is covered by it)."""
    n = len(text)
    if exact:
        found = [(s, e) for _i, s, e in _ASSIGN_AC.find_matches_as_indexes(lowered, overlapping=True)]
    else:  # `lowered` is the text as written (lower-casing changes its length): the patterns ignore case. Review36f:
        # the gate's cues too (one `İ` anywhere in a request let `PASSWORD=hunter2abc` through: the case-sensitive
        # search of the text as written found no cue in `PASSWORD`)
        found = [(m.start(), m.end()) for m in _ASSIGN_KEYS_ANY_CASE.finditer(text)]
        lowered = text  # (first letters are compared lower-cased below)
    gated = sorted((s, e) for s, e in found if _ASSIGN_GATE.match(text, e))
    if not gated:
        return
    windows = list(_windows(gated, n))
    los = [lo for lo, _hi in windows]
    starts: set[int] = set()
    for s, _e in found:
        for p in range(max(0, s - _BACK), s + 1):
            w = bisect_right(los, p) - 1  # the window that may hold `p` (disjoint, sorted)
            if w >= 0 and p < windows[w][1] and lowered[p:p + 1].lower() in _FIRST:
                starts.add(p)
    matches: list[re.Match[str]] = []
    for p in sorted(starts):
        for rx in (_ASSIGN, _BEARER):
            m = rx.match(text, p, min(n, p + 280))
            if m:
                matches.append(m)
    last_end = 0
    for m in sorted(matches, key=lambda m: (m.start("v"), -m.end("v"))):
        v = m.group("v")
        if m.end("v") <= last_end:
            continue
        if v.startswith(("<", "{", "$", "%")) or v.lower() in _SETTING_WORDS:
            continue  # a template variable, a placeholder or a switch's setting, not a value
        last_end = m.end("v")
        yield Finding("SECRET", m.start("v"), m.end("v"), 0.85, "secrets.assignment")


class SecretRecognizer:
    name = "secrets"
    entities = frozenset({"SECRET"})

    def __init__(self, entropy_min_bits: float = 3.7) -> None:
        self.min_bits = entropy_min_bits

    def find(self, text: str, pre: Prescan | None = None) -> Iterator[Finding]:
        # One pass over long runs of token characters; prefixed keys, JWTs and entropic tokens
        # all live in such runs, so the big prefix alternation runs only at their starts.
        pre = prescan_of(text, pre)
        for start, run_end in pre.runs_of(_RUN_CHARS, 20):
            if start and (text[start - 1].isalnum() or text[start - 1] == "_"):
                continue  # the run starts inside a longer word (non-ASCII letters before it)
            m = _PREFIXED.match(text, start)
            if m:
                yield Finding("SECRET", m.start(), m.end(), 1.0, "secrets.prefix")
                continue
            # `NAME=AKIA...` (a .env line) is one run: a key can also start just after an `=` in it
            eq = text.find("=", start, run_end)
            while eq >= 0:
                m = _PREFIXED.match(text, eq + 1)
                if m:
                    yield Finding("SECRET", m.start(), m.end(), 1.0, "secrets.prefix")
                eq = text.find("=", (m.end() if m else eq + 1), run_end)
            for t in _TOKEN.finditer(text, start, run_end):
                found = self._token_secret(text, t.start(), t.end())
                if found:
                    yield Finding("SECRET", found[0], found[1], 0.7, "secrets.entropy")
        if "-----BEGIN" in text:
            for m in _PEM.finditer(text):
                yield Finding("SECRET", m.start(), m.end(), 1.0, "secrets.pem")
        if "hooks.slack.com" in text:
            for m in _SLACK_HOOK.finditer(text):
                yield Finding("SECRET", m.start(), m.end(), 1.0, "secrets.prefix")
        # lower() may change lengths (rare letters): `pre.lower` is then the text itself and the cue
        # search is case-sensitive
        lowered = pre.lower
        yield from _assignments(text, lowered, pre.lower_exact)

    def _token_secret(self, text: str, start: int, end: int) -> tuple[int, int] | None:
        """The secret span in the token `text[start:end]`, if any. A `.env` line (`NAME=value`) is one
        token: the name is read apart and only the value judged, so `AWS_REGION=eu-north-1` is not
        random text; a value under a name that says it is secret (`DB_PASSWORD=...`) may be shorter."""
        tok = text[start:end]
        name = _ENV_NAME.match(tok)
        if name and tok[name.end():].strip("=") and not (len(name.group(1)) >= 20 and self._entropic(name.group(1))):
            start += name.end()
            tok = tok[name.end():]
            cued = _SECRET_NAME.search(name.group(1)) is not None
            if cued:
                short = len(tok) >= _CUED_MIN_LEN and self._entropic(tok, math.log2(len(tok)) * 0.85,
                                                                      relative_paths=False)
            else:
                short = False
            if not (short or len(tok) >= 20):
                return None
        else:
            cued = False
        if self._entropic(tok, relative_paths=not cued) or (_HEX.match(tok) and len(tok) >= 32 and context_before(text, start, _SECRET_CUE, 24)):
            return start, end
        return None

    def _entropic(self, tok: str, min_bits: float | None = None, *, relative_paths: bool = True) -> bool:
        if _HEX.match(tok):
            return False
        has_digit = any(c.isdigit() for c in tok)
        has_upper = any(c.isupper() for c in tok)
        has_lower = any(c.islower() for c in tok)
        if not (has_digit and has_upper and has_lower):
            return False
        # CamelCase identifiers (`UserAccountSettingsV2`, `getUserById2Handler`): words, not randomness.
        if _CAMEL.fullmatch(tok):
            return False
        # Identifiers joined by _ or - (`MAX_RETRY_COUNT_2`): words, not randomness.
        parts = re.split(r"[_-]", tok)
        if len(parts) > 1 and all(p.isalpha() or p.isdigit() or len(p) <= 3 for p in parts):
            return False
        # Paths (`/var/lib/app/Uploads2`): each part a word, at most its first letter a capital. A relative one
        # (`r0/skill-creator/SKILL`) only when no part is a random run, and never as the value of a variable whose name
        # says it is secret (`SESSION_SALT=Tr0ub4dor/Horse/Staple`): review35e.
        if _ABS_PATH.fullmatch(tok) or (relative_paths and _PATH.fullmatch(tok) and not _random_run(tok)):
            return False
        if shannon_bits(tok) < (self.min_bits if min_bits is None else min(min_bits, self.min_bits)):
            return False
        # Prose written in base64 (a text file's payload, round 12: scanned since, and a `secrets: block` policy
        # refused every `.txt` upload): words, not randomness. Unless the prose holds a key (review32d: `ghp_...`,
        # `AKIA...` or `password: ...` in a sentence's base64 was passed, and the base64 view reads only texts with
        # an `@` or four digits): the whole token is read, and any secret in it keeps the token one.
        if len(tok) < 32 or not holds_text(tok, words=4):
            return True
        prose = read(tok)
        return prose is None or next(iter(self.find(prose.text)), None) is not None
