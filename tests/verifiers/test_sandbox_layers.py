"""`layers` says only what holds; without bubblewrap a code verifier refuses to start unless the
weak sandbox is allowed (and then says it is weak); the weak sandbox's folder is always removed;
a full sandbox answers "busy" instead of piling up; the answer is compiled off the event loop."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest

from tests.verifiers.helpers import req, resp
from tests.verifiers.test_sandbox import need_layer
from tierwise import sandbox
from tierwise.errors import ConfigError
from tierwise.sandbox import (
    SandboxLimits,
    SandboxUnavailable,
    backend,
    cgroup,
    identity,
    landlock,
    run_python,
    seccomp_filter,
    weak,
)
from tierwise.sandbox import bwrap as bwrap_mod
from tierwise.sandbox.cleanup import remove_tree
from tierwise.verifiers import build_verifier
from tierwise.verifiers.base import VerifyContext

FAST = SandboxLimits(wall_s=20, cpu_s=5, memory_mb=256)
TESTS = "assert add(2, 3) == 5"
GOOD = "```python\ndef add(a, b):\n    return a + b\n```"


@pytest.fixture(autouse=True)
def fresh_probe() -> Iterator[None]:
    """Each test probes anew and leaves the defaults behind."""
    sandbox.status.cache_clear()
    yield
    sandbox.status.cache_clear()
    sandbox.configure()


def _allow_all_filter(threads: bool = False, **_: bool) -> bytes:
    import tempfile

    import pyseccomp

    with tempfile.TemporaryFile() as fh:
        pyseccomp.SyscallFilter(pyseccomp.ALLOW).export_bpf(fh)
        fh.seek(0)
        return fh.read()


def test_the_layers_claimed_are_the_layers_that_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    need_layer("seccomp", "bubblewrap with seccomp is not available here")
    full = set(sandbox.status().layers)
    assert {"mntns", "netns", "pidns", "fsroot", "userns", "no_caps", "no_new_privs", "seccomp", "one_process",
            "one_task", "memory_total"} <= full

    # A filter that lets threads through: no `one_task`, and not strong (threads take host PIDs).
    sandbox.status.cache_clear()
    real_filter = seccomp_filter.filter_bpf
    monkeypatch.setattr(seccomp_filter, "filter_bpf", lambda threads=False, **kw: real_filter(True, **kw))
    st = sandbox.status()
    assert "one_process" in st.layers and "one_task" not in st.layers
    assert not st.strong and "one_task" in (st.problem or "")

    # A filter that refuses nothing: the probe sees chroot, sockets and fork work, and says so.
    sandbox.status.cache_clear()
    monkeypatch.setattr(seccomp_filter, "filter_bpf", _allow_all_filter)
    st = sandbox.status()
    assert not st.strong and "seccomp" in (st.problem or "")
    assert not {"seccomp", "one_process", "one_task", "memory_total"} & set(st.layers)
    assert "mntns" in st.layers  # what still holds is still claimed

    # No network or PID namespace: not claimed either.
    monkeypatch.undo()
    sandbox.status.cache_clear()
    real = bwrap_mod.command

    def shared_namespaces(**kw: object) -> list[str]:
        cmd = real(**kw)  # type: ignore[arg-type]
        cmd.remove("--unshare-all")
        return cmd

    monkeypatch.setattr(bwrap_mod, "command", shared_namespaces)
    st = sandbox.status()
    assert not {"netns", "pidns", "ipcns", "utsns"} & set(st.layers), st.layers
    assert not st.strong


def _no_bwrap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bwrap_mod, "bwrap_path", lambda: None)


def test_without_bubblewrap_a_code_verifier_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_bwrap(monkeypatch)
    for spec in ({"type": "python_code", "tests": TESTS}, {"type": "python_code", "run": True}):
        with pytest.raises(ConfigError, match="apt-get install bubblewrap") as e:
            build_verifier(spec)
        assert "allow_weak: true" in e.value.message
    build_verifier({"type": "python_code"})  # compile-only runs nothing: fine


async def test_without_bubblewrap_nothing_runs_unless_the_weak_sandbox_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_bwrap(monkeypatch)
    with pytest.raises(SandboxUnavailable):
        await run_python("print(1)", limits=FAST)
    sandbox.configure(allow_weak=True)
    v = build_verifier({"type": "python_code", "tests": TESTS})
    verdict = await v(req(), resp(GOOD), VerifyContext())
    assert verdict.passed, verdict.reason
    # and nothing it does not have ("unprivileged": not root outside, tierwise.sandbox.identity; a root
    # gateway's weak runs see the host read-only but for their folder: "readonly_host", and no PID of it: "pidns"; each run has the cgroups a
    # bubblewrap run has, where this machine lets the gateway make them)
    expected = ["rlimits", "seccomp", "audit", "unprivileged"] + (["readonly_host"] if os.geteuid() == 0 else []) \
        + (["pidns"] if os.geteuid() == 0 and backend.weak_pid_namespace() else []) \
        + (["landlock"] if landlock.abi() else []) + [f"cgroup_{place.controller}" for place in cgroup.places()[0]] \
        + (["cgroup_cpu"] if cgroup.runs_cpu() else [])  # (the runs' shared cpu cgroup, v1: review31a)
    assert verdict.detail["layers"] == expected


async def test_the_weak_sandbox_removes_whatever_the_code_left(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 3,000-deep tree, unreadable and read-only folders, a file made unwritable: all removed."""
    _no_bwrap(monkeypatch)
    sandbox.configure(allow_weak=True)
    made: list[str] = []
    real = weak.make_folder

    def recorded(files: dict[str, bytes], user: identity.User | None = None, root: str | None = None) -> str:
        made.append(real(files, user, root))
        return made[-1]

    monkeypatch.setattr(weak, "make_folder", recorded)
    code = ("import os\nos.mkdir('ro'); open('ro/f', 'w').write('x'); os.chmod('ro/f', 0); os.chmod('ro', 0o500)\n"
            "os.mkdir('locked'); os.chmod('locked', 0)\n"
            "for i in range(3000):\n    os.mkdir('d'); os.chdir('d')\nprint('DEEP')\n")
    r = await run_python(code, limits=SandboxLimits(wall_s=60, cpu_s=30), audit_hook=False)
    assert "DEEP" in r.stdout, r.stderr
    assert made and not os.path.lexists(made[0])


