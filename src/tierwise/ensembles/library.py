"""Where ensembles and profiles live, and how they move up: project → global → shared library.

Each location is a folder with `ensembles/*.yaml` and `profiles/*.yaml`:
- project: `<project>/.tierwise/`
- global: `$TIERWISE_HOME` or `~/.config/tierwise/`
- library: a shared git checkout, `$TIERWISE_LIBRARY` (optional)
A name is looked up in that order, so a project can shadow what it inherits. Evaluations
(good/bad verdicts on runs) are kept per ensemble in the project; promotion needs 3 good
ones to go global and 5 to reach the library, copies the profiles the ensemble uses and
refuses files whose script or nested-ensemble paths are hard-coded (they would break on the
next machine) or reach outside the ensemble's folder.

Every name and path that reaches a file here is confined: a name must be a plain name, and
what it names must resolve (symlinks followed) inside its level's folder; a nested ensemble
must stay inside the referring file's folder or an ensemble folder. Trust is per file: only
files the operator lists (config `ensembles.trusted`, by path) are trusted; nothing written
here (create, promote) may replace a trusted file, so an MCP client cannot make one.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson

from tierwise.ensembles.artifacts import KEEP_RUNS
from tierwise.ensembles.carry import copy_scripts, plan_copies
from tierwise.ensembles.confine import inside
from tierwise.ensembles.schema import NAME, Ensemble, Profile, load_ensemble, parse_ensemble, parse_profile
from tierwise.ensembles.scripts import script_problem, script_refusal
from tierwise.errors import ConfigError

# Evaluations kept per ensemble (the newest), and the longest run id one may name: both come from MCP clients.
MAX_EVALUATIONS = 1000
MAX_RUN_ID = 128
# What `create` (MCP's `create_ensemble`, the CLI's `ensemble create`) writes at most: one file's size, and the
# project's ensemble files in all.
MAX_ENSEMBLE_BYTES = 1 << 20
MAX_PROJECT_ENSEMBLES = 1000

Level = Literal["project", "global", "library"]
LEVELS: tuple[Level, ...] = ("project", "global", "library")
PROMOTION_THRESHOLD = {"global": 3, "library": 5}
_ABS_PATH = re.compile(r"^(/|~|\$|[A-Za-z]:[\\/]|\\\\)")
_YAML = (".yaml", ".yml")
# The path a draft (YAML text not yet written) pretends to live at: never a real file name.
DRAFT = "<draft>"


def plain_name(ref: str, what: str = "ensemble") -> str:
    """A name as a tool or client gives it: letters, digits, '-', '_', '.'; never a path or a file name."""
    if not isinstance(ref, str) or not NAME.match(ref) or ref.endswith(_YAML):
        raise ConfigError(f"{ref!r} is not a plain {what} name (letters, digits, '-', '_', '.'; not a path)")
    return ref


@dataclass(slots=True)
class EnsembleEntry:
    name: str
    level: Level
    path: str
    description: str = ""
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "level": self.level, "path": self.path, "description": self.description,
                "valid": self.error is None, "error": self.error}


class Library:
    def __init__(self, project_dir: str | Path = ".", *, global_dir: str | Path | None = None,
                 library_dir: str | Path | None = None, trusted: Iterable[str | Path] = (),
                 script_env: Iterable[str] = ()) -> None:
        self.roots: dict[Level, Path | None] = {
            "project": Path(project_dir) / ".tierwise",
            "global": Path(global_dir or os.environ.get("TIERWISE_HOME") or Path.home() / ".config" / "tierwise"),
            "library": Path(library_dir) if library_dir else (
                Path(os.environ["TIERWISE_LIBRARY"]) if os.environ.get("TIERWISE_LIBRARY") else None),
        }
        # Real paths of the ensemble files the operator trusts (config `ensembles.trusted`).
        self.trusted_files = frozenset(os.path.realpath(p) for p in trusted)
        self.script_env = tuple(script_env)  # config `ensembles.script_env`: what trusted scripts also get
        self.keep_runs = KEEP_RUNS  # runs whose artifacts are kept (artifacts.prune_artifacts)
        self.max_evaluations = MAX_EVALUATIONS  # per ensemble, the newest kept

    # ------------------------------------------------------------------ folders

    def folder(self, level: Level, kind: Literal["ensembles", "profiles"]) -> Path | None:
        root = self.roots[level]
        return root / kind if root is not None else None

    @property
    def artifacts_dir(self) -> Path:
        root = self.roots["project"]
        assert root is not None
        return root / "artifacts"

    @property
    def evaluations_dir(self) -> Path:
        root = self.roots["project"]
        assert root is not None
        return root / "evaluations"

    # ------------------------------------------------------------------ ensembles

    def entries(self) -> list[EnsembleEntry]:
        """Every ensemble in every location; a shadowed name is listed once, at its nearest level."""
        seen: dict[str, EnsembleEntry] = {}
        for level in LEVELS:
            folder = self.folder(level, "ensembles")
            if folder is None or not folder.is_dir():
                continue
            for f in sorted(folder.glob("*.y*ml")):
                if f.stem in seen:
                    continue
                entry = EnsembleEntry(f.stem, level, str(f))
                if not inside(f, folder):  # never read (nor echo) a file a symlink leads to elsewhere
                    entry.error = "refused: resolves outside the ensemble folder"
                    seen[f.stem] = entry
                    continue
                try:
                    ens = load_ensemble(f)
                    entry.description = ens.description
                except ConfigError as e:
                    entry.error = e.message
                seen[f.stem] = entry
        return list(seen.values())

    def find(self, ref: str, *, relative_to: Path | None = None) -> Path:
        """An ensemble by name in the locations, or by file path.

        A top-level path (the operator's CLI argument) is taken as given; a nested one
        (`relative_to`, from an ensemble file) must stay inside that file's folder or an
        ensemble folder."""
        p = Path(ref)
        if p.suffix not in _YAML:
            return self.find_name(ref)
        if relative_to is None:
            if p.is_file():
                return p
            raise ConfigError("ensemble file not found", file=ref)
        cand = p if p.is_absolute() else relative_to / p
        allowed = [relative_to, *self.ensemble_folders()]
        if not any(inside(cand, f) for f in allowed):
            raise ConfigError(f"nested ensemble {ref!r} lies outside the ensemble folders (refused)")
        if not cand.is_file():
            raise ConfigError("ensemble file not found", file=ref)
        return cand

    def find_name(self, ref: str) -> Path:
        """An ensemble by plain name only, confined to its level's folder (what MCP tools use)."""
        plain_name(ref)
        for level in LEVELS:
            folder = self.folder(level, "ensembles")
            if folder is None:
                continue
            for ext in _YAML:
                cand = folder / f"{ref}{ext}"
                if cand.is_file() or cand.is_symlink():
                    if not inside(cand, folder):
                        raise ConfigError(f"ensemble {ref!r} resolves outside the {level} ensemble folder (refused)")
                    return cand
        known = ", ".join(e.name for e in self.entries()) or "none"
        raise ConfigError(f"no ensemble named {ref!r} (known: {known})")

    def ensemble_folders(self) -> list[Path]:
        return [f for level in LEVELS if (f := self.folder(level, "ensembles")) is not None]

    def load(self, ref: str) -> Ensemble:
        return load_ensemble(self.find(ref))

    def load_name(self, ref: str) -> Ensemble:
        return load_ensemble(self.find_name(ref))

    def parse_draft(self, text: str) -> Ensemble:
        """YAML text not yet written: parsed as if it were a new file in the project folder."""
        folder = self.folder("project", "ensembles")
        assert folder is not None
        return parse_ensemble(text, file=str(folder / DRAFT))

    def trusted(self, ens: Ensemble) -> bool:
        """Only a file the operator listed; a draft or a file anywhere else is untrusted."""
        return bool(ens.path) and Path(ens.path or "").name != DRAFT \
            and os.path.realpath(ens.path or "") in self.trusted_files

    def _is_trusted_path(self, path: Path) -> bool:
        return os.path.realpath(path) in self.trusted_files

    def level_of(self, path: Path) -> Level | None:
        for level in LEVELS:
            folder = self.folder(level, "ensembles")
            if folder is not None and folder.resolve() == path.resolve().parent:
                return level
        return None

    def create(self, name: str, text: str, *, overwrite: bool = False, scripts_from: Path | None = None) -> Path:
        """Validate and write a new project ensemble; the file is untrusted until the operator lists it.

        `scripts_from`: the folder of the file the text came from (`create --from-file`); the script
        files the ensemble names are copied from there into the ensemble folder (carry.py)."""
        if not NAME.match(name) or name.endswith(_YAML):
            raise ConfigError(f"{name!r} is not a valid ensemble name (letters, digits, '-', '_', '.')")
        folder = self.folder("project", "ensembles")
        assert folder is not None
        target = folder / f"{name}.yaml"
        if len(text.encode("utf-8", "surrogatepass")) > MAX_ENSEMBLE_BYTES:
            raise ConfigError(f"an ensemble file may hold at most {MAX_ENSEMBLE_BYTES:,} bytes", file=str(target))
        if not target.exists() and folder.is_dir() and \
                sum(1 for f in os.scandir(folder) if f.name.endswith(_YAML)) >= MAX_PROJECT_ENSEMBLES:
            raise ConfigError(f"the project holds {MAX_PROJECT_ENSEMBLES:,} ensembles already (the most one may "
                              "create); remove some first", file=str(target))
        ens = parse_ensemble(text, file=str(target))
        if ens.name != name:
            raise ConfigError(f"the ensemble's own `name:` is {ens.name!r}, not {name!r}: create it as {ens.name!r}, "
                              f"or change its `name:` to {name!r} first", file=str(target))
        unsafe = [f"agent {a.name!r}: {p}" for a in ens.agents
                  if a.script is not None and (p := script_refusal(a.script, folder, trusted=False))]
        if unsafe:
            raise ConfigError("refused: " + "; ".join(unsafe), file=str(target))
        if target.is_symlink() or (target.exists() and not inside(target, folder)):
            raise ConfigError("refused: the file there is a symlink", file=str(target))
        if self._is_trusted_path(target):
            raise ConfigError("refused: a trusted ensemble is edited by the operator, not replaced", file=str(target))
        if target.exists() and not overwrite:
            raise ConfigError("an ensemble with this name exists already", file=str(target))
        folder.mkdir(parents=True, exist_ok=True)
        if scripts_from is not None:  # every check before anything is written
            copy_scripts(plan_copies(ens, scripts_from, folder, file=str(target)), folder)
        flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_TRUNC if overwrite else os.O_EXCL)
        with os.fdopen(os.open(target, flags, 0o644), "w", encoding="utf-8") as f:
            f.write(text)
        return target

    # ------------------------------------------------------------------ profiles (Resolver)

    def profiles(self) -> dict[str, tuple[Level, Profile | ConfigError]]:
        out: dict[str, tuple[Level, Profile | ConfigError]] = {}
        for level in LEVELS:
            folder = self.folder(level, "profiles")
            if folder is None or not folder.is_dir():
                continue
            for f in sorted(folder.glob("*.y*ml")):
                if f.stem in out:
                    continue
                if not inside(f, folder):
                    out[f.stem] = (level, ConfigError("refused: resolves outside the profile folder", file=str(f)))
                    continue
                try:
                    out[f.stem] = (level, parse_profile(f.read_text(encoding="utf-8"), file=str(f), name=f.stem))
                except ConfigError as e:
                    out[f.stem] = (level, e)
                except OSError as e:
                    out[f.stem] = (level, ConfigError(f"cannot read: {e.strerror}", file=str(f)))
        return out

    def profile_path(self, name: str) -> Path | None:
        """A profile by plain name, confined to its folder; anything else is no profile at all."""
        if not NAME.match(name) or name.endswith(_YAML):
            return None
        for level in LEVELS:
            folder = self.folder(level, "profiles")
            if folder is None:
                continue
            for ext in _YAML:
                cand = folder / f"{name}{ext}"
                if cand.is_file() and inside(cand, folder):
                    return cand
        return None

    def profile(self, name: str, ens: Ensemble) -> Profile:
        if name in ens.profiles:
            return ens.profiles[name]
        path = self.profile_path(name)
        if path is None:
            inline = ", ".join(ens.profiles) or "none"
            raise ConfigError(f"unknown profile {name!r} (inline: {inline}; none in .tierwise/profiles, the "
                              "global folder or the library)", file=ens.path)
        return parse_profile(path.read_text(encoding="utf-8"), file=str(path), name=name)

    def ensemble(self, ref: str, ens: Ensemble) -> Ensemble:
        return load_ensemble(self.find(ref, relative_to=ens.base_dir))

    # ------------------------------------------------------------------ reference checks

    def problems(self, ens: Ensemble, known_model: Any = None, _stack: tuple[str, ...] = ()) -> list[str]:
        """Profiles, models and nested ensembles that do not resolve; `known_model(name) -> bool`."""
        out: list[str] = []
        for a in ens.agents:
            who = f"agent {a.name!r}"
            for ref in filter(None, (a.profile, a.fallback_profile)):
                try:
                    prof = self.profile(ref, ens)
                except ConfigError:
                    out.append(f"{who}: unknown profile {ref!r}")
                    continue
                chain = {ref}
                while prof.fallback:
                    if prof.fallback in chain:
                        out.append(f"{who}: profile fallbacks loop at {prof.fallback!r}")
                        break
                    chain.add(prof.fallback)
                    try:
                        prof_next = self.profile(prof.fallback, ens)
                    except ConfigError:
                        out.append(f"{who}: profile {prof.name!r} falls back to unknown profile {prof.fallback!r}")
                        break
                    if known_model and not known_model(prof_next.model):
                        out.append(f"{who}: profile {prof_next.name!r} names unknown model {prof_next.model!r}")
                    prof = prof_next
                try:
                    p0 = self.profile(ref, ens)
                    if known_model and not known_model(p0.model):
                        out.append(f"{who}: profile {ref!r} names unknown model {p0.model!r}")
                except ConfigError:
                    pass
            if a.model and known_model and not known_model(a.model):
                out.append(f"{who}: unknown model or route {a.model!r}")
            if a.ensemble:
                try:
                    sub = self.ensemble(a.ensemble, ens)
                except ConfigError as e:
                    out.append(f"{who}: ensemble: {e.message}")
                    continue
                if sub.name in _stack or sub.name == ens.name:
                    out.append(f"{who}: ensemble {sub.name!r} nests itself")
                    continue
                out.extend(f"{who} -> {p}" for p in self.problems(sub, known_model, (*_stack, ens.name)))
            if a.script is not None:
                problem = script_problem(a.script, ens.base_dir, trusted=self.trusted(ens))
                if problem:
                    out.append(f"{who}: {problem}")
        return out

    # ------------------------------------------------------------------ evaluations

    def record_evaluation(self, ensemble: str, run_id: str | None, verdict: str, note: str = "") -> dict[str, Any]:
        if verdict not in ("good", "bad"):
            raise ConfigError(f"verdict must be 'good' or 'bad', not {verdict!r}")
        if run_id is not None and (len(run_id) > MAX_RUN_ID or not NAME.match(run_id)):
            # (an MCP argument: it is kept in the file and the ledger; only the note was bounded)
            raise ConfigError(f"run_id must be a run id (letters, digits, '-', '_', '.'; at most {MAX_RUN_ID})")
        name = self.load_name(ensemble).name  # a validated name: never a path the caller chose
        rec = {"ensemble": name, "run_id": run_id, "verdict": verdict, "note": note, "ts": time.time()}
        self.evaluations_dir.mkdir(parents=True, exist_ok=True)
        path = self.evaluations_dir / f"{name}.jsonl"
        with open(path, "ab") as f:
            f.write(orjson.dumps(rec) + b"\n")
        lines = path.read_bytes().splitlines(keepends=True)
        if len(lines) > self.max_evaluations:  # the newest only: an agent may record in a loop
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_bytes(b"".join(lines[-self.max_evaluations:]))
            os.replace(tmp, path)
        return rec

    def evaluations(self, ensemble: str) -> list[dict[str, Any]]:
        path = self.evaluations_dir / f"{ensemble}.jsonl"
        if not path.is_file():
            return []
        out = []
        for line in path.read_bytes().splitlines():
            try:
                out.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue
        return out

    def good_count(self, ensemble: str) -> int:
        return sum(e.get("verdict") == "good" for e in self.evaluations(ensemble))

    # ------------------------------------------------------------------ promotion

    def promotion_plan(self, ensemble: str, to: Level) -> dict[str, Any]:
        """What promoting would do, or why it cannot: checked before the user is asked to confirm."""
        if to not in PROMOTION_THRESHOLD:
            raise ConfigError(f"can promote to 'global' or 'library', not {to!r}")
        dest_root = self.roots[to]
        if dest_root is None:
            raise ConfigError("no shared library configured (set TIERWISE_LIBRARY to a git checkout path)")
        src = self.find_name(ensemble)
        ens = load_ensemble(src)
        here = self.level_of(src)
        if here is not None and LEVELS.index(here) >= LEVELS.index(to):
            raise ConfigError(f"{ensemble!r} is already at the {here} level")
        need = PROMOTION_THRESHOLD[to]
        good = self.good_count(ens.name)
        if good < need:
            raise ConfigError(f"{ensemble!r} has {good} good evaluation(s); promoting to {to} needs {need} "
                              "(record them with `record_evaluation` / after runs you checked)")
        hard = hard_coded_paths(ens)
        if hard:
            raise ConfigError(f"{ensemble!r} has hard-coded paths, which would break elsewhere: "
                              + ", ".join(hard[:5]) + " (use paths relative to the ensemble file)")
        dest_dir = (dest_root / "ensembles").resolve()
        if self._is_trusted_path(dest_dir / src.name):
            raise ConfigError(f"{ensemble!r} would replace a trusted ensemble at the {to} level (refused)")
        scripts = []  # scripts travel with the ensemble, to the same place relative to it
        for a in ens.agents:
            first = a.script if isinstance(a.script, str) else (a.script or [""])[0]
            if first and (src.parent / first).is_file():
                if not (dest_dir / first).resolve().is_relative_to(dest_dir):
                    raise ConfigError(f"{ensemble!r}: script {first!r} would be copied outside {dest_dir}")
                if not inside(src.parent / first, src.parent):
                    raise ConfigError(f"{ensemble!r}: script {first!r} lies outside its folder (refused)")
                there = dest_dir / first
                if there.exists() and there.read_bytes() != (src.parent / first).read_bytes():
                    # Another ensemble up there (maybe a trusted one) runs that script: never swap it.
                    raise ConfigError(f"{ensemble!r}: a different script {first!r} exists at the {to} level")
                scripts.append(first)
        profiles = sorted(self._profiles_needed(ens))
        odd = [p for p in profiles if not NAME.match(p)]
        if odd:
            raise ConfigError(f"{ensemble!r} uses profile names that are not plain names: {', '.join(odd)} "
                              "(letters, digits, '-', '_' and '.')")
        missing = [p for p in profiles if self.profile_path(p) is None]
        if missing:
            raise ConfigError(f"{ensemble!r} uses profiles that exist nowhere: {', '.join(missing)}")
        return {"ensemble": ensemble, "from": str(src), "to": str(dest_root / "ensembles" / src.name),
                "level": to, "good_evaluations": good, "profiles": profiles, "scripts": scripts}

    def _profiles_needed(self, ens: Ensemble) -> set[str]:
        names: set[str] = set()
        todo = [r for a in ens.agents for r in (a.profile, a.fallback_profile) if r and r not in ens.profiles]
        while todo:
            n = todo.pop()
            if n in names:
                continue
            names.add(n)
            path = self.profile_path(n)
            if path is not None:
                fb = parse_profile(path.read_text(encoding="utf-8"), file=str(path), name=n).fallback
                if fb and fb not in ens.profiles:
                    todo.append(fb)
        return names

    def promote(self, ensemble: str, to: Level) -> dict[str, Any]:
        plan = self.promotion_plan(ensemble, to)
        dest = Path(plan["to"])
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(plan["from"], dest)
        copied = []
        prof_dir = self.folder(to, "profiles")
        assert prof_dir is not None
        for p in plan["profiles"]:
            src = self.profile_path(p)
            target = prof_dir / f"{p}.yaml"
            if src is not None and not target.exists():
                prof_dir.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, target)
                copied.append(p)
        for first in plan["scripts"]:
            (dest.parent / first).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(plan["from"]).parent / first, dest.parent / first)
        return {**plan, "profiles_copied": copied, "promoted": True}


def hard_coded_paths(ens: Ensemble) -> list[str]:
    """Script and nested-ensemble paths that are absolute, start at ~ or a $VARIABLE, or climb out with `..`."""
    found: list[str] = []
    for a in ens.agents:
        for path in ([a.script] if isinstance(a.script, str) else a.script or []) + ([a.ensemble] if a.ensemble else []):
            if (_ABS_PATH.match(path) and len(path) > 1) or ".." in re.split(r"[\\/]", path):
                found.append(path)
    return found
