"""Secret scrubbing: the one place that keeps the secrets the gateway holds out of any text it emits.

What it knows: every upstream key (each provider's `api_key_env`), secret-looking provider and
OTLP receiver `headers` values, the credentials of every URL in the config (`base_url`, Redis URLs, the OTLP
endpoint: a password, or a user name given alone that looks like a token, `https://TOKEN@host`), the client gateway keys (`server.api_keys_env`), the admin and viewer keys, the
privacy mapping key, and every environment variable whose name says it holds a secret. What it removes:

- by value: each secret and its URL-encoded, JSON-escaped, base64 (any alignment, standard and
  URL-safe) and hex forms, and any run of 12+ characters of one of those (a key cut by
  truncation), case-insensitively;
- by shape, as a second net: `sk-…` keys, `Bearer`/`Basic` credentials, `x-api-key:`-style
  header and field values, AWS `AKIA…`, GitHub `ghp_…`, JWTs, Google `AIza…`, Slack `xox…`,
  Hugging Face `hf_…`, GitLab `glpat-…`, passwords in URLs and tokens written as a URL's whole userinfo
  (`https://TOKEN@host`), and any key masked with asterisks the way upstreams echo it (`0a1b2c3d****e8f9`).

One Aho-Corasick pass (ahocorasick-rs) over the lowered text finds both the value fragments and
the anchors of the shapes; a shape's regular expression then runs only where its anchor is,
anchored, so the cost is linear in the text and independent of how many secrets there are.

The set of secrets is process-wide and only grows (`register`): every exit — the codecs' error
bodies, `TierwiseError` messages, the ledger, log records (a log-record factory) — must reach it
without being handed a gateway, and scrubbing more than one config's secrets can only
over-redact, never leak. It runs on error paths and ledger/log text, never on successful bodies.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import threading
import traceback
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus, unquote, urlsplit

import ahocorasick_rs

if TYPE_CHECKING:
    from tierwise.config import Config

REDACTED = "[redacted]"
MIN_SECRET = 6  # shorter values are not credentials; matching them would mangle ordinary text
FRAGMENT = 12  # a run this long of a secret (or of one of its encodings) identifies it

# A key shape's match looks at most this far from its anchor, and an anchor inside a match of the same shape
# (and not near its end) is not tried again: each shape does bounded work per anchor, so the pass stays linear
# in the text. Without both, text made of anchors (16 KB of `x-api-key`, `password=`, `sk-` repeated: an
# upstream's error, captured content, a feedback reason) took seconds, growing with the square of its length.
# A match cut by the window goes on over the rest of its run (`_RUN`, one scan, after which every anchor of that
# shape inside it is skipped): a key longer than the window (a large JWT) is redacted whole, as before the bound.
SHAPE_WINDOW = 4096
_NAME = 128  # the longest key name (`password_for_the_...`, its anchor included) a key=value shape reads
_INSIDE_MARGIN = _NAME + 64  # an anchor this close to the end of a match may still reach past it (its `: value`)

_TOKEN = r"[A-Za-z0-9._~+/=-]"
_VALUE = r"[^\s\"'`,;&<>\[\]\\]"
# anchor (lowercase literal) -> pattern matched at the anchor; group "v", when present, is the secret.
_KV = (r"[a-z_-]{0," + str(_NAME) + r"}+(?:\\?[\"'])?\s*[:=]\s*(?:\\?[\"'])?(?:(?:bearer|basic|token)\s+)?(?P<v>" + _VALUE + r"{8,})")
_RUN = re.compile(_VALUE + "*")  # every shape's tail is a run of these characters
_SHAPES: dict[str, tuple[str, int]] = {
    # OpenAI sk-/sk-proj-, Anthropic sk-ant-, OpenRouter sk-or-; and a key as an upstream's 401 masks it
    # ("Incorrect API key provided: sk-proj-Ab3d****Wx9z"): its start and end are still the gateway's key.
    "sk-": (r"sk-[A-Za-z0-9_-]{16,}|sk-[A-Za-z0-9_-]*\*{3,}[A-Za-z0-9_*-]*", 0),
    "sk_": (r"sk_[A-Za-z0-9_]{16,}", 0),
    "bearer": (r"bearer\s+(?P<v>" + _TOKEN + r"{8,})", re.I),
    "basic ": (r"basic\s+(?P<v>[A-Za-z0-9+/=]{8,})", re.I),
    "akia": (r"AKIA[0-9A-Z]{16}(?![0-9A-Za-z])", 0),
    "asia": (r"ASIA[0-9A-Z]{16}(?![0-9A-Za-z])", 0),
    "ghp_": (r"gh[pousr]_[A-Za-z0-9]{20,}", 0),
    "gho_": (r"gh[pousr]_[A-Za-z0-9]{20,}", 0),
    "ghu_": (r"gh[pousr]_[A-Za-z0-9]{20,}", 0),
    "ghs_": (r"gh[pousr]_[A-Za-z0-9]{20,}", 0),
    "ghr_": (r"gh[pousr]_[A-Za-z0-9]{20,}", 0),
    "github_pat_": (r"github_pat_[A-Za-z0-9_]{20,}", 0),
    "glpat-": (r"glpat-[A-Za-z0-9_-]{20,}", 0),
    "eyj": (r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]*)?", 0),  # JWT
    "aiza": (r"AIza[0-9A-Za-z_-]{30,}", 0),
    "xox": (r"xox[abposr]-[A-Za-z0-9-]{10,}", 0),
    "hf_": (r"hf_[A-Za-z0-9]{30,}", 0),
    # https://user:password@host, and https://TOKEN@host (a token as the whole userinfo: GitHub's, a Redis
    # URL's `requirepass`): a userinfo without `:` counts when it looks like a key (12+ characters, a digit
    # among them), so `git@`, `default@` and `postgres@` stay as they are.
    "://": (r"://(?:[^/\s:@?#]*:(?P<v>[^/\s@?#]+)|(?=[^/\s:@?#]*[0-9])(?P<t>[^/\s:@?#]{12,}))@", 0),
    # Any key as an upstream masks it in its 401 (OpenAI's, for every key: "0a1b2c3d****…e8f9"): the first
    # characters before the asterisks are the key's own (`_masked_key` reads them backwards from the anchor).
    "***": (r"\*+[A-Za-z0-9_-]*", 0),
}
for _name in ("x-api-key", "api-key", "api_key", "apikey", "x-goog-api-key", "authorization", "proxy-authorization",
              "access_token", "access-token", "refresh_token", "id_token", "auth_token", "auth-token", "api_token",
              "api-token", "x-auth-token", "client_secret", "client-secret", "secret_key", "secret-key", "password",
              "passwd", "token=", "token:", "token\":", "token':", "token\\\":", "secret=", "secret:", "secret\":",
              "key=", "sig=", "signature="):
    _SHAPES[_name] = (_KV, re.I)
# A key=/token= anchor must start a word, or "monkey=" and "notoken=" would count.
_WORD_START = frozenset({"sk-", "sk_", "akia", "asia", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-",
                         "eyj", "aiza", "xox", "hf_", "key=", "sig=", "token=", "token:", "token\":", "token':",
                         "token\\\":", "bearer", "basic "})
_PATTERNS: dict[tuple[str, int], re.Pattern[str]] = {}
_COMPILED = {a: _PATTERNS.setdefault((p, f), re.compile(p, f)) for a, (p, f) in _SHAPES.items()}  # one per shape

_SURROGATES = re.compile("[\ud800-\udfff]")
_SECRET_NAME = re.compile(
    r"(?:^|_)(?:API_?KEY|KEY|KEYS|TOKEN|SECRET|PASSWORD|PASSWD|PASS|PAT|CREDENTIALS?|AUTH)(?:_|$)", re.I)
_SECRET_HEADER = re.compile(r"auth|key|token|secret|cookie|signature|password|credential", re.I)
_SECRET_PARAM = re.compile(r"key|token|secret|sig|password|auth", re.I)


def _lower(text: str) -> str:
    """Lowercase without changing any index (str.lower can turn one character into two)."""
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text)


def forms(secret: str) -> set[str]:
    """The secret and the ways it is commonly written inside other text."""
    out = {secret, quote(secret, safe=""), quote(secret), quote_plus(secret), json.dumps(secret)[1:-1],
           json.dumps(secret, ensure_ascii=False)[1:-1]}
    raw = secret.encode()
    out.add(raw.hex())
    # base64 of any text containing the secret holds, for the secret's alignment (0, 1 or 2 bytes
    # into a 3-byte group), the encoding of its whole groups: that part is fixed whatever surrounds it.
    for skip in range(3):
        whole = raw[skip:]
        whole = whole[: len(whole) // 3 * 3]
        if len(whole) >= 6:
            out.add(base64.b64encode(whole).decode())
            out.add(base64.urlsafe_b64encode(whole).decode())
    out |= {f.replace("/", "\\/") for f in out if "/" in f}  # JSON may escape the slash
    return {f for f in out if len(f) >= MIN_SECRET}


def finder(secrets: Iterable[str]) -> Callable[[str], bool]:
    """Whether a text holds one of `secrets` in one of its `forms` (URL-encoded, base64, hex...) or a run of `FRAGMENT`
    characters of one, case-insensitively; key shapes (a user's own `ghp_...`) do not count, unlike `holds`."""
    words = {f[i:i + FRAGMENT] if len(f) >= FRAGMENT else f
             for s in secrets if len(s) >= MIN_SECRET for f in map(_lower, forms(s))
             for i in range(max(1, len(f) - FRAGMENT + 1))}
    if not words:
        return lambda text: False
    automaton = ahocorasick_rs.AhoCorasick(list(words))
    return lambda text: bool(automaton.find_matches_as_indexes(_lower(text)))


class SecretScrubber:
    """Finds and redacts a fixed set of secrets (and key-shaped strings) in text. Immutable."""

    __slots__ = ("_automaton", "_variants", "_verdicts", "_where", "_words")

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._verdicts: dict[str, bool] = {}
        entries: dict[str, list[tuple[int, int, int]]] = {}
        variants: list[str] = []
        seen: set[str] = set()
        for s in secrets:
            if len(s) < MIN_SECRET:
                continue
            for f in forms(s):
                low = _lower(f)
                if low in seen:
                    continue
                seen.add(low)
                vid = len(variants)
                variants.append(low)
                if len(low) < FRAGMENT:
                    entries.setdefault(low, []).append((vid, 0, len(low)))
                else:
                    for i in range(len(low) - FRAGMENT + 1):
                        entries.setdefault(low[i : i + FRAGMENT], []).append((vid, i, FRAGMENT))
        for anchor in _SHAPES:
            entries.setdefault(anchor, []).append((-1, 0, len(anchor)))
        self._words = list(entries)
        self._where = [tuple(entries[w]) for w in self._words]
        self._automaton = ahocorasick_rs.AhoCorasick(self._words)
        self._variants = variants

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Where secrets are in `text`, as sorted, merged (start, end) pairs."""
        if not text:
            return []
        low = _lower(text)
        variants = self._variants
        found: list[tuple[int, int]] = []
        last = (-1, -1)
        shape_end: dict[Any, int] = {}  # shape -> where its last match ended
        try:
            matches = self._automaton.find_matches_as_indexes(low, overlapping=True)
        except UnicodeEncodeError:  # lone surrogates: same length, and no secret contains one
            low = _SURROGATES.sub("\ufffd", low)
            matches = self._automaton.find_matches_as_indexes(low, overlapping=True)
        for index, start, stop in matches:
            for vid, off, n in self._where[index]:
                end = stop - 1
                if vid < 0:
                    word = self._words[index]
                    if word == "***":
                        masked = _masked_key(text, start)
                        if masked is not None:
                            found.append(masked)
                        continue
                    pattern = _COMPILED[word]
                    if start < shape_end.get(pattern, 0) - _INSIDE_MARGIN:
                        continue  # inside a match of this shape: it would end where that one did
                    m = _shape_match(text, start, word)
                    if m is not None:
                        s, e = _secret_span(m)
                        if m.end() == start + SHAPE_WINDOW:  # cut by the window: the rest of its run too
                            run = _RUN.match(text, e)  # `*`: always matches
                            e = run.end() if run is not None else e
                        found.append((s, e))
                        # a nested JWT anchor past the first dot may reach one segment further: retry those
                        shape_end[pattern] = text.index(".", start) if word == "eyj" else e
                    continue
                if last[0] <= start and end < last[1]:
                    continue  # inside the run found last
                v = variants[vid]
                s, o = start, off
                while s > 0 and o > 0 and low[s - 1] == v[o - 1]:
                    s -= 1
                    o -= 1
                e, o = end + 1, off + n
                while e < len(low) and o < len(v) and low[e] == v[o]:
                    e += 1
                    o += 1
                last = (s, e)
                found.append(last)
        if not found:
            return []
        found.sort()
        merged = [found[0]]
        for s, e in found[1:]:
            if s <= merged[-1][1]:
                if e > merged[-1][1]:
                    merged[-1] = (merged[-1][0], e)
            else:
                merged.append((s, e))
        return merged

    def scrub(self, text: str) -> str:
        spans = self.spans(text)
        if not spans:
            return text
        out, at = [], 0
        for s, e in spans:
            out.append(text[at:s])
            out.append(REDACTED)
            at = e
        out.append(text[at:])
        return "".join(out)

    def holds(self, text: str) -> bool:
        # Ledger records repeat the same short reasons ("rule x matched") request after request:
        # remember the verdict for short texts (per scrubber, so a new secret starts afresh).
        if len(text) > 2048:
            return bool(self.spans(text))
        seen = self._verdicts.get(text)
        if seen is None:
            if len(self._verdicts) >= 4096:
                self._verdicts.clear()
            seen = self._verdicts[text] = bool(self.spans(text))
        return seen


def _secret_span(m: re.Match[str]) -> tuple[int, int]:
    """The secret in a shape's match: its `v` group (or `t`, the other spelling of one shape), else all of it."""
    for group in ("v", "t"):
        if group in m.re.groupindex and m.start(group) >= 0:
            return m.span(group)
    return m.span(0)


_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
_MASKED_HEAD = 64  # the most key characters read back from the asterisks (bounded work per run of them)


def _masked_key(text: str, start: int) -> tuple[int, int] | None:
    """A masked key whose asterisks start at `start`: 4+ key characters right before them, its visible tail after;
    only the first anchor of a run of asterisks is read (every later one lies inside it: linear work)."""
    if start > 0 and text[start - 1] == "*":
        return None
    head = start
    while head > 0 and start - head < _MASKED_HEAD and text[head - 1] in _KEY_CHARS:
        head -= 1
    if start - head < 4:
        return None
    m = _COMPILED["***"].match(text, start, start + SHAPE_WINDOW)
    return (head, m.end()) if m is not None else None


def _shape_match(text: str, start: int, anchor: str) -> re.Match[str] | None:
    """The key shape whose anchor starts at `start`, if it matches there (within SHAPE_WINDOW characters)."""
    if anchor in _WORD_START and start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
        return None
    if anchor == "://":  # a URL's user:password stops at the next `/`, which every later anchor of it holds:
        return _COMPILED[anchor].match(text, start)  # no attempt reads into another's, so no window is needed
    return _COMPILED[anchor].match(text, start, start + SHAPE_WINDOW)


# ---------------------------------------------------------------------------- what the config holds


def _credential_parts(value: str) -> list[str]:
    """A header value and the credential inside it (`Bearer X` -> X; `Basic b64(u:p)` -> p too)."""
    parts = [value.strip()]
    scheme, _, rest = value.strip().partition(" ")
    if rest and scheme.lower() in ("bearer", "basic", "token", "apikey", "key"):
        parts.append(rest.strip())
        if scheme.lower() == "basic":
            try:
                user_pass = base64.b64decode(rest.strip(), validate=True).decode()
                parts.append(user_pass.partition(":")[2])
            except (ValueError, UnicodeDecodeError):
                pass
    return parts


def _url_secrets(url: str) -> list[str]:
    try:
        u = urlsplit(url)
    except ValueError:
        return []
    out = [unquote(u.password)] if u.password else []
    if u.password is None and u.username and token_like(unquote(u.username)):
        out.append(unquote(u.username))  # https://TOKEN@host: the user name is the credential
    for pair in u.query.split("&"):
        name, _, value = pair.partition("=")
        if value and _SECRET_PARAM.search(name):
            out.append(unquote(value))
    return out


def token_like(user: str) -> bool:
    """Whether a URL's user name given without a password is a credential, not a name: 12+ characters, a
    digit among them (a token), where `git`, `default` or `postgres` would redact common words everywhere."""
    return len(user) >= 12 and any(c.isdigit() for c in user)


def env_secrets(environ: Any = None) -> list[str]:
    """Values of environment variables whose names say they hold a secret (API keys, tokens…). A value naming a
    file or folder that exists (`GOOGLE_APPLICATION_CREDENTIALS=/etc/creds.json`) is a path, not a secret; any other
    value starting with `/` is kept: base64 secrets such as AWS secret keys start with `/` one time in 64."""
    env = os.environ if environ is None else environ
    return [v for k, v in env.items() if _SECRET_NAME.search(k) and len(v) >= 8 and not _names_a_path(v)
            and not any(c.isspace() for c in v)]


def secret_variable(name: str, value: str) -> bool:
    """Whether an environment variable holds a secret: its name says so (`env_secrets`), or its value holds one the
    process knows or has a key's shape (a URL with a password, `sk-...`)."""
    return bool(_SECRET_NAME.search(name)) or holds(value)


def _names_a_path(value: str) -> bool:
    try:
        return value.startswith("/") and os.path.lexists(value)
    except (OSError, ValueError):
        return False


def config_secrets(cfg: Config, *, environment: bool = True) -> set[str]:
    """Every secret one config makes the gateway hold; with `environment` also every environment variable whose
    name says it holds a secret (`env_secrets`), whether the config uses it or not."""
    out: set[str] = set()
    for p in cfg.providers.values():
        if p.api_key_env and os.environ.get(p.api_key_env):
            out.add(os.environ[p.api_key_env])
        for name, value in p.headers.items():
            if _SECRET_HEADER.search(name):
                out.update(_credential_parts(value))
        out.update(_url_secrets(p.base_url))
    for value in cfg.observability.tracing.headers.values():  # the OTLP receiver's: what else would they carry
        out.update(_credential_parts(value))                      # (x-honeycomb-team names no secret)
    mapping = getattr(cfg.privacy, "mapping", None)
    key_vars = [entry if isinstance(entry, str) else entry.env  # a key scoped to routes names its variable
                for entry in cfg.server.api_keys_env]
    key_vars += [*cfg.server.admin_keys_env, *cfg.observability.dashboard.viewer_keys_env,
                 getattr(mapping, "key_env", None) or ""]
    for var in key_vars:
        if var and os.environ.get(var):
            out.add(os.environ[var])
    try:
        _walk_urls(cfg.model_dump(warnings=False), out)  # passwords of every Redis URL, the OTLP endpoint's...
    except Exception:  # pragma: no cover - a value pydantic cannot dump (a library user's object)
        pass
    if environment:
        out.update(env_secrets())
    return {s for s in out if len(s) >= MIN_SECRET}


def _walk_urls(value: Any, out: set[str]) -> None:
    """The credentials in every string field of a config named `*url` or `endpoint` (the OTLP receiver's), at
    any depth."""
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, str):
                if str(k).endswith(("url", "endpoint")):
                    out.update(_url_secrets(v))
            else:
                _walk_urls(v, out)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _walk_urls(v, out)


