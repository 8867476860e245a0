"""What a deployed `learned` route remembers across a restart.

A learned route's live state is in its process: the recent scores its threshold is re-fitted on
(routers/refit.py), the shift window and whether the route is demoted (routers/guard.py), and the judged
shadow pairs behind its online estimate (evaluation/online.py). A restart — a deploy, a crash, a worker
recycled — used to empty all of it: the threshold fell back to the training quantile until `refit_min`
requests had come, a demoted route was promoted again and routed off-distribution traffic by its router
until its window filled, and the online estimate started from nothing.

`RouteMemory` keeps that state in a file beside the ledger (`<ledger>.<route>.learned.json`, mode 0600):
written at most every `SAVE_EVERY_S` seconds while traffic changes it and once more at shutdown, as a
snapshot taken on the event loop and written in a worker thread to a temporary file that replaces the old
one (a crash mid-write leaves the previous file; gateway processes sharing a ledger each write whole files,
and the last one wins). The route reads it back when it is built. A file saved for another router (its
fingerprint differs) or another target share is ignored, and so is one that is too large, malformed or
holds values out of range, with a warning: the route then starts fresh, as it did before. The re-fit
window is restored score by score through `ThresholdRefit.add`, so one gateway key's cap holds after a
restart as it did before it. The file holds scores, shift percentiles, judged outcomes, prompt lengths and
gateway key *names* (never keys); prompt text only for a route that adapts (`learned.adapt`): its newest
`adapt.window` judged pairs' prompts (at most 8,000 characters each), which the ledger's shadow records hold too,
cleaned by the privacy boundary when there is one (`clean_prompts`: a file that does not say so, or says it was
cleaned for fewer protected classes than the boundary has now, is cleaned and rewritten at start), and the adaptation's own part: the indices of the saved pairs its fit was fitted on and the
adapted threshold's window, so a restarted route routes by the same fit and threshold. A file holding prompts the
route does not keep is rewritten at start; files no route reads are named at start (`report_orphans`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tierwise.atomic_file import file_part, write_json

if TYPE_CHECKING:
    from tierwise.evaluation.online import JudgedPair, OnlineValidator
    from tierwise.routers.adapt import LiveAdapter
    from tierwise.routers.guard import RouteGuard
    from tierwise.routers.refit import ThresholdRefit
    from tierwise.routers.window import PlacementWindow

log = logging.getLogger("tierwise")
SAVE_EVERY_S = 10.0  # at most one write per this many seconds while traffic changes the state
FORMAT = 1
MAX_FILE_BYTES = 64 << 20  # far above what the largest windows write (~100,000 scores and key indices)
MAX_INT = 1 << 53  # a saved number past this (a prompt's length, a score) is no state this route wrote


def memory_path(ledger_path: str | Path, route: str) -> Path:
    """Where a learned route's state is kept: beside the ledger, one file per route."""
    lp = Path(ledger_path)
    return lp.with_name(f"{lp.name}.{file_part(route)}.learned.json")


