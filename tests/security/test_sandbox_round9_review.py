"""review28a, of sandbox attack round 9 (bench/RESULTS.md, "Review of attack-sandbox9"): what a gateway in the leaf
`tierwise-gateway` is told when the cgroup above it cannot take its runs' cgroups."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from tests.security.sandbox_programs import attempt_prelude
from tests.security.test_sandbox_cross_run import mode  # noqa: F401 (the fixture: bwrap, weak)
from tierwise.sandbox import SandboxLimits, cgroup, run_python


def _tree(tmp_path: Path) -> tuple[Path, list[tuple[str, str, str, str]]]:
    above = tmp_path / "system.slice" / "tw.service"
    for folder in (above, above / cgroup.LEAF):
        folder.mkdir(parents=True)
        (folder / "cgroup.controllers").write_text("memory pids\n")
        (folder / "cgroup.subtree_control").write_text("\n")
    return above, [("/", str(tmp_path), "cgroup2", "rw")]


@pytest.mark.parametrize(("code", "says"), [(errno.EACCES, "is not delegated to the gateway's user"),
                                             (errno.EBUSY, "holds a process; every process of it goes in a leaf")])
def test_a_leaf_whose_cgroup_above_refuses_says_what_is_wrong_above(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, says: str) -> None:
    """A gateway already in the leaf was told to "run the gateway in a leaf named tierwise-gateway below a cgroup
    delegated to it" when the cgroup above refused the controller: advice it had followed. It is told now which
    cgroup refused and why: not delegated to its user (EACCES: a root-made leaf chowned to the gateway's user, the
    cgroup above still root's), or a process left in it (EBUSY: a unit's own process not moved into a leaf)."""
    above, mounts = _tree(tmp_path)

    def refuse(path: str, value: str) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(cgroup, "_write", refuse)
    why = cgroup._v2_place("memory", f"/system.slice/tw.service/{cgroup.LEAF}", mounts)
    assert isinstance(why, str) and str(above) in why and f"above the gateway's leaf {cgroup.LEAF}" in why, why
    assert says in why and "run the gateway in a leaf" not in why, why
    # Not in the leaf: the advice stays.
    why = cgroup._v2_place("memory", "/system.slice/tw.service", mounts)
    assert isinstance(why, str) and f"run the gateway in a leaf named {cgroup.LEAF}" in why, why


def test_a_cgroup_above_the_leaf_the_gateway_may_not_write_says_it_is_not_delegated(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The controller already enabled above the leaf (the root cgroup, a user manager's), the gateway's user may not
    make a cgroup there: "cannot make a cgroup in … (Permission denied)" said nothing of delegation."""
    above, _ = _tree(tmp_path)

    def refuse(path: str, permissions: int = 0o777) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(cgroup.os, "mkdir", refuse)
    why = cgroup._try(cgroup.Place("memory", str(above), True))
    assert why is not None and "not delegated to the gateway's user" in why and cgroup.LEAF in why, why


AUTOBIND = """
import socket
""" + attempt_prelude("DONE") + """
a, b = socket.socketpair()
attempt("SO_PASSCRED", lambda: a.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1))
attempt("SO_PASSPIDFD", lambda: a.setsockopt(socket.SOL_SOCKET, 76, 1))
attempt("connect", lambda: a.connect(b"\\0tw-r28a-nowhere"))
print("NAME", repr(a.getsockname()))
"""


async def test_a_socket_pair_gets_no_abstract_name_by_autobind(mode: str) -> None:  # noqa: F811
    """Round 9 refused `bind`, and a pair still got a name: with SO_PASSCRED (or SO_PASSPIDFD) set, `connect` binds
    the socket to an abstract name the kernel picks before it finds the pair already connected (EISCONN), and the
    weak sandbox shares the host's network namespace: the run held names of the host's (kernel-chosen, five hex
    digits: `\\x0039db2`), one per descriptor, while it lasted. Both options are refused now; nothing of a run
    receives credentials."""
    r = await run_python(AUTOBIND, limits=SandboxLimits(wall_s=30, cpu_s=5, memory_mb=256), audit_hook=False)
    assert r.ok, r.stderr
    assert "SO_PASSCRED refused 1" in r.stdout and "SO_PASSPIDFD refused 1" in r.stdout, r.stdout
    assert "NAME ''" in r.stdout or "NAME b''" in r.stdout, r.stdout