# ---------------------------------------------------------------------------- the process's scrubber

_lock = threading.Lock()
_known: frozenset[str] = frozenset()
_current = SecretScrubber()
# Names a client chose (its `model`, its feature tag) found clean by the current scrubber. The ledger tests a
# name's membership inline (`name not in CLEAN_NAMES`), cheaper on every request than a call to `holds`; emptied
# in place when a secret is added, so a holder's reference stays the live set.
CLEAN_NAMES: set[str | None] = set()
MAX_CLEAN_NAMES = 4096


def register(secrets: Iterable[str]) -> None:
    """Add secrets to the process's scrubber (never removes any: see the module docstring)."""
    global _known, _current
    new = {s for s in secrets if s and len(s) >= MIN_SECRET} - _known
    if not new:
        return
    with _lock:
        known = _known | new
        _current = SecretScrubber(known)
        _known = known
        CLEAN_NAMES.clear()  # verdicts of the previous scrubber
    install_log_hook()  # whoever holds a secret logs: from now on records are scrubbed


def note(secret: str | None) -> None:
    """A secret about to be used (read from the environment at call time, so it may be new)."""
    if secret and secret not in _known:
        register((secret,))


def register_config(cfg: Config) -> None:
    register(config_secrets(cfg))
    install_log_hook()  # also when the config holds no secret: key shapes are still caught