def router_fingerprint(path: str | Path) -> str:
    """Which router file(s) the state was learned with: names, sizes and modification times (a router saved
    again, or another router at the same path, does not take over the old one's scores)."""
    p = Path(path)
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    parts = []
    for f in files:
        st = f.stat()
        parts.append(f"{f.relative_to(p) if p.is_dir() else f.name}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


def open_memory(remember: bool, app_cfg: Any, name: str, router_path: str | Path, target_share: float | None,
                **parts: Any) -> RouteMemory | None:
    """A learned route's state file beside the ledger (none without an on-disk ledger, or with `remember: false`),
    read back now when there is one. (Moved from policies/learned.py, which passed 600 lines; review27a.)"""
    if not remember or app_cfg is None or not app_cfg.ledger.enabled or app_cfg.ledger.path == ":memory:":
        return None
    if not any(p is not None for k, p in parts.items() if k != "adapter"):
        return None  # nothing live to keep (a fixed threshold, no shift, no validation)
    memory = RouteMemory(memory_path(app_cfg.ledger.resolved_path(app_cfg.base_dir), name),
                         router_fingerprint(router_path), target_share, **parts)
    memory.restore()
    return memory


def report_orphans(ledger_path: str | Path, routes: Iterable[Any]) -> list[Path]:
    """State files beside the ledger that no route of this config reads (a learned route renamed or removed, or
    given `remember: false`): nothing read, rewrote or removed them, and an adapting route's held its judged
    prompts. Each is named in one warning at start; nothing is deleted (renaming the route back restores it)."""
    import glob

    lp = Path(ledger_path)
    try:
        found = sorted(lp.parent.glob(glob.escape(lp.name) + ".*.learned.json"))
    except OSError:
        return []
    in_use = {m.path for r in routes if isinstance(m := getattr(getattr(r, "inner", r), "memory", None), RouteMemory)}
    orphans = [f for f in found if f not in in_use]
    for f in orphans:
        try:
            size = f.stat().st_size
        except OSError:
            continue
        log.warning("learned route state %s (%d bytes) belongs to no learned route of this config that keeps its "
                    "state (a route renamed or removed, or `remember: false`?): it is not read, and it may hold "
                    "judged prompts (`learned.adapt`); rename the route back to restore it, or delete the file",
                    f.name, size)
    return orphans


class RouteMemory:
    def __init__(self, path: Path, fingerprint: str, target_share: float | None, *,
                 refit: ThresholdRefit | None = None, guard: RouteGuard | None = None,
                 validator: OnlineValidator | None = None, adapter: LiveAdapter | None = None,
                 window: PlacementWindow | None = None, judged: PlacementWindow | None = None,
                 save_every_s: float = SAVE_EVERY_S) -> None:
        self.path = path
        self.fingerprint = fingerprint
        self.target_share = target_share
        self.refit = refit if refit is not None else (guard.refit if guard is not None else None)
        self.guard = guard
        self.validator = validator
        self.window = window  # `placement: window`: recent requests' LSA vectors and raw scores (no prompt text)
        self.judged = judged  # `placement_judged`: judged requests' vectors and judged gains (no prompt text)
        self.adapter = adapter  # `learned.adapt`: its fit's pairs and threshold window are kept too
        self.cleaned = False  # the kept prompts passed the privacy boundary (`clean_prompts`): the file says so
        self.raw_prompts = False  # the restored file's prompts were never cleaned (a file of before session 27)
        self.cleaned_for: frozenset[str] = frozenset()  # what the boundary protected when it cleaned them (`_cleaning`)
        self._file_cleaned_for: frozenset[str] | None = None  # what the restored file says its prompts were cleaned for
        self.save_every_s = save_every_s
        self._last_save = time.monotonic()
        self._changed = False
        self._writing: asyncio.Task[None] | None = None
        self.restored = False
        self._warned = False  # a failed save is logged once until one succeeds

    # ---------------------------------------------------------------- the request path

    def changed(self) -> None:
        """Called once per routed request: a write is due when the last one is `save_every_s` old."""
        self._changed = True
        if time.monotonic() - self._last_save < self.save_every_s:
            return
        if self._writing is not None and not self._writing.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._last_save = time.monotonic()
        self._changed = False
        self._writing = loop.create_task(self._write_in_thread(self.snapshot()))

    async def _write_in_thread(self, snap: dict[str, Any]) -> None:
        await asyncio.to_thread(lambda: self.write(self.encode(snap)))

    async def close(self) -> None:
        """At shutdown: wait for a write in flight, then write the latest state once more if it changed."""
        if self._writing is not None:
            await asyncio.gather(self._writing, return_exceptions=True)
        if self._changed:
            self._changed = False
            self.write(self.dump())

    # ---------------------------------------------------------------- saving

    def snapshot(self) -> dict[str, Any]:
        """Plain copies of the live state, taken on the event loop that changes it (a few copies of lists:
        about 1 ms for the largest re-fit window); `encode` shapes them for the file, in the writer's thread."""
        snap: dict[str, Any] = {"saved_at": time.time()}
        if self.refit is not None:
            snap["refit"] = self.refit.copy_state()
        if self.guard is not None and self.guard.profile is not None:
            snap["shift"] = (self.guard.window.percentiles(), self.guard.window.off, self.guard.window.keys())
        if self.guard is not None:
            snap["guard"] = (self.guard.demoted, self.guard.reason)
        if self.validator is not None:
            snap["pairs"] = self.validator.pairs()
            snap["online"] = self.validator.demoted
        if self.adapter is not None:
            snap["adapt"] = self.adapter.copy_state()
        if self.window is not None:
            snap["window"] = self.window.state()
        if self.judged is not None:
            snap["judged"] = self.judged.state()
        return snap

    def encode(self, snap: dict[str, Any]) -> dict[str, Any]:
        from tierwise.routers.refit import ThresholdRefit

        data: dict[str, Any] = {"format": FORMAT, "router": self.fingerprint, "target_share": self.target_share,
                                "saved_at": snap["saved_at"]}
        if "refit" in snap:
            scores, keys = ThresholdRefit.ordered(snap["refit"])
            names = list(dict.fromkeys(keys))
            index = {k: i for i, k in enumerate(names)}
            data["refit"] = {"scores": scores, "key_names": names, "keys": [index[k] for k in keys]}
        if "shift" in snap:
            names = list(dict.fromkeys(snap["shift"][2]))
            index = {k: i for i, k in enumerate(names)}
            data["shift"] = {"percentiles": snap["shift"][0], "off": snap["shift"][1], "key_names": names,
                             "keys": [index[k] for k in snap["shift"][2]]}
        if "window" in snap:
            from tierwise.routers.window import PlacementWindow

            data["window"] = PlacementWindow.jsonable(snap["window"])
        if "judged" in snap:
            from tierwise.routers.window import PlacementWindow

            data["judged"] = PlacementWindow.jsonable(snap["judged"])
        if "guard" in snap:
            data["guard"] = {"demoted": snap["guard"][0], "reason": snap["guard"][1]}
        if "pairs" in snap:
            # a route that adapts (`learned.adapt`) keeps its newest pairs' prompts, as the ledger's shadow records do
            # each pair's key by its index in `pair_key_names` (a name in every row made 100,000 pairs of 200-character
            # key names 26 MB: with 2,000 kept prompts, past what a restart reads)
            names = list(dict.fromkeys(p.key for p in snap["pairs"]))
            index = {k: i for i, k in enumerate(names)}
            data["pair_key_names"] = names
            data["online"] = {"demoted": bool(snap.get("online"))}  # the verdict's hysteresis state (session 36)
            data["pairs"] = [[p.prompt_chars, p.score, p.threshold, p.strong, p.weak, index[p.key]]
                             + ([p.prompt] if p.prompt else []) for p in snap["pairs"]]
            if self.cleaned:
                data["prompts_cleaned"] = True
                data["cleaned_for"] = sorted(self.cleaned_for)
        if snap.get("adapt") is not None and "pairs" in snap:
            # the adapted threshold's window and which saved pairs the fit it belongs to was fitted on (by index: a
            # pair whose prompt has since been dropped is not kept twice, so the file stays bounded)
            fitted, state, since = snap["adapt"]
            at = {id(p): i for i, p in enumerate(snap["pairs"])}
            scores, keys = ThresholdRefit.ordered(state)
            names = list(dict.fromkeys(keys))
            index = {k: i for i, k in enumerate(names)}
            data["adapt"] = {"fit": [at[id(p)] for p in fitted if id(p) in at], "since": since, "scores": scores,
                             "key_names": names, "keys": [index[k] for k in keys]}
        return data

    def dump(self) -> dict[str, Any]:
        return self.encode(self.snapshot())

    def write(self, data: dict[str, Any]) -> None:
        try:
            write_json(self.path, data, separators=(",", ":"), allow_nan=False,
                       ensure_ascii=False)  # (kept prompts: evaluation/online.PROMPT_BYTES as UTF-8)
        except (OSError, ValueError) as e:  # routing goes on from memory; the next save tries again
            (log.debug if self._warned else log.warning)(
                "learned route state: could not save %s: %s (the route keeps routing; its state will not "
                "survive a restart until the file can be written)", self.path.name, type(e).__name__)
            self._warned = True
        else:
            self._warned = False

    # ---------------------------------------------------------------- privacy

    def clean_prompts(self, boundary: Any) -> int:
        """With a `privacy:` section (called once the gateway's boundary is built, after its routes): the kept
        prompts are cleaned by it (the shadow task cleans each new one) and the file says so. A restored file that
        does not say so — written before session 27, or by a gateway without the section — may hold the clients'
        raw text (before review26a every adapting route's did): its prompts are cleaned now and the file is
        rewritten at once, so an upgrade keeps no protected value on disk. Returns the prompts cleaned."""
        from dataclasses import replace

        self.cleaned = True
        protects = _cleaning(boundary)
        # A file cleaned by a boundary that protected less (a class or the NER layer added since; a file of
        # session 27's leftovers27, which did not say for what) is cleaned again: `prompts_cleaned` alone made the
        # new classes' values stay raw on disk and in the fits for as long as the pairs did (review27a).
        known = self._file_cleaned_for
        stale = self.raw_prompts or known is None or not protects <= known
        self.cleaned_for = protects  # what the prompts kept from now on are cleaned for (the file's may be more)
        if not stale or self.validator is None or not any(p.prompt for p in self.validator.pairs()):
            self.raw_prompts = False
            return 0
        pairs = self.validator.pairs()
        self.validator.restore([replace(p, prompt=str(boundary.clean_text(p.prompt) or "")) if p.prompt else p
                                for p in pairs])
        if self.adapter is not None:  # fitted on the raw prompts: fitted again on the cleaned ones (new seeds)
            self.adapter.live = self.adapter.summary = None
            self.validator.set_adaptation(None)
            self.adapter.refit()
        self.raw_prompts = False
        self.write(self.dump())
        n = sum(1 for p in pairs if p.prompt)
        log.info("learned route state %s: %d kept prompts cleaned by the privacy boundary and the file rewritten",
                 self.path.name, n)
        return n

    # ---------------------------------------------------------------- restoring

    def restore(self) -> bool:
        """Read the saved state back into the route's parts; False (and a fresh start) when there is none
        or it does not fit."""
        try:
            if not self.path.exists():
                return False
            data = json.loads(_read_regular(self.path))
            why = self._mismatch(data)
            if why:
                log.warning("learned route state %s not restored: %s; starting fresh", self.path.name, why)
                self._drop_prompts(data)
                return False
            self._load(data)
        except (OSError, ValueError, TypeError, KeyError, IndexError, OverflowError, RecursionError) as e:
            # (RecursionError: nesting deeper than the decoder's stack, which no file this route writes has)
            log.warning("learned route state %s not restored (%s); starting fresh", self.path.name, type(e).__name__)
            return False
        self.restored = True
        live = self.adapter.live if self.adapter is not None else None
        log.info("learned route state %s restored: %d judged pairs%s", self.path.name,
                 len(self.validator.pairs()) if self.validator is not None else 0,
                 "" if live is None else f", the adaptation on {live[0].n} of them and its threshold window of "
                 f"{live[1].held} adapted scores")
        if self.adapter is None:  # (the route keeps no prompt: adapt, validation or remember taken out)
            self._drop_prompts(data)
        return True

    def _drop_prompts(self, data: Any) -> None:
        """A file holding prompts this route does not keep (another router's, or the route no longer adapts) is
        rewritten now with the route's state: before, the prompts stayed on disk until traffic made a save."""
        rows = data.get("pairs") if isinstance(data, dict) else None
        if isinstance(rows, list) and any(isinstance(r, list) and len(r) > 6 and r[6] for r in rows):
            self.write(self.dump())
            log.info("learned route state %s: the prompts it held are no longer kept (the file is rewritten)",
                     self.path.name)

    def _mismatch(self, data: Any) -> str:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            return "unknown format"
        if data.get("router") != self.fingerprint:
            return "it was learned with another router file"
        if data.get("target_share") != self.target_share:
            return "it was learned for another target share"
        return ""

    def _load(self, data: dict[str, Any]) -> None:
        # Everything is checked before anything is changed: a bad file leaves the route as it was built.
        refit = None
        if self.refit is not None and "refit" in data:
            r = data["refit"]
            cap = self.refit.capacity  # only the newest `cap` are kept: only they are converted (see _tails)
            keys, raw = _tails(r["keys"], r["scores"], cap)
            names, keys, scores = _strings(r["key_names"]), _ints(keys), _floats(raw)
            if any(not 0 <= k < len(names) for k in keys):
                raise ValueError("refit keys do not match")
            refit = (scores, [names[k] for k in keys])
        shift = None
        if self.guard is not None and self.guard.profile is not None and "shift" in data:
            ps = _floats(data["shift"]["percentiles"])
            if any(not 0.0 <= p <= 1.0 for p in ps):
                raise ValueError("percentile out of range")
            sk: list[str] | None = None  # (a file written before session 21 names no keys)
            if "keys" in data["shift"]:
                names, idx = _strings(data["shift"]["key_names"]), _ints(data["shift"]["keys"])
                if len(idx) != len(ps) or any(not 0 <= k < len(names) for k in idx):
                    raise ValueError("shift keys do not match")
                sk = [names[k] for k in idx]
            n = self.guard.window.window
            shift = (ps[-n:], bool(data["shift"]["off"]), None if sk is None else sk[-n:])
        guard = None
        if self.guard is not None and "guard" in data:
            reason = data["guard"]["reason"]
            if not isinstance(reason, str):
                raise ValueError("reason is not text")
            guard = (bool(data["guard"]["demoted"]), reason[:2000])
        pairs = None
        if self.validator is not None and "pairs" in data:
            from tierwise.evaluation.online import PROMPT_CHARS, JudgedPair

            rows = data["pairs"]
            if not isinstance(rows, list):
                raise ValueError("pairs is not a list")
            pairs = []
            first = max(0, len(rows) - self.validator.capacity)
            key_names = _strings(data.get("pair_key_names", []))  # (before session 27 each row named its key)
            for row in rows[first:]:
                n, score, threshold, strong, weak, *key = row  # the key name: saved since session 21
                vals = _floats([score, threshold, strong, weak])
                if not (isinstance(n, int) and 0 <= n <= MAX_INT and 0 <= vals[2] <= 1 and 0 <= vals[3] <= 1):
                    raise ValueError("pair out of range")
                prompt = key[1] if len(key) > 1 else ""  # the prompt: a route that adapts, since session 26
                if not isinstance(prompt, str) or len(prompt) > PROMPT_CHARS:
                    raise ValueError("prompt is not text or too long")
                if key and isinstance(key[0], int) and not isinstance(key[0], bool):
                    if not 0 <= key[0] < len(key_names):
                        raise ValueError("pair key out of range")
                    name = key_names[key[0]]
                else:
                    name = _strings(key[:1])[0] if key else ""
                pairs.append(JudgedPair(n, vals[0], vals[1], vals[2], vals[3], name, prompt))
        adapt = self._adapt_part(data, pairs, first) if pairs is not None else None
        online = data.get("online", {"demoted": False}) if pairs is not None else {"demoted": False}  # (older: none)
        if not isinstance(online, dict) or not isinstance(online.get("demoted"), bool):
            raise ValueError("online.demoted is not a boolean")
        self.raw_prompts = bool(pairs) and any(p.prompt for p in pairs) and data.get("prompts_cleaned") is not True
        claimed = data.get("cleaned_for")
        self._file_cleaned_for = frozenset(claimed) if data.get("prompts_cleaned") is True and isinstance(
            claimed, list) and all(isinstance(c, str) for c in claimed) else None
        if refit is not None and self.refit is not None:
            self.refit.restore(*refit)
        if shift is not None and self.guard is not None:
            self.guard.window.restore(*shift)
        if guard is not None and self.guard is not None:
            self.guard.demoted, self.guard.reason = guard
        if pairs is not None and self.validator is not None:
            self.validator.restore(pairs, demoted=online["demoted"])
        if adapt is not None and self.adapter is not None:
            self.adapter.restore(*adapt)
        for part, win in (("window", self.window), ("judged", self.judged)):
            if win is not None and part in data and not win.restore(data[part]):
                log.warning("learned route state %s: its placement %s window is malformed; it starts empty",
                            self.path.name, part)

    def _adapt_part(self, data: dict[str, Any], pairs: list[JudgedPair],
                    first: int) -> tuple[list[JudgedPair], tuple[list[float], list[str]], int] | None:
        """The saved adaptation's pairs (of the restored ones) and threshold window, checked; None without one."""
        if self.adapter is None or "adapt" not in data:
            return None
        a = data["adapt"]
        fit, since = _ints(a["fit"]), a["since"]
        if isinstance(since, bool) or not isinstance(since, int) or since < 0:
            raise ValueError("adapt.since is not a count")
        if any(not 0 <= i < first + len(pairs) for i in fit) or any(j <= i for i, j in zip(fit, fit[1:], strict=False)):
            raise ValueError("adapt.fit does not name saved pairs in order")
        keys, raw = _tails(a["keys"], a["scores"], max(1, int(self.adapter._refit_args[0])))
        names, keys, scores = _strings(a["key_names"]), _ints(keys), _floats(raw)
        if any(not 0 <= k < len(names) for k in keys):
            raise ValueError("adapt keys do not match")
        fitted = [p for p in (pairs[i - first] for i in fit if i >= first) if p.prompt][-self.adapter.window:]
        return fitted, (scores, [names[k] for k in keys]), since


def _cleaning(boundary: Any) -> frozenset[str]:
    """What a privacy boundary's cleaning removes: its protected classes, and whether its NER layer is on."""
    protected = getattr(boundary, "protected", None)
    out = {str(c) for c in protected} if isinstance(protected, frozenset | set | list | tuple) else {"?"}
    if getattr(getattr(boundary, "scan", None), "ner_active", False):
        out.add("+ner")
    return frozenset(out)


def _read_regular(path: Path) -> bytes:
    """The file's bytes: a regular file within MAX_FILE_BYTES (a FIFO in its place held the route's build waiting
    for a writer; a device would be read without end), opened without following a FIFO's open."""
    import os
    import stat

    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("not a regular file")
        if st.st_size > MAX_FILE_BYTES:
            raise ValueError("the file is larger than any state this route writes")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise ValueError("the file is larger than any state this route writes")
    return data


def _tails(keys: Any, scores: Any, n: int) -> tuple[list[Any], list[Any]]:
    """The newest `n` of a window's key indices and scores, which must pair up. A file of 64 MiB holds ~16 million
    of them: converting and checking each (a float object apiece) took 400 MB and 7 s of a restart for 32 MB,
    where the route keeps at most its window (review27a)."""
    if not isinstance(keys, list) or not isinstance(scores, list) or len(keys) != len(scores):
        raise ValueError("keys do not match the scores")
    return keys[-n:] if n > 0 else [], scores[-n:] if n > 0 else []


def _floats(xs: Any) -> list[float]:
    if not isinstance(xs, list):
        raise ValueError("expected a list of numbers")
    out = []
    for x in xs:
        # (an integer of 400 digits is JSON, and past any float: float() raised OverflowError, which the restore
        # did not expect; review27a)
        if isinstance(x, bool) or not isinstance(x, int | float) or (isinstance(x, int) and abs(x) > MAX_INT):
            raise ValueError("not a finite number")
        if not math.isfinite(x):
            raise ValueError("not a finite number")
        out.append(float(x))
    return out


def _ints(xs: Any) -> list[int]:
    if not isinstance(xs, list) or any(isinstance(x, bool) or not isinstance(x, int) for x in xs):
        raise ValueError("expected a list of integers")
    return xs


def _strings(xs: Any) -> list[str]:
    if not isinstance(xs, list) or any(not isinstance(x, str) or len(x) > 256 for x in xs):
        raise ValueError("expected a list of key names")
    return xs
