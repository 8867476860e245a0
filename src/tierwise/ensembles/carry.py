"""Scripts travel with an ensemble file: `ensemble create --from-file` copies the script files the
ensemble names from the file's folder into the project's ensemble folder, where a run looks for them.

Both ends are confined (confine.py, symlinks followed): a script must be a relative path without
`..` that resolves inside the source file's folder, and its copy must land inside the ensemble
folder. Nothing is replaced: a different script already at that path (another ensemble's, maybe a
trusted one's) is refused, the same bytes are left as they are. Every check runs before the first
byte is written, so a refused file leaves the folder as it was. Sizes and counts are bounded.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from tierwise.ensembles.confine import inside
from tierwise.ensembles.schema import Ensemble
from tierwise.ensembles.scripts import script_refusal
from tierwise.errors import ConfigError

MAX_SCRIPT_BYTES = 1 << 20
MAX_SCRIPTS = 64


@dataclass(frozen=True, slots=True)
class ScriptCopy:
    relative: str  # as the ensemble names it
    source: Path
    target: Path
    present: bool  # the same bytes are there already: nothing to write


def script_files(ens: Ensemble) -> list[str]:
    """The script files an ensemble names, once each, in agent order (inline commands are not files)."""
    seen: dict[str, None] = {}
    for a in ens.agents:
        if isinstance(a.script, str):
            seen.setdefault(a.script, None)
    return list(seen)


def plan_copies(ens: Ensemble, source_dir: Path, dest_dir: Path, *, file: str | None = None) -> list[ScriptCopy]:
    """What copying the ensemble's scripts would do; raises ConfigError (listing every problem) if anything is refused."""
    problems: list[str] = []
    plan: list[ScriptCopy] = []
    names = script_files(ens)
    if len(names) > MAX_SCRIPTS:
        raise ConfigError(f"names {len(names)} script files; at most {MAX_SCRIPTS} are copied", file=file)
    for a in ens.agents:
        if isinstance(a.script, list):
            problems.append(f"agent {a.name!r}: an inline command (a list) cannot be carried along; "
                            "name a script file next to the ensemble file")
    for rel in names:
        refusal = script_refusal(rel, source_dir, trusted=False)
        if refusal:
            problems.append(refusal)
            continue
        src, dst = source_dir / rel, dest_dir / rel
        if not src.is_file():
            problems.append(f"script {rel!r} not found next to the ensemble file (in {source_dir})")
            continue
        size = src.stat().st_size
        if size > MAX_SCRIPT_BYTES:
            problems.append(f"script {rel!r} is {size} bytes; at most {MAX_SCRIPT_BYTES} are copied")
            continue
        if not inside(dst, dest_dir):
            problems.append(f"script {rel!r} would land outside {dest_dir} (refused)")
            continue
        present = False
        if dst.is_symlink():
            problems.append(f"script {rel!r}: the path in {dest_dir} is a symlink (refused)")
            continue
        if dst.exists():
            if not dst.is_file() or dst.read_bytes() != src.read_bytes():
                problems.append(f"a different script {rel!r} is already in {dest_dir}: another ensemble may run "
                                "it, so it is not replaced (rename one of them)")
                continue
            present = True
        plan.append(ScriptCopy(rel, src, dst, present))
    if problems:
        raise ConfigError("cannot carry the scripts along:\n  " + "\n  ".join(problems), file=file)
    return plan


def copy_scripts(plan: list[ScriptCopy], dest_dir: Path) -> list[str]:
    """Write the planned copies (never through a symlink, never over a file); returns what was written."""
    written: list[str] = []
    for c in plan:
        if c.present:
            continue
        c.target.parent.mkdir(parents=True, exist_ok=True)
        if not inside(c.target.parent, dest_dir):  # a folder swapped for a symlink since the plan
            raise ConfigError(f"script {c.relative!r}: its folder resolves outside {dest_dir} (refused)")
        data = c.source.read_bytes()[: MAX_SCRIPT_BYTES + 1]
        if len(data) > MAX_SCRIPT_BYTES:
            raise ConfigError(f"script {c.relative!r} grew past {MAX_SCRIPT_BYTES} bytes while copying")
        mode = stat.S_IMODE(c.source.stat().st_mode) & 0o755 | 0o600
        try:
            fd = os.open(c.target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        except FileExistsError:
            raise ConfigError(f"script {c.relative!r} appeared in {dest_dir} while copying (refused)") from None
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        written.append(c.relative)
    return written