def scrub(text: str) -> str:
    """`text` with every known secret and key-shaped string replaced by `[redacted]`."""
    return _current.scrub(text) if text else text


def upstream_text(text: str) -> str:
    """An upstream's error message as tierwise repeats it: bounded (2,000 characters) and scrubbed,
    the scrub done before the cut, so a key the cut would halve is still recognised whole."""
    return scrub_cut(text, 2000)


def scrub_cut(text: str, limit: int) -> str:
    """`text` scrubbed and cut to `limit` characters, the scrub done on a margin past the cut (512 characters, longer
    than any key shape), so a key the cut would halve is recognised whole and not shown in part."""
    return scrub(text[: limit + 512])[:limit]


def holds(text: str) -> bool:
    return _current.holds(text) if text else False


def client_name(name: str | None) -> str | None:
    """A name a client chose, as it may be stored: scrubbed when it holds a secret, else remembered as clean
    (in `CLEAN_NAMES`, for the current scrubber only: a name checked by one that `register` has since replaced
    is not added). None and "" (no name) are clean."""
    scrubber = _current
    if name and scrubber.holds(name):
        return scrubber.scrub(name)
    with _lock:
        if scrubber is _current:
            if len(CLEAN_NAMES) >= MAX_CLEAN_NAMES:
                CLEAN_NAMES.clear()
            CLEAN_NAMES.add(name)
    return name


