"""What a sandbox run may use (`SandboxLimits`) and what came back (`SandboxResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    wall_s: float = 10.0
    cpu_s: int = 5
    # The run's memory in total: a run is one process (seccomp refuses forks; threads share it).
    memory_mb: int = 512
    file_size_mb: int = 16
    open_files: int = 64
    output_bytes: int = 256_000
    # Output read from each stream, and past `output_bytes` thrown away, before the run is killed
    # (a flood drained to the end of the wall clock cost the gateway 8.4 s of CPU in a 10 s run).
    drain_bytes: int = 16 * 1024 * 1024
    # Size of the run's private folder (a tmpfs that disappears with the sandbox).
    work_mb: int = 64
    # Let the code start threads. Off: a run is one task (seccomp refuses every clone), the only
    # way to bound its tasks, since nothing counts threads for a sandbox that is root outside.
    # On: each thread takes a host PID and kernel memory that no limit here bounds.
    threads: bool = False


@dataclass(slots=True)
class SandboxResult:
    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool = False
    # Signal name when the child was killed by a signal (SIGXCPU: CPU limit, SIGKILL: wall or hard limit).
    signal: str | None = None
    # More than `output_bytes` on stdout or stderr: the output was cut there (and past `drain_bytes` the run killed).
    output_truncated: bool = False
    # The isolation layers verified in force for this run (see tierwise.sandbox.probe).
    layers: list[str] = field(default_factory=list)
    # No sandbox slot was free within the wait: the code did not run.
    busy: bool = False
    # The kernel killed the run at its cgroup's memory limit (memory, folder and kernel memory in total).
    out_of_memory: bool = False
    # Who the code was outside its sandbox: "uid 65534" (a root gateway's `run_as`, or a uid of
    # `run_as_range`), "the gateway's own user (uid 1000)", or "ROOT (uid 0)" where that was allowed.
    runs_as: str = ""
    # The run could start threads (SandboxLimits.threads): `flock` answers ENOSYS in such a run (seccomp_filter).
    threads: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.busy

    def summary(self, limit: int = 600) -> str:
        """One short line for a verdict reason: why it failed, with the tail of stderr."""
        if self.busy:
            return "sandbox busy (every sandbox slot was taken; not run)"
        if self.timed_out:
            return "timed out (wall-clock limit)"
        if self.out_of_memory:
            return "killed: memory limit (the run's memory, folder and kernel memory in total)"
        if self.output_truncated and self.signal == "SIGKILL":
            return "killed: output limit (more than drain_bytes on stdout or stderr)"
        if self.signal == "SIGXCPU":
            return "killed: CPU time limit"
        if self.signal:
            return f"killed by {self.signal}"
        tail = self.stderr.strip().splitlines()[-3:]
        text = " | ".join(tail) if tail else f"exit status {self.returncode}"
        return with_flock_hint(text, self.stderr, self.threads, limit)


# What a threaded run's stderr shows when it called `flock`, which the sandbox answers ENOSYS with threads (session
# 35: a lock that excludes nothing was a channel between runs): Python's OSError, and filelock < 3.30's own refusal.
# An agent reading the traceback alone took it for a broken filesystem; the hint says what works instead.
_NO_FLOCK = ("[Errno 38] Function not implemented", "does not appear to support flock")
FLOCK_HINT = ("hint: with threads the sandbox answers flock with ENOSYS (Errno 38); lock between threads with "
              "threading.Lock, or use filelock's SoftFileLock (filelock 3.30+ falls back to it by itself)")


# What an ordinary program meets that the sandbox refuses by design (session 37, docs/security/sandbox.md "Ordinary
# programs"): a second process (multiprocessing.Pool, ProcessPoolExecutor, subprocess: EPERM at the fork, or EACCES
# at Pool's semaphore under Landlock alone), and the links into a /proc the run has not. The traceback alone reads
# as a broken machine; the hint says what works instead.
_PROCESS_CALLERS = ("multiprocessing", "subprocess.py", "concurrent/futures/process.py", "os.fork", "posix_spawn")
_REFUSED = ("[Errno 1] Operation not permitted", "[Errno 13] Permission denied")
PROCESS_HINT = ("hint: the sandbox runs one process (fork, subprocess and multiprocessing.Pool are refused); "
                "compute in this process, or with threads where allowed (ThreadPoolExecutor)")
# ... and under Landlock alone, where a run has no /dev/shm of its own, multiprocessing's named semaphores fail as they
# are made (EACCES in SemLock): Pool, but also ThreadPool, Lock and Queue, which a run with threads may use elsewhere
# (session 38: a threaded run's ThreadPool was told that fork and subprocess are refused, and to use threads).
_SEMLOCK = "_multiprocessing.SemLock("
SEMLOCK_HINT = ("hint: the sandbox runs one process and here has no /dev/shm: no multiprocessing Pool, ThreadPool, Lock "
                "or Queue; use threading.Lock, queue.Queue, or ThreadPoolExecutor where threads are allowed")
_PROC_LINKS = ("'/dev/stdout'", "'/dev/stdin'", "'/dev/stderr'", "'/dev/fd/")
PROC_LINK_HINT = "hint: the sandbox has no /proc, so no /dev/stdout, /dev/stdin or /dev/fd: use sys.stdout, sys.stdin"


def with_flock_hint(text: str, stderr: str, threads: bool, limit: int = 600) -> str:
    """`text` cut to `limit` characters, ending in a hint when `stderr` shows what the sandbox refuses by design:
    FLOCK_HINT (a threaded run's flock ENOSYS), SEMLOCK_HINT, PROCESS_HINT, PROC_LINK_HINT."""
    hint = None
    if threads and any(mark in stderr for mark in _NO_FLOCK):
        hint = FLOCK_HINT
    elif _SEMLOCK in stderr and _REFUSED[1] in stderr:
        hint = SEMLOCK_HINT
    elif any(mark in stderr for mark in _REFUSED) and any(mark in stderr for mark in _PROCESS_CALLERS):
        hint = PROCESS_HINT
    elif any(mark in stderr for mark in _PROC_LINKS):
        hint = PROC_LINK_HINT
    if hint is not None:
        return text[-max(0, limit - len(hint) - 3):] + " | " + hint
    return text[-limit:]
