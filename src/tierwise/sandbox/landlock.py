"""Landlock (Linux 5.13+, no privilege or namespace needed) for the weak sandbox's runs: what the code may open of
the host, whoever it is and whatever its mounts. Between fork and exec, after the mounts and the switch of user, the
child makes a ruleset handling every filesystem right its kernel knows, allows reading and executing beneath the
system's libraries (bwrap.SYSTEM_PATHS), the interpreter, the folders bound in, read and write of five devices and
everything in the run's own folder, and restricts itself (with no_new_privs). Where the kernel has them, TCP
(ABI 4), abstract unix sockets and signals to processes outside the run (ABI 6) are refused too.

It is the only filesystem bound a weak run has where the gateway cannot make a mount namespace: a gateway that is not
root on a kernel that lets no unprivileged user make a user namespace, whose runs wrote wherever its user may (its
`.bashrc`, its ledger) and read its files and /proc; and a root gateway without CAP_SYS_ADMIN. Elsewhere it is a
second layer under the read-only host (it also hides the regular files at the top of the host, which a mount
cannot cover). Prepared in the parent: the child only makes system calls on prepared memory.
"""

from __future__ import annotations

import ctypes
import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

SYS_CREATE_RULESET, SYS_ADD_RULE, SYS_RESTRICT_SELF = 444, 445, 446  # the same on every architecture
CREATE_RULESET_VERSION, RULE_PATH_BENEATH, PR_SET_NO_NEW_PRIVS = 1, 1, 38
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FS_V1 = (1 << 13) - 1  # execute .. make_sym
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15  # ABI 2, 3, 5
FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV  # what a rule on a file (not a folder) may allow
BIND_TCP, CONNECT_TCP = 1, 2  # ABI 4
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1, 2  # ABI 6
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


@functools.cache
def _syscall() -> Callable[..., int] | None:
    try:
        call = ctypes.CDLL(None, use_errno=True).syscall
    except (AttributeError, OSError):
        return None
    call.restype = ctypes.c_long
    return call


@functools.cache
def _prctl() -> Callable[..., int]:
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


@functools.cache
def abi() -> int:
    """The kernel's Landlock ABI version; 0 where it has none (older than 5.13, not enabled, refused by a filter)."""
    call = _syscall()
    if call is None:
        return 0
    version = call(SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(CREATE_RULESET_VERSION))
    return max(0, int(version))


def handled_fs(version: int) -> int:
    return FS_V1 | (REFER if version >= 2 else 0) | (TRUNCATE if version >= 3 else 0) | \
        (IOCTL_DEV if version >= 5 else 0)


@dataclass(frozen=True, slots=True)
class Rules:
    """A ruleset prepared for one run: its attributes, their size for this ABI, and (path, allowed) rules."""

    attr: _RulesetAttr
    size: int
    rules: tuple[tuple[bytes, _PathBeneath, bool], ...]  # (path, rule, a folder)


def rules(readable: Sequence[str], folder: str | None, hidden: Sequence[str] = (),
          bound: Sequence[str] = (), own: Sequence[str] = ()) -> Rules | None:
    """`readable`: folders and files read and executed beneath, but for the folders of `hidden` inside them (`around`);
    `bound`: folders read and executed beneath, whole; `folder`: the run's own, every right (None: nothing writable
    but the devices); `own`: more folders of the run's own (a tmpfs its mount namespace made). None: no Landlock."""
    version = abi()
    if version < 1:
        return None
    _prctl()  # looked up here, not in the child
    fs = handled_fs(version)
    attr = _RulesetAttr(fs, BIND_TCP | CONNECT_TCP if version >= 4 else 0,
                        SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if version >= 6 else 0)
    size = 8 if version < 4 else 16 if version < 6 else 24
    wanted: dict[str, int] = {}
    for path in bound:
        wanted[os.path.realpath(path)] = EXECUTE | READ_FILE | READ_DIR
    for device in DEVICES:
        wanted[device] = READ_FILE | WRITE_FILE | TRUNCATE
    for path in (*own, *(() if folder is None else (folder,))):
        wanted[os.path.realpath(path)] = fs
    made = list(_system(tuple(readable), tuple(hidden), fs))
    for path, allowed in sorted(wanted.items()):
        if not os.path.exists(path):
            continue
        is_folder = os.path.isdir(path)
        made.append((path.encode(), _PathBeneath(allowed & fs & (~0 if is_folder else FILE_RIGHTS), -1), is_folder))
    return Rules(attr, size, tuple(made))