def test_clean_up_never_follows_a_link_out(tmp_path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("x")
    run = tmp_path / "run"
    (run / "a").mkdir(parents=True)
    (run / "a" / "link").symlink_to(outside)
    (run / "link2").symlink_to(outside / "keep.txt")
    assert remove_tree(str(run))
    assert (outside / "keep.txt").read_text() == "x"


async def test_a_full_sandbox_answers_busy_and_the_verifier_fails_the_check() -> None:
    need_layer("seccomp", "bubblewrap with seccomp is not available here")
    sandbox.configure(max_concurrent=1, max_waiting=0)
    slow = "import time\ntime.sleep(2)\n"
    first, second = await asyncio.gather(run_python(slow, limits=FAST), run_python(slow, limits=FAST))
    assert [first.busy, second.busy].count(True) == 1
    busy = first if first.busy else second
    assert not busy.ok and busy.summary().startswith("sandbox busy")

    # Waiting longer than wait_s: busy too.
    sandbox.configure(max_concurrent=1, max_waiting=8, wait_s=0.2)
    v = build_verifier({"type": "python_code", "tests": "import time\ntime.sleep(2)\n" + TESTS})
    verdicts = await asyncio.gather(*(v(req(), resp(GOOD), VerifyContext()) for _ in range(2)))
    assert sorted(x.passed for x in verdicts) == [False, True]
    failed = next(x for x in verdicts if not x.passed)
    assert failed.reason.startswith("sandbox busy"), failed.reason


async def test_the_answer_is_compiled_outside_the_gateway_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """compile() holds the GIL throughout (200 KB of redefinitions: seconds), so not even a thread
    of the gateway compiles the answer; and a slow compile is still a verdict."""
    import builtins

    def refuse(*a: object, **k: object) -> None:
        raise AssertionError("the gateway process compiled the answer")

    v = build_verifier("python_code")
    monkeypatch.setattr(builtins, "compile", refuse)
    verdict = await v(req(), resp(GOOD), VerifyContext())
    bad = await v(req(), resp("```python\ndef f(:\n```"), VerifyContext())
    slow = await v(req(), resp("```python\n" + "def f():\n    pass\n" * 10_000 + "```"), VerifyContext())
    monkeypatch.undo()
    assert verdict.passed, verdict.reason
    assert not bad.passed and bad.reason.startswith("syntax error at line 1"), bad.reason
    # a loaded machine can hit the compiler's wall-clock bound instead of its CPU bound: either wording is a refusal
    assert slow.reason == "code compiles" or slow.reason.startswith("does not compile: the compiler ran out of time")


def _compilers() -> int:
    """Compiler children of this process alive now."""
    n = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmd = fh.read()
        except (OSError, ValueError, IndexError):
            continue
        n += ppid == os.getpid() and b"compile(source" in cmd
    return n


async def test_compiles_share_the_sandbox_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each compile is a child interpreter allowed 1 GB and 10 s of CPU: without a cap, as many
    concurrent answers as the gateway has connections start as many compilers at once.

    Counted exactly (compilers inside their slot, each one's child process included) and sampled from
    /proc; nothing here depends on how fast the machine is: the wait for a slot is longer than any
    run of the test, and a compiler that a loaded machine stops at its own time limit still ran."""
    from tierwise.verifiers import code as code_mod

    sandbox.configure(max_concurrent=2, max_waiting=64, wait_s=3600)
    inside, most_inside = [0], [0]
    real = code_mod._compile_in_child

    async def counted(source: str) -> str | None:
        inside[0] += 1
        most_inside[0] = max(most_inside[0], inside[0])
        try:
            return await real(source)
        finally:
            inside[0] -= 1

    monkeypatch.setattr(code_mod, "_compile_in_child", counted)
    v = build_verifier("python_code")
    slow = resp("```python\n" + "def f():\n    pass\n" * 2_000 + "```")
    most = 0
    calls = asyncio.gather(*(v(req(), slow, VerifyContext()) for _ in range(6)))
    while not calls.done():
        most = max(most, _compilers())
        await asyncio.sleep(0.01)
    verdicts = await calls
    assert most_inside[0] == 2, f"{most_inside[0]} compiles at once (the cap is 2, and 6 asked together)"
    assert most <= 2, f"{most} compilers ran at once"
    # every answer went through a compiler (none was turned away as busy)
    assert all(x.reason == "code compiles" or x.reason.startswith("does not compile: the compiler ran out of time")
               for x in verdicts), [x.reason for x in verdicts]


async def test_a_compile_with_no_slot_is_a_failed_check_not_a_pile_up() -> None:
    sandbox.configure(max_concurrent=1, max_waiting=0)
    v = build_verifier("python_code")
    slow = resp("```python\n" + "def f():\n    pass\n" * 2_000 + "```")
    verdicts = await asyncio.gather(*(v(req(), slow, VerifyContext()) for _ in range(3)))
    busy = [x for x in verdicts if x.reason.startswith("sandbox busy")]
    assert busy and all(not x.passed for x in busy), [x.reason for x in verdicts]


def test_doctor_reports_the_sandbox_and_how_to_install_it(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml
    from click.testing import CliRunner

    from tierwise.cli import main

    cfg = {"providers": {"p": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "locality": "local"}},
           "models": {"m": {"provider": "p", "model": "x"}, "n": {"provider": "p", "model": "y"}},
           "routes": {"main": {"policy": "cascade", "tiers": ["m", "n"],
                               "verifiers": [{"type": "python_code", "tests": TESTS}]}}}
    (tmp_path / "tierwise.yaml").write_text(yaml.safe_dump(cfg))
    monkeypatch.chdir(tmp_path)
    if sandbox.status().strong:
        out = CliRunner().invoke(main, ["doctor", "-c", "tierwise.yaml"]).output
        assert "✓ sandbox: bubblewrap" in out and "seccomp" in out, out
    sandbox.status.cache_clear()
    _no_bwrap(monkeypatch)
    r = CliRunner().invoke(main, ["doctor", "-c", "tierwise.yaml"])
    assert "✗ sandbox: bubblewrap (bwrap) is not installed" in r.output and "apt-get install bubblewrap" in r.output
    assert r.exit_code == 1
