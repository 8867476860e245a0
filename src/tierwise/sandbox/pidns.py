"""A weak run's PID namespace (session 36): the process tree that puts a weak run whose host is read-only (a mount
namespace: a root gateway, or one that is not root in a user namespace) in a PID namespace of its own, as bubblewrap's
runs are. Without one a weak run saw the host's PIDs: `getppid` named the gateway, its threads' ids counted the host's
tasks, and `F_GETLK` on a file a host process locked named that process (the filter keeps calls aimed at another PID
from it; what it learns is who and how many).

Between fork and exec (tierwise.sandbox.identity.switch, after the mounts, before the switch of user), the child the
gateway started (the *keeper*, outside) makes the namespace and forks its *init* (PID 1 in it), which forks the run
(PID 2), which goes on to become its user, confine itself and exec the run's interpreter. The run is not PID 1: the
kernel ignores signals a namespace's init has no handler for, so RLIMIT_CPU's SIGXCPU (and a program's signals to
itself) did nothing to it. The keeper and the init exec `python -I -S` on KEEPER (a copy of the gateway's memory
would linger for the run's length) and hold nothing but a pipe: the init tells the keeper how the run ended, and the
keeper ends the same way, so the runner reads the run's exit status or signal as before. Both die with their parent
(PR_SET_PDEATHSIG), and the namespace dies with its init: a gateway killed outright takes the run with it. Landlock
alone (no capability, no user namespace) cannot make a PID namespace (CLONE_NEWPID needs CAP_SYS_ADMIN)."""

from __future__ import annotations

import os
import select
import signal
import warnings
from collections.abc import Callable
from typing import Any

CLONE_NEWPID = 0x20000000
PR_SET_PDEATHSIG = 1
# What the keeper and the init hold in the run's memory cgroup (an interpreter each: ~3.6 MB of their own measured),
# added to its limit, which bounds the run's memory, folder and kernel memory in total.
KEEPERS_MB = 8
RUN, INIT = 2, 1  # the run's PID and its parent's, in its namespace (PID 2 of the host's is kthreadd, no process of ours)

# What the keeper ("outside": its child is the init) and the init ("init": its child is the run) run after exec:
# argv role, the status pipe's descriptor, the child's PID as the process sees it. The init writes the run's wait
# status (4 bytes) and exits; the keeper waits for the init, and ends as the run ended (its signal, else its code).
KEEPER = r"""
import os, signal, sys
role, fd, child = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if role == "init":
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            os._exit(0)
        if pid == child:
            os.write(fd, status.to_bytes(4, "little"))
            os._exit(0)
_, status = os.waitpid(child, 0)
said = os.read(fd, 4)
if len(said) == 4:
    status = int.from_bytes(said, "little")
if os.WIFSIGNALED(status):
    sig = os.WTERMSIG(status)
    try:
        signal.signal(sig, signal.SIG_DFL)
    except (OSError, ValueError):
        pass
    os.kill(os.getpid(), sig)
    os._exit(128 + sig)
os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)
"""


def enter(libc: Any, gateway: int, python: bytes, ids: tuple[int, int] | None) -> None:
    """In the gateway's child between fork and exec (system calls, and two forks): returns only in the run, PID 2 of
    a new PID namespace; the keeper and the init exec KEEPER. `gateway`: the PID of the process that started it;
    `ids`: the run's (uid, gid), which the keeper and the init become too where the gateway is root (as bubblewrap's
    processes are the sandbox's user: no task of a run is root, with any capability)."""
    libc.check(libc.unshare(CLONE_NEWPID), "a PID namespace")
    read, write = os.pipe()
    # (Python 3.12+ warns of fork in a process with threads, counting the gateway's from its copied state: on the
    # run's stderr. This process has one thread, and the forks exec at once or return to system calls.)
    warnings.simplefilter("ignore", DeprecationWarning)
    init = os.fork()
    if init != 0:
        os.close(write)
        _become(libc, python, "outside", read, init, ids, lambda: os.getppid() == gateway)
    os.close(read)
    poll = select.poll()
    poll.register(write, select.POLLOUT)
    run = os.fork()
    if run != 0:  # PID 1: dies with the keeper (gone already, its end of the pipe is closed: POLLERR on this one)
        _become(libc, python, "init", write, run, ids, lambda: not any(ev & select.POLLERR for _, ev in poll.poll(0)))
    os.close(write)  # the run: nothing of the keepers' (the rest of its descriptors close at exec)