@functools.lru_cache(maxsize=8)
def _system(readable: tuple[str, ...], hidden: tuple[str, ...], fs: int) -> tuple[tuple[bytes, _PathBeneath, bool], ...]:
    """The rules for `readable` around `hidden`, the same for every run of this process (~225 paths with the
    interpreter's site-packages gone around: listed and checked once, as bwrap.layout; 3.6 ms a run otherwise)."""
    wanted: dict[str, int] = {}
    hide = [os.path.realpath(h) for h in hidden]
    for path in readable:
        for part, allowed in around(os.path.realpath(path), hide):
            wanted[part] = wanted.get(part, 0) | allowed
    made = []
    for path, allowed in sorted(wanted.items()):
        if not os.path.exists(path):
            continue
        is_folder = os.path.isdir(path)
        made.append((path.encode(), _PathBeneath(allowed & fs & (~0 if is_folder else FILE_RIGHTS), -1), is_folder))
    return tuple(made)


def around(root: str, hidden: Sequence[str]) -> list[tuple[str, int]]:
    """Rules that let a run read and execute beneath `root` but not in the folders of `hidden` inside it, as bubblewrap
    hides them under an empty tmpfs (bwrap.layout, `masks`: the installed packages, the gateway's folder and home).
    Landlock only adds rights, beneath a path: so every folder on the way from `root` to a hidden one gets READ_DIR (a
    listing: the interpreter lists its standard library's folder to import from it, and the hidden folder's names
    stay listed), and everything beside the way its own rule, whole. Symlinks beside the way get none: a rule follows
    its path, and one pointing out of `root` (which its rule never covered) would be allowed. Where Landlock alone
    bounds a run (no mount namespace), the interpreter's site-packages was listed and read whole (session 29)."""
    inside = [h for h in hidden if h.startswith(root.rstrip("/") + "/")]
    if not inside or os.path.islink(root) or not os.path.isdir(root):
        return [(root, EXECUTE | READ_FILE | READ_DIR)]
    made = [(root, READ_DIR)]
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return made
    for name in names:
        child = os.path.join(root, name)
        if child in inside or os.path.islink(child):
            continue
        made += around(child, inside)
    return made


def restrict(prepared: Rules) -> None:
    """Between fork and exec: the calling process restricted to `prepared` (raises OSError if the kernel refuses)."""
    call = _syscall()
    assert call is not None
    if _prctl()(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "landlock: no_new_privs")
    ruleset = int(call(SYS_CREATE_RULESET, ctypes.byref(prepared.attr), ctypes.c_size_t(prepared.size),
                       ctypes.c_uint32(0)))
    if ruleset < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"landlock: the ruleset: {os.strerror(err)}")
    try:
        for path, rule, _ in prepared.rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # gone since it was prepared: nothing to allow
            try:
                rule.parent_fd = fd
                if call(SYS_ADD_RULE, ruleset, RULE_PATH_BENEATH, ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"landlock: a rule for {path.decode(errors='replace')}: {os.strerror(err)}")
            finally:
                os.close(fd)
        if call(SYS_RESTRICT_SELF, ruleset, ctypes.c_uint32(0)) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"landlock: restrict_self: {os.strerror(err)}")
    finally:
        os.close(ruleset)
