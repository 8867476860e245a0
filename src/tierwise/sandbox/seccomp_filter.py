"""The sandbox's seccomp filter, built with libseccomp (PyPI `pyseccomp`) and handed to bubblewrap
as BPF (`bwrap --seccomp FD`), which loads it, with no_new_privs, just before the exec of the
sandboxed program. The weak sandbox (no bubblewrap) loads the same filter itself between fork
and exec (tierwise.sandbox.weak).

A deny list over the default of "allow": the interpreter and its standard library keep working,
and what only serves escaping or attacking the kernel fails with EPERM: changing roots or mounts,
making or entering namespaces, tracing, keyrings, BPF, perf, userfaultfd, io_uring, kernel
modules, kexec, reading other processes' memory, personality changes, memory kept outside the
process's address space (SysV shared memory and message queues, POSIX queues, memfds, pages
pinned in pipes by vmsplice, page-cache folios held in pipes by splice, tee and sendfile), every
`socket()` (the only sockets left are AF_UNIX stream `socketpair`s, connected, bound to no name: they reach
nothing outside) and
growing a socket's or a pipe's kernel buffer past the system default, being told of other processes' reads and
opens (inotify, fanotify, dnotify, leases), notification pipes, the machine's counters (sysinfo, statfs: ENOSYS),
record locks the kernel would keep (F_SETLK succeeds with none taken), device nodes and FIFOs
(mknod), calls aimed at another process's PID (prlimit, setpriority, kill, pidfds...) or at a
user's or process group's processes (setpriority, ioprio_set), and
every new process and, by default, every new thread: a run is one task, so its rlimits (memory,
CPU, files) bound the whole run and it takes one PID of the host. Threads are refused because
nothing else bounds them: RLIMIT_NPROC does not hold for a sandbox that is root outside, and a
raw `clone` sharing one small stack costs no address space (one run at the default limits made
1,500 and could have gone on; `kernel.pid_max` is often 32,768, and each thread takes a host PID and
~16 KB of kernel stack RLIMIT_AS does not count). `threads=True` lets `clone` with
CLONE_THREAD through for a caller that needs threads and accepts that. `clone3` answers ENOSYS
(its flags live in memory a filter cannot read), so the C library falls back to `clone`, whose
flags it can. Other architectures' system calls (32-bit x86 on x86-64) kill the process
(libseccomp's default for a foreign architecture).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import tempfile
from typing import Any

MEMORY_OUTSIDE_THE_ADDRESS_SPACE = (
    "shmget", "shmat", "shmctl", "shmdt", "msgget", "msgsnd", "msgrcv", "msgctl", "semget", "semop",
    "semtimedop", "semctl", "ipc", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify",
    "mq_getsetattr", "memfd_create", "memfd_secret",
    # vmsplice: a pipe buffer keeps a reference to the user page it was given, and to the whole
    # 2 MB huge page around it; unmapped, the page leaves RLIMIT_AS but stays (960 MB held under a
    # 256 MB limit through 30 pipes). The standard library never calls it (os.splice is splice).
    "vmsplice",
    # ... and the page cache's folios, by splice, tee and sendfile into a pipe (session 31): each slot keeps a
    # reference to a folio of a shared file (the system's libraries: up to 2 MB each where the host's filesystem makes
    # large folios), kept from reclaim while the pipe lasts and charged to no limit of the run: 416 slots through 26
    # pipes in every mode (session 30). The standard library never calls splice or tee; shutil copies with sendfile and
    # falls back to read/write when its first sendfile fails (as on a kernel without it), so copies still work.
    "splice", "tee", "sendfile", "sendfile64",
)
# Refused outright with EPERM. Names libseccomp does not know on this architecture are skipped.
DENIED = (
    "chroot", "pivot_root", "mount", "umount", "umount2", "mount_setattr", "move_mount", "open_tree",
    "fsopen", "fsconfig", "fsmount", "fspick", "unshare", "setns", "ptrace", "process_vm_readv",
    "process_vm_writev", "kcmp", "pidfd_getfd", "keyctl", "add_key", "request_key", "bpf",
    "perf_event_open", "userfaultfd", "personality", "kexec_load", "kexec_file_load", "init_module",
    "finit_module", "delete_module", "io_uring_setup", "io_uring_enter", "io_uring_register",
    "open_by_handle_at", "name_to_handle_at", "swapon", "swapoff", "reboot", "syslog", "acct",
    "quotactl", "quotactl_fd", "lookup_dcookie", "iopl", "ioperm", "settimeofday", "clock_settime",
    "adjtimex", "clock_adjtime", "vhangup", "uselib", "nfsservctl", "socket",
    # A socket pair bound to a name (session 28): in the weak sandbox, the host's network namespace, a run held an
    # abstract name of the host while it lasted (a host service binding it then got EADDRINUSE). Nothing of a run
    # needs a name: its pairs are connected. (Where Landlock alone bounds the run, unix sockets of the host were
    # reached by datagram pairs: SOCK_TYPES below.)
    "bind",
    # Classic BPF the kernel JIT-compiles from a run (session 29): its own seccomp filters (seccomp(), and prctl
    # PR_SET_SECCOMP below; 3,504 stacked in one run) and socket filters (setsockopt SO_ATTACH_*, below) put programs
    # of the run's choosing through the BPF JIT (`net.core.bpf_jit_enable` 1 here) while bpf() is refused and the host
    # disables unprivileged bpf(): kernel code behind privilege escalations (CVE-2021-29154: the x86 JIT's branches,
    # reached by unprivileged cBPF). Python never loads either; the run's own filter is loaded before exec.
    "seccomp",
    # Its I/O priority (review34a): `ioprio_set` of itself to best-effort level 0 was accepted (real-time needs
    # CAP_SYS_ADMIN): a run's I/O priority follows its nice (best-effort (nice + 20) / 5), which the runner lowers where
    # no shared cpu cgroup holds the runs, and a run raised it above the gateway's (level 4 at nice 0), which weighs with
    # BFQ. Aimed at another process or a group it was refused already (session 22); Python never calls it.
    "ioprio_set",
    # A session of its own (session 34): where no shared cpu cgroup holds the runs, the kernel's autogroup weighs each
    # session as one, and the runner starts the run's (bubblewrap's, since it no longer passes --new-session) at a lower
    # nice (tierwise.sandbox.cgroup, `runs_nice`); `setsid` in the run made a fresh autogroup at nice 0, as much as the
    # gateway's. A session leader (a weak run) already gets EPERM; nothing of a run needs a session.
    "setsid",
    # ... and `connect` (session 29): a pair is connected already, so connect() can only fail, but the kernel looks the
    # address up first and answers before any LSM hook (Landlock's abstract-socket scope included): a weak run (the
    # host's network namespace) told an abstract name of the host that exists and listens (EISCONN) from one that does
    # not (ECONNREFUSED), and a path's socket from none. Nothing of a run needs it.
    "connect",
    # Descriptors passed over its own pair (SCM_RIGHTS, review29a): descriptors in flight, and sockets in flight that
    # hold each other, are the unix garbage collector's, kernel code behind privilege escalations exploited in the wild
    # (CVE-2021-0920; CVE-2023-4622, CVE-2024-26923), and their count is the host user's (every run of the sandbox's
    # uid shares it). The control data is in memory a filter cannot read: `sendmsg` and `sendmmsg` are refused whole
    # (`send`, `sendto` carry none and stay; asyncio's self-pipe uses `send`). Python calls them only for
    # socket.sendmsg/send_fds (and multiprocessing, whose processes are refused anyway).
    "sendmsg", "sendmmsg",
    # The local descriptor table (16- and 32-bit segments): kernel code a 64-bit Python never needs, behind several
    # privilege escalations (CVE-2015-5157, CVE-2017-17053); refused by Docker's default profile too. It answered
    # in every mode (session 28).
    "modify_ldt",
    # inotify instances and watches are counted per user up through the user namespaces: the
    # sandbox's are charged to the gateway's user on the host (128 instances by default): two runs
    # holding 61 each left that user's other programs 6 while they lasted. Unused by Python.
    "inotify_init", "inotify_init1", "inotify_add_watch",
    # fanotify groups the same (fs.fanotify.max_user_groups, 128 a user; an unprivileged group with
    # FAN_REPORT_FID needs no capability): one run held 61 (its open_files), two runs 122 of the
    # user's 128. Its marks count against one more per-user limit. Unused by Python.
    "fanotify_init", "fanotify_mark",
    # Extended attributes: tmpfs (the run's /work) keeps user.* values in kernel memory that
    # neither RLIMIT_AS nor the tmpfs `--size` counts: 64 KB a value, as many names per file as
    # asked: one run held 3 GB of unreclaimable slab in 10 s. (setxattrat is refused below, by
    # number: this libseccomp may not know its name.) Python itself never sets one.
    "setxattr", "lsetxattr", "fsetxattr", "setxattrat",
    # Linux AIO contexts count against one limit for the whole machine (fs.aio-max-nr, 65,536
    # events): one run took all of it, and while it ran no program of the host could start
    # asynchronous I/O (io_setup: EAGAIN). Python never uses it (io_uring is refused above).
    "io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents", "io_pgetevents",
    # Which pages of a file are in the page cache, asked outright: what another run or the gateway read lately of a
    # file both may open (the shared libraries, the interpreter). cachestat (Linux 6.5; ENOSYS where this libseccomp
    # does not know it: SYSCALL_NUMBERS) and mincore answer it page by page; preadv2 with RWF_NOWAIT (refused
    # below) fails on a page not cached. Python never calls them. Timing a read stays (caches and load are shared).
    "cachestat", "mincore",
    # Writing back the dirty pages of every filesystem (sync) or of one (syncfs on any descriptor: the interpreter's,
    # bound from the host's disk) stalls the whole machine's I/O behind the other programs' dirty data, again and again
    # in a loop: one sync of a run wrote back the 1 GB the host had dirtied (Dirty 1,085,444 -> 452 kB) in 0.8 s
    # (session 27). Its own folder is a tmpfs, where fsync of its own files (which stays) is all it needs. Python
    # calls them only for os.sync.
    "sync", "syncfs",
    # Memory that RLIMIT_AS does not count: SysV shared memory lives in the IPC namespace, not in
    # the process (filled, detached, refilled: as much as the machine has); message queues hold up
    # to msgmni x msgmnb; a memfd holds RLIMIT_FSIZE per descriptor while unmapped. The
    # interpreter and the standard library need none of them (no /dev/shm either).
    *MEMORY_OUTSIDE_THE_ADDRESS_SPACE,
)
# The machine's counters (session 33): `sysinfo` told every run the host's free memory, load average and task count
# (the PID namespace hides the tasks, not their number) in every mode, and `statfs`/`fstatfs` (and `ustat`) the free
# blocks and inodes of every filesystem it may open: the host's disk (its system's libraries are bound from it) to the
# megabyte, a 200 MB file another program wrote seen as a 200-204 MB drop; where Landlock alone bounds a weak run its
# folder is on the shared-memory tmpfs of every run, so the free space there was a channel between runs and a count
# of the others' files. /proc and /sys are in no run's sight already. ENOSYS, what a kernel without the call answers:
# `os.statvfs` and `shutil.disk_usage` raise; the C library's `qsort` (Python sorts its tables with it at start-up)
# asks for the memory size through sysinfo and, refused, reads its unfilled answer: the sort is the same, and
# `os.sysconf('SC_PHYS_PAGES')`/`'SC_AVPHYS_PAGES'` say nothing true (session 27's reason to leave it; docs/security/
# sandbox.md). Python calls none of them otherwise.
HOST_COUNTERS = ("sysinfo", "statfs", "fstatfs", "ustat")
# Device nodes and FIFOs (mknod, and os.mkfifo, which is mknodat): in bubblewrap the root is
# read-only and uid 65534 has no CAP_MKNOD; in the weak sandbox (the gateway's user, often root,
# and no audit event for either call) they made FIFOs anywhere the gateway's user may write, and
# the block device of the host's disk inside the run's folder. Python needs neither.
NODES = ("mknod", "mknodat")
# Calls aimed at another process by its PID. bubblewrap's PID namespace shows the run only itself
# and its init; the weak sandbox shares the gateway's user and PID space, and through them set the
# gateway's own RLIMIT_NOFILE to 5 (it could open no file), its nice value to 19 and its CPUs to
# one. Aimed at itself (PID 0) they stay; pidfds and queued signals to others are refused.
AIMED_AT_A_PID = (("prlimit64", 0), ("setpriority", 1), ("sched_setaffinity", 0),
                  ("sched_setscheduler", 0), ("sched_setparam", 0), ("sched_setattr", 0), ("migrate_pages", 0),
                  ("move_pages", 0), ("setpgid", 0))
# (setpgid, review38a: under Landlock alone `setpgid(tid, 0)` answered EINVAL for a thread of any host process and ESRCH
# for a free id or a process: the gateway's threads found and watched come and go. `os.setpgid(0, pgid)` stays.)
# ... and read about one (session 27): /proc hidden, the weak sandbox's run still told every task of the host from a
# free PID (ESRCH or not; 277 of 277 here, the gateway among them) and read its group, session, scheduling, CPUs and
# priorities through them. Aimed at itself (0) they stay (getpgrp, os.sched_getaffinity(0)).
READ_BY_PID = (("getpgid", 0), ("getsid", 0), ("sched_getscheduler", 0), ("sched_getparam", 0),
               ("sched_getaffinity", 0), ("sched_getattr", 0), ("sched_rr_get_interval", 0), ("get_robust_list", 0),
               ("getpriority", 1), ("ioprio_get", 1))
# capget names its process in memory the filter cannot read (a header's pid): it answered for any PID. Refused
# whole; Python never calls it.
# Clocks: a CPU-time clock id names any process by its PID (((~pid) << 3) | 2): clock_gettime on the gateway's read
# its CPU time to the nanosecond, live (a count of the work it does for others), and pid 1's. Refused for every id
# past the fixed ones (CLOCK_TAI, 11): the run's own CPU clocks (CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID,
# time.process_time, time.thread_time) stay; `time.pthread_getcpuclockid`'s ids do not.
LAST_FIXED_CLOCK = 11
BY_CLOCK = ("clock_gettime", "clock_getres", "clock_nanosleep", "timer_create")
# setpriority and ioprio_set also aim at whole groups: PRIO_USER / IOPRIO_WHO_USER with `who` 0 is
# every process of the caller's user (the gateway's own, when it is that user), PRIO_PGRP 0 its
# process group. Only a process (PRIO_PROCESS 0, IOPRIO_WHO_PROCESS 1) may be aimed at; the same for
# reading them (getpriority, ioprio_get: a user's highest priority, whether a uid has a process).
AIMED_AT_A_GROUP = (("setpriority", 0), ("getpriority", 0), ("ioprio_get", 1))
# Signals that reach another process without naming it to kill(): an owner set on a descriptor
# (F_SETOWN, F_SETOWN_EX, FIOSETOWN/SIOCSPGRP on a socket), with F_SETSIG choosing the signal, gets
# SIGIO or that signal, SIGKILL included, whenever the descriptor is ready. The kernel checks only
# that the owner's user may signal it: the weak sandbox killed a process of its own user (another
# run's; a gateway that is not root) with a pipe, hook on or off. Python never sets an owner.
F_SETOWN, F_SETSIG, F_SETOWN_EX = 8, 10, 15
FIOSETOWN, SIOCSPGRP = 0x8901, 0x8902
# tgkill(tgid, tid, sig) is how the C library raises a signal in its own thread (abort(), raise(),
# pthread_kill): it stays for the run's own thread group only. In bubblewrap the PID namespace shows
# nothing else; the weak sandbox's filter compares the tgid with the run's own PID, written into the
# compiled filter in place of OWN_PID between fork and exec (`for_pid`).
OWN_PID = 0x7E57_AB1E  # never a PID (pid_max is at most 2**22)
# kill() reaches only the run itself, by its own PID (session 37). kill(0, sig) is its process group, which holds
# processes of ours outside the run: bubblewrap's (outside its PID namespace) and the weak run's keeper; below
# Landlock ABI 6 (no signal scope) and in bubblewrap whatever the ABI, `kill(0, SIGUSR1)` with a handler of the run's
# own killed them (and the run with them: "killed by SIGUSR1"). kill(getpid(), sig), which programs use to signal
# themselves, was refused as "another PID". In bubblewrap the run is PID 2 of its namespace (RUN_PID_IN_BWRAP, its
# init PID 1); the weak filter gets the run's PID between fork and exec (`own_pid_offsets`).
RUN_PID_IN_BWRAP = 2
OTHER_PROCESSES = ("pidfd_open", "pidfd_send_signal", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "tkill",
                   "process_madvise", "process_mrelease")
FORKS = ("fork", "vfork")
# System calls newer than the libseccomp that builds the filter have no name it knows, so a deny
# list cannot name them: every number above the last one it knows answers ENOSYS (the C library
# falls back as on an older kernel). Without this, setxattrat (463 on x86-64, Linux 6.13) set the
# extended attributes that setxattr may not.
SYSCALL_NUMBERS = 1024
# ... and every number past the last this filter was reviewed against (futex_requeue, Linux 6.7), whatever libseccomp
# knows (session 38, review38a): a libseccomp that names newer calls (2.6 names Linux 6.13's) added no rule for them,
# and a run listed the mount table (listmount: the host's where Landlock alone bounds it, 26 mounts here), read and
# removed extended attributes by path (getxattrat, removexattrat), set inode flags (file_setattr), listed the host's
# security modules and read and set its own attributes with them (lsm_list_modules, lsm_get_self_attr,
# lsm_set_self_attr) and sealed its mappings (mseal). ENOSYS, what a kernel without them answers; the C library and
# Python call none of them. A newer call is let through by a rule of its own once reviewed. (The numbers are the same on
# every architecture for calls this new, the table unified at 424.)
LAST_REVIEWED = 456
# clone flags that make namespaces (NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET, NEWTIME):
# refused even for a thread (no capabilities would let them work; defence in depth).
NAMESPACE_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000, 0x80)
CLONE_THREAD = 0x00010000
AF_UNIX = 1
# Socket pairs of SOCK_STREAM only (session 28): a datagram pair sends to any address it is given (`sendto`,
# `sendmsg`: the address is in memory the filter cannot read), and where Landlock alone bounds a weak run (no mount
# namespace) that reached every unix socket of the host by its path: lines forged into syslog's /dev/log or the
# journal's socket, as the run's user. A connected stream socket takes no address (EISCONN). The kernel reads the
# type from the argument's low 4 bits (the rest are SOCK_NONBLOCK/SOCK_CLOEXEC), and AF_UNIX takes SOCK_RAW as
# SOCK_DGRAM: every type but SOCK_STREAM (1) is refused. asyncio's self-pipe is a stream pair.
SOCK_TYPE_MASK, SOCK_STREAM = 0xF, 1
TIOCSTI, TIOCLINUX = 0x5412, 0x541C  # typing into a terminal: none is reachable, refused anyway
# The socket ioctls (linux/sockios.h, 0x89xx, and the wireless extensions', 0x8Bxx; session 29): on any socket, a
# socket pair included, the kernel answers the network device requests of the run's network namespace, which for a
# weak run is the host's: SIOCGIFCONF listed the host's interfaces and IPv4 addresses (`eth0 192.0.2.2`),
# SIOCGIFHWADDR read their MAC addresses, SIOCGIFNAME/SIOCGIFINDEX enumerated them, SIOCGIFFLAGS/SIOCGIFMTU their
# state. Refused by their command's top 24 bits (the low 32 bits the kernel reads); FIOSETOWN and SIOCSPGRP (below)
# are two of them. Python's own calls on pipes and socket pairs (FIONBIO, FIOCLEX, FIONREAD, TCGETS) are 0x54xx.
SOCKET_IOCTL_BLOCKS, IOCTL_BLOCK_MASK = (0x8900, 0x8B00), 0xFFFFFF00
# Kernel buffers RLIMIT_AS does not count, grown on request: a socket's send/receive buffer (up to
# net.core.wmem_max each: 30 socket pairs filled both ways held 493 MB with a 512 MB limit) and a
# pipe's (up to fs.pipe-max-size). Refused, so each stays at the system default (wmem_default,
# 64 KB a pipe) and open_files bounds their sum.
SOL_SOCKET, SO_SNDBUF, SO_RCVBUF, SO_SNDBUFFORCE, SO_RCVBUFFORCE = 1, 7, 8, 32, 33
# A name without `bind` (review28a): with SO_PASSCRED or SO_PASSPIDFD set, `connect` binds a socket of a pair to an
# abstract name the kernel picks (autobind) before it finds the pair connected, and a weak run shares the host's
# network namespace: each descriptor held a name of the host's while the run lasted. Refused; no run receives
# credentials.
SO_PASSCRED, SO_PASSPIDFD = 16, 76
# Socket filters (session 29: classic BPF through the kernel's JIT, see "seccomp" in DENIED).
SO_ATTACH_FILTER, SO_ATTACH_BPF, SO_ATTACH_REUSEPORT_CBPF, SO_ATTACH_REUSEPORT_EBPF = 26, 50, 51, 52
PR_SET_SECCOMP = 22
F_SETPIPE_SZ = 1031
# Being told of other processes' reads and opens (session 32): directory notification (dnotify, `F_NOTIFY` on a folder
# it may open: DN_ACCESS signals each read of a file there) and a lease (`F_SETLEASE` on a file it owns: broken, and
# signalled, when another process opens it) were granted in every mode, inotify and fanotify being refused. A run
# watching the standard library's `email` folders was told of each file another run read as it imported the package
# (15-28 reads): which modules another client's check used and when, and a channel between two runs. Python never
# asks for either (F_GETLEASE, locks and the other commands stay).
F_SETLEASE, F_NOTIFY = 1024, 1026
# Record locks (session 33): the kernel keeps each POSIX byte-range lock in slab memory charged to no memory cgroup
# (`file_lock_cache`, 192 bytes; Linux reverted that accounting in 6.3) and RLIMIT_LOCKS has been ignored since 2.4: a
# run held 224,000 locks on 56 files of its folder, 43 MB, within `cpu_s` 5 (only its CPU bounded the count, as the
# square root of cpu_s x files), and a read lock on a file it may only read (the standard library's, a bound folder's)
# made a host process that locks it wait while the run lasted, and told a cooperating run it was there. A run is one
# process, and a process's POSIX locks never conflict with its own (nor its threads'): locks on its own files mean
# nothing to it, and only others could see them. So `F_SETLK`/`F_SETLKW` succeed without a lock being taken
# (RET_ERRNO 0: the kernel returns 0 and runs nothing), sqlite3 on a file works as before; the open-file-description
# locks, which do conflict within a process, are refused with EINVAL (a kernel before 3.15), as nothing of Python's
# asks for them. `flock` stays: one lock per open file description at most, so `open_files` bounds it.
F_SETLK, F_SETLKW, F_OFD_SETLK, F_OFD_SETLKW = 6, 7, 37, 38
# ... and `flock` the same (review33a): one lock per open file description, so few, but taken on any file the run may
# open, read-only ones included: a run holding LOCK_EX on the standard library's `os.py` made a host process's lock of
# it wait while the run lasted, and two runs passed bits through it (8 of 8, a bit a second, in every mode: one locks or
# unlocks, the other asks with LOCK_NB). A one-task run has nothing of its own to exclude, so `flock` succeeds with no
# lock taken. With `threads=True` too since session 34: kept there for threads excluding each other through two
# descriptors of one file, it kept the channel (8 of 8 bits between two runs, Landlock alone; any file both may read)
# and the host's wait. A run's threads exclude each other with the process's own locks (threading, SQLite's), as its
# POSIX record locks never did between threads; a program that relies on `flock` between its threads is not served.
# Session 35: served 0 with threads, two of its threads each "held" LOCK_EX on one file at once (790-799 of 800) and
# such a program raced in silence; with threads `flock` answers ENOSYS now (a filesystem without it: `filelock` 3.30+
# falls back to its O_EXCL SoftFileLock), never a lock that does not exclude. A one-task run has no thread to race: 0.
# Queued signals (review33a): RLIMIT_SIGPENDING (64, tierwise.sandbox.backend) is counted per user, and every run of
# the sandbox's user is one user (bubblewrap's too: the count goes up through the user namespaces): one run's 64 POSIX
# timers (each keeps a queued signal) or 64 real-time signals it sent itself, blocked, left every other run none
# (`timer_create` EAGAIN, 0 of 64), and the number another run could still make told how many the first held: a
# channel between runs. Python never makes a POSIX timer (signal.setitimer is another call) nor sends a real-time
# signal; the C library's own two (32, 33) serve thread cancellation and setuid among threads. Refused: `timer_create`
# whole, and `kill`/`tgkill` of a signal 32-64 (the kernel reads it as 32 bits: 32-63 by a mask, and 64).
RT_SIGNALS = ((0xFFFFFFE0, 32), (0xFFFFFFFF, 64))  # (mask, value) of the low 32 bits
# ... and notification pipes (review32b): `pipe2(O_NOTIFICATION_PIPE)` makes a pipe the kernel's watch queue writes
# into (key and device events, set with `ioctl` IOC_WATCH_QUEUE_SET_SIZE/_FILTER), kernel code behind a privilege
# escalation reachable by any user (CVE-2022-0995, the filter's out-of-bounds write) that serves no run: the keys it
# watches are refused (keyctl) and Python never asks for one. Granted where the kernel has CONFIG_WATCH_QUEUE (Debian,
# Ubuntu, Fedora); the flag is O_EXCL's bit, which pipe2 takes for nothing else.
O_NOTIFICATION_PIPE = 0x80
# Core dumps: for a `core_pattern` that pipes to a program (systemd-coredump, apport) the kernel ignores
# RLIMIT_CORE, except the value 1, with which it aborts the dump ("RLIMIT_CORE is set to 1"). Each run
# starts with (1, 1) (tierwise.sandbox.backend) and may not lower it: at 0 a crash of the run handed up to
# its memory limit to the host's crash helper, which runs as root outside every namespace.
RLIMIT_CORE = 4
RWF_NOWAIT = 0x08
# A file's metadata changed by its path: Landlock (tierwise.sandbox.landlock) bounds what a weak run opens, not
# chmod, chown or times, so a weak run of a gateway that is not root with no mount namespace (the host writable as
# its user) made its user's 0600 SSH key 0644 and its home 0777 (session 25). Refused there, by descriptor too
# (DESCRIPTOR_METADATA). Elsewhere the host is read-only;
# a run switched to a user of its own keeps them (sandbox.runner: it owns only its folder; shutil.copy needs them).
PATH_METADATA = ("chmod", "fchmodat", "fchmodat2", "chown", "lchown", "fchownat", "utime", "utimes", "futimesat",
                 "removexattr", "lremovexattr")
# ... and by a descriptor (review25a): Landlock lets the run open for reading the interpreter's installation and the
# folders bound in, which are often its user's (pyenv or uv in the home; an ensemble's scripts): `fchmod` on such a
# read-only descriptor made the operator's check script and its folder 0777 (any local user could then rewrite what
# the next runs execute). Refused with PATH_METADATA; a run there cannot change a mode or time at all.
DESCRIPTOR_METADATA = ("fchmod", "fchown", "fremovexattr")
# Times (session 35): a bubblewrap run's /dev binds the host's null, zero, full, random and urandom (sandbox.bwrap.DEVICES)
# on writable mounts (a read-only bind is nodev there), so `utimensat(NULL)` on /dev/null, which needs only write
# permission, set the host inode's times: every other run and the host saw them (a bit per change between two runs).
# In bubblewrap runs these calls do nothing and return 0: the run's own files are on its tmpfs, the rest read-only,
# and refusing them (EPERM) failed shutil.copy2 and copytree (copystat) and `touch` (bench/RESULTS.md, session 35).
TIMES = ("utime", "utimes", "futimesat", "utimensat")
TIMES_ERRNO = 0  # (bench/sandbox_dev35.py measures EPERM here)
# ... and where the run is root outside (a root gateway that cannot switch it to `run_as`, allow_root_outside), it owns
# those nodes: it made the host's /dev/null 0600. These do nothing there too (shutil.copy's copymode needs them).
OWNER_METADATA = ("chmod", "fchmodat", "fchmodat2", "fchmod", "removexattr", "lremovexattr", "fremovexattr")
# Extended attributes read by a path (session 26): where the host is in sight (Landlock alone bounds opening, not
# looking), a run listed the names of a 0600 file's attributes of another user and read the values of its own user's
# files it could not open. Refused with ENOTSUP, what a filesystem without them answers: shutil.copy2/copystat then
# copies none (they read by path), as on such a filesystem. By descriptor (files it could open) they stay.
XATTR_READS_BY_PATH = ("getxattr", "lgetxattr", "listxattr", "llistxattr")
# Truncating a file by its path (session 35): Landlock handles `truncate` only from ABI 3 (Linux 6.2); with ABI 1 or 2
# (5.13-6.1) a run with the host in sight emptied any file its user may write, a host program's 0666 file or, as the
# gateway's own user, the gateway's ledger. Refused there (EACCES, what Landlock answers from ABI 3), its own files'
# too (a filter sees no path); opening with O_TRUNC is Landlock's write right on every ABI and stays. And O_TRUNC with
# no write mode (`open(path, O_RDONLY | O_TRUNC)`), which Linux honours wherever the user may write the file while
# Landlock below ABI 3 checks only the read right: a run emptied a 0666 file of a folder bound in read-only. Refused
# (EACCES) on `open`/`openat`; `openat2` carries its flags in memory a filter cannot read: ENOSYS (Python never calls it;
# review35a: with the host in sight on every ABI, below).
TRUNCATE_BY_PATH = ("truncate",)
O_ACCMODE, O_TRUNC = 0o3, 0o1000
# Access mode 3 (review35a): a descriptor that neither reads nor writes (for ioctls), for which Landlock checks no right
# on every ABI, while Linux asks the user's read and write permission and honours O_TRUNC: below ABI 3 `open(path,
# 3 | O_TRUNC)` emptied any file the run's user may write, bound in or not; on every ABI it opened files Landlock gives
# the run nothing of (F_GETLK told when the gateway held its ledger's lock, and its PID). Refused (EACCES) with the
# host in sight on `open`/`openat`, and `openat2` (flags in memory: ENOSYS, as below ABI 3); Python never opens so.
# Dropping a shared file's pages from the page cache (session 26): posix_fadvise(POSIX_FADV_DONTNEED) on any file it
# may read (the interpreter, the system's libraries) evicted them for the whole machine, the first half of a
# page-cache timing probe (evict, wait, time a read: a page read back from disk takes ~1,000x a cached one) whose
# asking half round 6 refused (mincore, cachestat, RWF_NOWAIT); madvise MADV_COLD/MADV_PAGEOUT the same for the pages
# of a file only it maps (a file of its own user: the kernel checks ownership). Python never asks for either.
POSIX_FADV_DONTNEED, MADV_COLD, MADV_PAGEOUT = 4, 20, 21
# Kernel same-page merging (session 27): pages marked mergeable (madvise MADV_MERGEABLE, or a whole process with
# prctl PR_SET_MEMORY_MERGE) are merged with identical pages of other processes, and a write to a merged page takes a
# copy-on-write fault ~10x slower than a plain write: timing it tells whether another process holds a page with the
# guessed content (the memory-deduplication side channel). Both were accepted; where the host runs KSM
# (/sys/kernel/mm/ksm/run 1) they would merge. Python never asks for either.
MADV_MERGEABLE, PR_SET_MEMORY_MERGE = 12, 67
# The parent-death signal (session 27): a weak run dies with its gateway process by PR_SET_PDEATHSIG (SIGKILL), set
# between fork and exec (tierwise.sandbox.weak.dying_with), and no PID namespace takes it otherwise. The run cleared
# it (prctl(PR_SET_PDEATHSIG, 0)) and outlived a gateway killed outright, reparented to PID 1, bounded by no wall
# clock. Setting it is refused (reading it stays); bubblewrap's runs die with its PID namespace's init anyway.
PR_SET_PDEATHSIG = 1
# Core scheduling (session 28): prctl(PR_SCHED_CORE) reads any process's cookie by PID (ESRCH tells a free PID) and
# pushes or pulls cookies to and from processes the run may trace; tasks of different cookies never share an SMT core.
# Refused whole whatever the kernel (this one has no CONFIG_SCHED_CORE: EINVAL before); Python never calls it.
PR_SCHED_CORE = 62
# Yama's PR_SET_PTRACER (review38a) looks its PID up in the run's namespace (the host's under Landlock alone): EINVAL
# for a free one, 0 for a living task, which may then trace the run. Refused whole (EINVAL here: no Yama on this
# machine); nothing of a run needs it.
PR_SET_PTRACER = 0x59616D61
# Process-shared futex waits (review37c): a futex word without FUTEX_PRIVATE_FLAG that lies on a page of a file is keyed
# by the file (its inode and offset), not by the process, and every run maps the same system libraries: two runs met at
# a word of libc's code, one blocked in FUTEX_WAIT on it, the other's FUTEX_WAKE woke it and was told it had (6 of 6
# bits in every mode, threads off, bench/review37c_futex_channel.py). A one-task run has no other task to be woken by
# (its named semaphores, multiprocessing.Lock's, are in its own /dev/shm), so such a wait answers ETIMEDOUT at once,
# which glibc and Python read as a wait that timed out: `acquire()` of a lock it holds already returns False instead of
# blocking until the wall clock. Its process-shared wakes wake nothing and answer 0 (no task of its own waits so; glibc's
# sem_post wakes only where one does), so it reaches no waiter of a run with threads either. Private futexes
# (threading's, the C library's) stay. `futex_wait`/`futex_wake` have their flags in an argument (FUTEX2_PRIVATE);
# `futex_waitv`/`futex_requeue` in memory a filter cannot read: ENOSYS (glibc and Python call none of the four).
# With `threads` (session 38) no task of the run sleeps on a process-shared word either, so no other run can wake it: two
# runs with threads passed 31 of 32 bits. In such a run only multiprocessing's primitives (named semaphores) wait so, and
# only when contended (CPython's threading, queue, concurrent.futures, asyncio.to_thread, sqlite3 and numpy made 0 such
# calls; bench/RESULTS.md, session 38): a wait with no timeout answers EAGAIN ("the word changed"), which glibc answers by
# looking again, so a contended `multiprocessing.Lock` spins on the run's CPU until its holder releases it and mutual
# exclusion holds; a wait with a timeout answers ETIMEDOUT at once (`acquire(timeout=t)` False early, as a one-task run's).
# Its wakes answer 0 as a one-task run's: there is no sleeper of its own to wake.
FUTEX_OP_MASK, FUTEX_PRIVATE_FLAG = 0xFF, 0x80  # (the command and the private flag; FUTEX_CLOCK_REALTIME either way)
FUTEX_SHARED_WAITS = (0, 9)  # FUTEX_WAIT, FUTEX_WAIT_BITSET
FUTEX_SHARED_WAKES = (1, 3, 4, 5, 10)  # FUTEX_WAKE, FUTEX_REQUEUE, FUTEX_CMP_REQUEUE, FUTEX_WAKE_OP, FUTEX_WAKE_BITSET
# Priority-inheritance futexes (review38a), private or not: the word holds the owner's thread id, which the kernel
# looks up in the caller's PID namespace, the host's under Landlock alone: FUTEX_TRYLOCK_PI on a word of the run's own
# memory told a living task (EAGAIN) from a free id (ESRCH) and a kernel thread (EPERM), with /proc hidden or not, and
# FUTEX_LOCK_PI slept until the named host task exited (the kernel hangs its state on that task). ENOSYS, what a kernel
# without CONFIG_FUTEX_PI answers; glibc uses them only for PTHREAD_PRIO_INHERIT mutexes, which Python never makes.
FUTEX_PI = (6, 7, 8, 11, 12, 13)  # LOCK_PI, UNLOCK_PI, TRYLOCK_PI, WAIT_REQUEUE_PI, CMP_REQUEUE_PI, LOCK_PI2
FUTEX_CMD_MASK = 0x7F  # (the command without the private flag)
FUTEX_TIMEOUT_AT = 3  # futex(uaddr, op, val, timeout, ...): NULL waits for ever
FUTEX2_TIMEOUT_AT = 4  # futex_wait(uaddr, val, mask, flags, timeout, clockid)


# seccomp compares an argument as the whole 64-bit register; the kernel reads an `int` or `unsigned int` argument
# from its low 32 bits. A rule "EQ x" on such an argument let every refused call through with a high bit set
# (prctl(1 << 32 | PR_SET_PDEATHSIG, 0) cleared the parent-death signal, fcntl(fd, 1 << 32 | F_SETPIPE_SZ) grew a
# pipe; review27a): a refusal of one value of a 32-bit argument compares its low 32 bits (`_low32`). ("NE x" rules
# need no mask: only the exact value passes them, and "GT 11" on a clock id none either.)
LOW_32 = 0xFFFFFFFF


def _low32(sc: Any, at: int, value: int) -> Any:
    """A rule's condition: argument `at`, read by the kernel as 32 bits, is `value`."""
    return sc.Arg(at, sc.MASKED_EQ, LOW_32, value)