def inside() -> bool:
    """Whether this process is a run `enter` made (its parent, the init, dies only with the namespace, the run too)."""
    return os.getpid() == RUN and os.getppid() == INIT


def _become(libc: Any, python: bytes, role: str, fd: int, child: int, ids: tuple[int, int] | None,
            parent_alive: Callable[[], bool]) -> None:
    """Exec KEEPER with only `fd` (and no standard streams: the run's output pipes close when the run's do), as the
    run's user, dying with its parent (set after the switch of user, which clears it; `parent_alive`: not gone first)."""
    try:
        if ids is not None:  # (from root: the capabilities go with the uid)
            os.setgroups([])
            os.setresgid(ids[1], ids[1], ids[1])
            os.setresuid(ids[0], ids[0], ids[0])
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0 or not parent_alive():
            os._exit(1)
        os.closerange(3, fd)  # (whatever the gateway held without close-on-exec)
        os.closerange(fd + 1, max(fd + 1, os.sysconf("SC_OPEN_MAX")))
        os.set_inheritable(fd, True)
        null = os.open(os.devnull, os.O_RDWR)
        for std in (0, 1, 2):
            os.dup2(null, std)
        # (an empty environment, as the run's: the gateway's holds the provider keys, which a keeper exec'd with it
        # showed in its /proc/<pid>/environ to every process of its user; exec makes a process dumpable again)
        os.execve(python, [python, b"-I", b"-S", b"-c", KEEPER.encode(), role.encode(), b"%d" % fd, b"%d" % child],
                  {})
    finally:
        os._exit(127)


MOUNTINFO = "/proc/self/mountinfo"
# What no filter hides where a run has no PID namespace (session 38): its own PID and its threads' ids are the host's. The
# C library keeps them in the run's memory (set_tid_address answers the PID at start, clone each thread's id), so a
# filter that lied in getpid/gettid would hide nothing. With threads, a run reads the host's PID counter through them:
# the rate at which the host starts tasks, and a channel from another run with threads (30 of 32 bits at 4 bits/s,
# bench/sandbox_round19.py --only tids). Doctor says so (commands.doctor).
HOST_IDS = "; its PID and its threads' ids are the host's (with threads: a channel between runs through the PID counter)"


def proc_hides_processes(mountinfo: str = MOUNTINFO) -> bool:
    """Whether the host's /proc hides other users' processes (`hidepid=invisible`, or 2/`noaccess`: the same for a
    process's folder, which still shows under 1). Where a weak run has no PID namespace (Landlock alone) Landlock
    refuses to open /proc but not to `stat` it: a run told every living PID of the host and its owner from /proc/<pid>
    (243 here, session 37); with `hidepid=invisible` it saw only its own (bench/sandbox_attack_round18.py --only
    hostpids, in a mount namespace with such a /proc). Mounting /proc is the operator's (or the container runtime's)."""
    try:
        with open(mountinfo) as fh:
            lines = fh.read().splitlines()
    except OSError:
        return False
    for line in reversed(lines):  # (the last mount on /proc is the one in sight)
        before, _, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if len(fields) > 4 and fields[4] == "/proc" and tail[:1] == ["proc"]:
            options = tail[2].split(",") if len(tail) > 2 else []
            return any(o in ("hidepid=2", "hidepid=invisible", "hidepid=noaccess") for o in options)
    return False