def scrub_value(value: Any) -> Any:
    """A copy of a JSON-like value (dicts, lists, strings) with every string scrubbed."""
    if isinstance(value, str):
        return _current.scrub(value)
    if isinstance(value, dict):
        return {k: scrub_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub_value(v) for v in value]
    return value


# ---------------------------------------------------------------------------- logs

_hook_installed = False


def scrub_log_record(record: logging.LogRecord) -> None:
    """Freeze a record's message (and traceback) with secrets removed."""
    try:
        msg = record.getMessage()
    except Exception:  # a bad format string: leave it for the handler to report
        return
    clean = scrub(msg)
    if clean != msg:  # untouched records keep their args (some formatters read them)
        record.msg, record.args = clean, None
    if record.exc_info and not record.exc_text:
        record.exc_text = scrub("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
    if record.stack_info:
        record.stack_info = scrub(record.stack_info)


class SecretLogFilter(logging.Filter):
    """For handlers an operator adds: scrub every record that passes through them."""

    def filter(self, record: logging.LogRecord) -> bool:
        scrub_log_record(record)
        return True


def install_log_hook() -> None:
    """Scrub log records as they are made: tierwise's at every level, everyone's from WARNING up.

    A log-record factory rather than a filter, because logger filters do not apply to records
    from child loggers and the handlers belong to whoever configured logging (uvicorn, the app).
    """
    global _hook_installed
    with _lock:
        if _hook_installed:
            return
        _hook_installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if record.levelno >= logging.WARNING or record.name.startswith("tierwise"):
            scrub_log_record(record)
        return record

    logging.setLogRecordFactory(factory)