def _rule(f: Any, action: int, name: str | int, *args: Any) -> None:
    try:
        f.add_rule(action, name, *args)
    except (OSError, ValueError, RuntimeError):
        pass  # not a system call on this architecture


@functools.cache
def filter_bpf(threads: bool = False, own_pid: bool = False, no_path_metadata: bool = False,
               host_in_sight: bool = False, no_truncate_by_path: bool = False, host_devices: bool = False,
               owns_host_devices: bool = False, hide_parent: bool = False) -> bytes:
    """The compiled filter (BPF); `threads`: thread clones are allowed; `own_pid`: kill and tgkill only to the
    thread group OWN_PID (to be replaced with the run's PID: `own_pid_offsets`, `for_pid`);
    `no_path_metadata`: PATH_METADATA refused (a weak run on a writable host); `host_in_sight`: XATTR_READS_BY_PATH,
    access mode 3 and `openat2` refused (a weak run with no mount namespace: Landlock alone); `no_truncate_by_path`:
    TRUNCATE_BY_PATH and O_TRUNC without a write mode refused (the same, on a kernel whose Landlock does not handle
    truncation); `host_devices`: TIMES do nothing (a bubblewrap run, the host's device nodes bound in); `owns_host_devices`:
    OWNER_METADATA too (such a run, root outside); `hide_parent`: `getppid` answers 0, as for a parent outside the
    caller's PID namespace (a weak run in the host's: it named the gateway's PID). Without `own_pid`, OWN_PID is
    RUN_PID_IN_BWRAP (kill() reaches the run's own PID only)."""
    import pyseccomp as sc  # here: a machine without libseccomp still loads the gateway (weak sandbox)

    eperm = sc.ERRNO(errno.EPERM)
    f = sc.SyscallFilter(sc.ALLOW)
    with contextlib.suppress(OSError, ValueError, RuntimeError):
        f.set_attr(sc.Attr.CTL_OPTIMIZE, 2)  # a binary tree: ~600 rules cost a few comparisons a call
    for name in DENIED:
        _rule(f, eperm, name)
    _rule(f, sc.ERRNO(errno.ENOSYS), "clone3")
    for name in HOST_COUNTERS:
        _rule(f, sc.ERRNO(errno.ENOSYS), name)
    # Socket pairs of any family but AF_UNIX are refused; AF_UNIX pairs (asyncio's self-pipe) stay.
    _rule(f, eperm, "socketpair", sc.Arg(0, sc.NE, AF_UNIX))
    for kind in range(SOCK_TYPE_MASK + 1):
        if kind != SOCK_STREAM:
            _rule(f, eperm, "socketpair", sc.Arg(1, sc.MASKED_EQ, SOCK_TYPE_MASK, kind))
    for request in (TIOCSTI, TIOCLINUX):
        _rule(f, eperm, "ioctl", _low32(sc, 1, request))
    for option in (SO_SNDBUF, SO_RCVBUF, SO_SNDBUFFORCE, SO_RCVBUFFORCE, SO_PASSCRED, SO_PASSPIDFD, SO_ATTACH_FILTER,
                   SO_ATTACH_BPF, SO_ATTACH_REUSEPORT_CBPF, SO_ATTACH_REUSEPORT_EBPF):
        _rule(f, eperm, "setsockopt", _low32(sc, 1, SOL_SOCKET), _low32(sc, 2, option))
    for command in (F_SETPIPE_SZ, F_SETOWN, F_SETSIG, F_SETOWN_EX, F_SETLEASE, F_NOTIFY):
        _rule(f, eperm, "fcntl", _low32(sc, 1, command))
    for command in (F_SETLK, F_SETLKW):
        _rule(f, sc.ERRNO(0), "fcntl", _low32(sc, 1, command))
    for command in (F_OFD_SETLK, F_OFD_SETLKW):
        _rule(f, sc.ERRNO(errno.EINVAL), "fcntl", _low32(sc, 1, command))
    _rule(f, sc.ERRNO(errno.ENOSYS if threads else 0), "flock")
    _rule(f, eperm, "timer_create")
    for name, at in (("kill", 1), ("tgkill", 2)):
        for mask, first in RT_SIGNALS:
            _rule(f, eperm, name, sc.Arg(at, sc.MASKED_EQ, mask, first))
    _rule(f, eperm, "pipe2", sc.Arg(1, sc.MASKED_EQ, O_NOTIFICATION_PIPE, O_NOTIFICATION_PIPE))
    for block in SOCKET_IOCTL_BLOCKS:  # (FIOSETOWN, SIOCSPGRP among them)
        _rule(f, eperm, "ioctl", sc.Arg(1, sc.MASKED_EQ, IOCTL_BLOCK_MASK, block))
    _rule(f, eperm, "tgkill", sc.Arg(0, sc.NE, OWN_PID))  # (in bubblewrap: its init's, PID 1, too)
    for name in ("preadv2", "pwritev2"):  # the flags, the sixth argument: RWF_NOWAIT tells a cached page
        _rule(f, eperm, name, sc.Arg(5, sc.MASKED_EQ, RWF_NOWAIT, RWF_NOWAIT))
    for name in ("fadvise64", "fadvise64_64"):  # (fd, offset, len, advice) where each is the native call
        _rule(f, eperm, name, _low32(sc, 3, POSIX_FADV_DONTNEED))
    for advice in (MADV_COLD, MADV_PAGEOUT, MADV_MERGEABLE):
        _rule(f, eperm, "madvise", _low32(sc, 2, advice))
    for option in (PR_SET_MEMORY_MERGE, PR_SET_PDEATHSIG, PR_SCHED_CORE, PR_SET_SECCOMP, PR_SET_PTRACER):
        _rule(f, eperm, "prctl", _low32(sc, 0, option))
    if host_in_sight:
        for name in XATTR_READS_BY_PATH:
            _rule(f, sc.ERRNO(errno.EOPNOTSUPP), name)
        for name, at in (("open", 1), ("openat", 2)):
            _rule(f, sc.ERRNO(errno.EACCES), name, sc.Arg(at, sc.MASKED_EQ, O_ACCMODE, O_ACCMODE))
        _rule(f, sc.ERRNO(errno.ENOSYS), "openat2")  # (its flags are in memory: access mode 3 went through it)
    if no_truncate_by_path:
        for name in TRUNCATE_BY_PATH:
            _rule(f, sc.ERRNO(errno.EACCES), name)
        for name, at in (("open", 1), ("openat", 2)):  # O_TRUNC with O_RDONLY (access mode 0)
            _rule(f, sc.ERRNO(errno.EACCES), name, sc.Arg(at, sc.MASKED_EQ, O_ACCMODE | O_TRUNC, O_TRUNC))
    if host_devices and not no_path_metadata:
        for name in (*TIMES, *(OWNER_METADATA if owns_host_devices else ())):
            _rule(f, sc.ERRNO(TIMES_ERRNO), name)
    if no_path_metadata:
        for name in (*PATH_METADATA, *DESCRIPTOR_METADATA, "utimensat"):  # (utimensat: a path, or NULL: futimens)
            _rule(f, eperm, name)
    for name in (*FORKS, *NODES, *OTHER_PROCESSES):
        _rule(f, eperm, name)
    _rule(f, eperm, "kill", sc.Arg(0, sc.NE, OWN_PID))
    for name, at in (*AIMED_AT_A_PID, *READ_BY_PID):
        _rule(f, eperm, name, sc.Arg(at, sc.NE, 0))
    _rule(f, eperm, "capget")
    for name in BY_CLOCK:
        _rule(f, eperm, name, sc.Arg(0, sc.GT, LAST_FIXED_CLOCK))
    _rule(f, eperm, "prlimit64", _low32(sc, 1, RLIMIT_CORE), sc.Arg(2, sc.NE, 0))  # a new limit (not a read)
    _rule(f, eperm, "setrlimit", _low32(sc, 0, RLIMIT_CORE))
    for name, process in AIMED_AT_A_GROUP:
        _rule(f, eperm, name, sc.Arg(0, sc.NE, process))
    for number in unknown_syscalls(sc):
        _rule(f, sc.ERRNO(errno.ENOSYS), number)
    _shared_futexes(f, sc, threads)
    if not threads:
        _rule(f, eperm, "clone")  # one task: no process, no thread
    else:
        # A clone that is not a thread of this process is a new process (or namespace): refused.
        _rule(f, eperm, "clone", sc.Arg(0, sc.MASKED_EQ, CLONE_THREAD, 0))
        for flag in NAMESPACE_FLAGS:
            _rule(f, eperm, "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    if hide_parent:
        _rule(f, sc.ERRNO(0), "getppid")
    with tempfile.TemporaryFile() as fh:
        f.export_bpf(fh)
        fh.seek(0)
        program = fh.read()
    return program if own_pid else for_pid(program, RUN_PID_IN_BWRAP)


def _shared_futexes(f: Any, sc: Any, threads: bool) -> None:
    """Process-shared futex waits sleep nowhere and wakes wake nothing (above, "Process-shared futex waits")."""
    timed_out, changed = sc.ERRNO(errno.ETIMEDOUT), sc.ERRNO(errno.EAGAIN if threads else errno.ETIMEDOUT)
    for command in FUTEX_SHARED_WAITS:
        op = sc.Arg(1, sc.MASKED_EQ, FUTEX_OP_MASK, command)
        _rule(f, changed, "futex", op, sc.Arg(FUTEX_TIMEOUT_AT, sc.EQ, 0))
        _rule(f, timed_out, "futex", op, sc.Arg(FUTEX_TIMEOUT_AT, sc.NE, 0))
    for command in FUTEX_SHARED_WAKES:
        _rule(f, sc.ERRNO(0), "futex", sc.Arg(1, sc.MASKED_EQ, FUTEX_OP_MASK, command))
    for command in FUTEX_PI:
        _rule(f, sc.ERRNO(errno.ENOSYS), "futex", sc.Arg(1, sc.MASKED_EQ, FUTEX_CMD_MASK, command))
    shared = sc.Arg(3, sc.MASKED_EQ, FUTEX_PRIVATE_FLAG, 0)
    _rule(f, changed, "futex_wait", shared, sc.Arg(FUTEX2_TIMEOUT_AT, sc.EQ, 0))
    _rule(f, timed_out, "futex_wait", shared, sc.Arg(FUTEX2_TIMEOUT_AT, sc.NE, 0))
    _rule(f, sc.ERRNO(0), "futex_wake", shared)
    for name in ("futex_waitv", "futex_requeue"):
        _rule(f, sc.ERRNO(errno.ENOSYS), name)


BPF_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K: a comparison with the instruction's constant


def own_pid_offsets(program: bytes) -> tuple[int, ...]:
    """Where OWN_PID stands in `program` (byte offsets of the 32-bit constants of its comparisons)."""
    found = tuple(i + 4 for i in range(0, len(program), 8)
                  if int.from_bytes(program[i:i + 2], "little") == BPF_JEQ_K
                  and int.from_bytes(program[i + 4:i + 8], "little") == OWN_PID)
    if not found:
        raise ValueError("the seccomp filter has no comparison with OWN_PID")
    return found


def for_pid(program: bytes, pid: int) -> bytes:
    """`program` with OWN_PID replaced by `pid`."""
    out = bytearray(program)
    for at in own_pid_offsets(program):
        out[at:at + 4] = pid.to_bytes(4, "little")
    return bytes(out)


def unknown_syscalls(sc: Any) -> range:
    """The numbers above the last system call libseccomp knows on this architecture, or above LAST_REVIEWED."""
    last = 0
    for number in range(SYSCALL_NUMBERS):
        with contextlib.suppress(ValueError, OSError):
            sc.resolve_syscall(sc.Arch.NATIVE, number)
            last = number
    return range(min(last, LAST_REVIEWED) + 1, SYSCALL_NUMBERS)


def bpf_fd(threads: bool = False, owns_host_devices: bool = False) -> int:
    """A fresh descriptor holding the filter, positioned at its start, for one bwrap to read (`owns_host_devices`: the
    run is root outside)."""
    fd = os.memfd_create("tierwise-seccomp", os.MFD_CLOEXEC)
    try:
        os.write(fd, filter_bpf(threads, host_devices=True, owns_host_devices=owns_host_devices))
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd
