"""Tests in a checker process that never runs the answer's code (`python_code`, `isolation: split`).

Two sandbox runs at once: the CHECKER runs the operator's tests, with a proxy in their globals
for each public name of the answer; the ANSWER imports `solution` and serves calls. The gateway
relays one bounded JSON line at a time between them (tierwise.verifiers.crossing): a call goes
to the answer, its reply (a value, or the builtin type and message of what it raised) goes back.
Values cross as plain data, so no object the answer made ever exists in the checker: it cannot
walk the checker's frames, rebind its builtins or read its token. The verdict is the checker's
alone: its exit status 0 and a token it read before the tests ran, printed after the last one.

Both processes print to stderr; the protocol runs on a copy of their stdout made before any other
code ran. The answer printing, exiting early, hanging, or sending a malformed or oversized line is
a failed check with its reason, never an exception here.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tierwise.sandbox import SandboxLimits, backend
from tierwise.sandbox.capacity import SandboxBusy
from tierwise.sandbox.limits import with_flock_hint
from tierwise.sandbox.runner import LiveRun, _read_capped, open_python
from tierwise.verifiers import crossing

TESTS_FILE = "tierwise_tests.py"
_CROSSING_SOURCE = Path(crossing.__file__).read_text(encoding="utf-8")  # read once at import (and closed)

# Runs in the answer's sandbox. fd 1 is copied for the protocol, then pointed at stderr: what the
# answer prints is kept out of the protocol (and anything it writes to the copy is only a reply
# the checker checks like any other).
ANSWER = r"""def _tierwise_serve():
    import builtins, os, sys
    import tierwise_crossing as wire
    proto = os.dup(1)
    os.dup2(2, 1)

    def send(message):
        try:
            line = wire.dumps(message)
        except wire.CrossingError as e:
            line = wire.dumps({"cannot": str(e)})
        view = memoryview(line)
        while view:
            view = view[os.write(proto, view):]

    def raised(e):
        kind = next(k.__name__ for k in type(e).__mro__ if getattr(builtins, k.__name__, None) is k)
        try:
            text = str(e)
        except BaseException:
            text = "?"
        if kind != type(e).__name__:
            text = f"{type(e).__name__}: {text}"
        return {"raise": kind, "message": text[:2000]}

    try:
        import solution
    except BaseException as e:
        send({"error": f"importing the answer raised {raised(e)['raise']}: {raised(e)['message']}"})
        return
    names = getattr(solution, "__all__", None)
    if names is None:
        names = [n for n in vars(solution) if not n.startswith("_")]
    public, functions = {}, {}
    for name in names:
        if type(name) is not str:
            continue
        value = getattr(solution, name, None)
        if type(value) is type(sys):
            continue  # modules the answer imported
        if callable(value):
            public[name] = {"call": True}
            functions[name] = value
            continue
        try:
            public[name] = {"value": wire.encode(value)}
        except wire.CrossingError as e:
            public[name] = {"cannot": str(e)}
    send({"names": public})
    while line := sys.stdin.buffer.readline(wire.MAX_LINE + 1):
        try:
            call = wire.loads(line)
            fn = functions[call["call"]]
            args, kwargs = wire.decode(call["args"]), wire.decode(call["kwargs"])
        except (wire.CrossingError, KeyError, TypeError) as e:
            send({"error": f"malformed call: {e}"})
            return
        try:
            value = fn(*args, **kwargs)
        except BaseException as e:
            send(raised(e))
            continue
        try:
            send({"value": wire.encode(value)})
        except wire.CrossingError as e:
            send({"cannot": str(e)})
_tierwise_serve()
"""

# Runs in the checker's sandbox; executes the operator's tests and nothing of the answer.
CHECKER = r"""def _tierwise_check():
    import builtins, os, sys
    import tierwise_crossing as wire
    token = sys.stdin.buffer.readline().strip().decode()
    proto = os.dup(1)
    os.dup2(2, 1)

    broken = []

    class AnswerNotCheckable(BaseException):
        # Not an Exception: a test's `except Exception` cannot swallow it. A bare `except:` can,
        # so each one is also kept: the check fails even when the tests went on past it.
        def __init__(self, reason):
            super().__init__(reason)
            broken.append(reason)

    def send(message):
        view = memoryview(wire.dumps(message))
        while view:
            view = view[os.write(proto, view):]

    def receive():
        line = sys.stdin.buffer.readline(wire.MAX_LINE + 1)
        if not line:
            raise AnswerNotCheckable("the answer's process stopped answering")
        try:
            return wire.loads(line)
        except wire.CrossingError as e:
            raise AnswerNotCheckable(f"the answer sent {e}") from None

    def rebuild(kind, text):
        cls = getattr(builtins, kind, None) if type(kind) is str else None
        # StopIteration would end the tests' own iteration early (`all(map(f, xs))` of nothing is True).
        if not (isinstance(cls, type) and issubclass(cls, Exception)) or issubclass(cls, (StopIteration,
                                                                                           StopAsyncIteration)):
            return AnswerNotCheckable(f"the answer raised {str(kind)[:80]}: {str(text)[:300]}")
        for base in cls.__mro__:
            try:
                return base(str(text))
            except Exception:
                continue
        return AnswerNotCheckable(f"the answer raised {kind}")

    def decoded(data, what):
        try:
            return wire.decode(data)
        except wire.CrossingError as e:
            raise AnswerNotCheckable(f"{what}: {e}") from None

    def proxy(name):
        def call(*args, **kwargs):
            try:
                message = {"call": name, "args": wire.encode(list(args), "the answer"),
                           "kwargs": wire.encode(kwargs, "the answer")}
                send(message)
            except wire.CrossingError as e:
                raise AnswerNotCheckable(f"calling {name}: {e}") from None
            reply = receive()
            if "value" in reply:
                return decoded(reply["value"], f"{name}(...) returned")
            if "raise" in reply:
                raise rebuild(reply["raise"], reply.get("message", ""))
            if "cannot" in reply:
                raise AnswerNotCheckable(f"{name}(...) returned a value that cannot be checked: {reply['cannot']}")
            raise AnswerNotCheckable(f"{name}(...): {str(reply.get('error', 'malformed reply'))[:300]}")
        call.__name__ = call.__qualname__ = name
        return call

    try:
        hello = receive()
        if "error" in hello:
            raise AnswerNotCheckable(str(hello["error"])[:2000])
        names = hello.get("names")
        if type(names) is not dict:
            raise AnswerNotCheckable("the answer sent no names")
        # The stand-ins are also the module `solution`, for tests that import it themselves.
        solution = type(sys)("solution")
        sys.modules["solution"] = solution
        for name, entry in names.items():
            # The answer's names never shadow a builtin the tests use (`sorted`, `len`, `all`...).
            if not name.isidentifier() or name.startswith("__") or hasattr(builtins, name) or type(entry) is not dict:
                continue
            if "call" in entry:
                setattr(solution, name, proxy(name))
            elif "value" in entry:
                setattr(solution, name, decoded(entry["value"], name))
        scope = {"__name__": "__main__", "__builtins__": builtins}
        scope.update((k, v) for k, v in vars(solution).items() if not k.startswith("__"))
        with open(TESTS_FILE, encoding="utf-8") as fh:
            tests = compile(fh.read(), TESTS_FILE, "exec", dont_inherit=True)
        exec(tests, scope)
    except AnswerNotCheckable:
        pass
    if broken:
        print(f"the answer cannot be checked: {broken[0]}", file=sys.stderr, flush=True)
        os._exit(3)
    send({"done": token})
_tierwise_check()
""".replace("TESTS_FILE", repr(TESTS_FILE))


@dataclass(slots=True)
class CheckResult:
    passed: bool
    reason: str  # why it failed ("" when it passed)
    layers: list[str] = field(default_factory=list)
    returncode: int | None = None
    busy: bool = False
    runs_as: str = ""  # who the two processes were outside their sandboxes (tierwise.sandbox.backend.runs_as)


_TESTS = "the tests' process"
# Bytes relayed between the two processes in one check, both ways: what bounds the gateway's own
# work for it (~2.5 s of CPU a GB here) when the wall clock and the CPU limits are long; 1.2 GB
# crossed in 10 s, 1 MB replies to a loop of calls.
MAX_RELAYED = 256 * 1024 * 1024


class _Stop(Exception):
    """The relay ends: the answer broke the protocol (the reason is the message)."""


class _CheckerEnded(Exception):
    """The checker stopped reading: its exit status and stderr say why."""


async def check(code: str, tests: str, limits: SandboxLimits) -> CheckResult:
    """Run `tests` against `code` with the tests and the answer in two sandboxes."""
    token = secrets.token_hex(16)
    files_c = {"tierwise_crossing.py": _CROSSING_SOURCE, TESTS_FILE: tests}
    files_a = {"tierwise_crossing.py": _CROSSING_SOURCE, "solution.py": code}
    line_limit = crossing.MAX_LINE + 2
    try:
        async with backend.capacity.pair(), \
                open_python(CHECKER, files=files_c, limits=limits, line_limit=line_limit, own_slot=False) as chk, \
                open_python(ANSWER, files=files_a, limits=limits, line_limit=line_limit, own_slot=False) as ans:
            for live in (chk, ans):
                if live.refused is not None:
                    return CheckResult(False, live.refused.summary(), [], live.refused.returncode)
            result = await _relay(chk, ans, token, limits)
            result.runs_as = chk.runs_as if chk.runs_as == ans.runs_as else f"{chk.runs_as} (tests), {ans.runs_as} (answer)"
            return result
    except SandboxBusy as e:
        return CheckResult(False, f"sandbox busy: {e}", busy=True)


async def _relay(chk: LiveRun, ans: LiveRun, token: str, limits: SandboxLimits) -> CheckResult:
    assert chk.proc is not None and ans.proc is not None
    c, a = chk.proc, ans.proc
    assert c.stdin and c.stdout and a.stdin and a.stdout
    # stderr of both is drained all along (a flood of prints must not block either on a full pipe).
    # stderr past `drain_bytes` kills that run (draining a flood for the whole wall clock cost the
    # gateway 9.7 s of CPU in a 10 s check).
    drain = max(limits.drain_bytes, limits.output_bytes)
    killed_for_output: list[LiveRun] = []

    def stop(run: LiveRun) -> Callable[[], None]:
        def kill() -> None:
            killed_for_output.append(run)
            run.kill()
        return kill

    drains = [asyncio.ensure_future(_read_capped(p.stderr, limits.output_bytes, drain, stop(run)))
              for p, run in ((c, chk), (a, ans))]
    layers = sorted(set(chk.layers) & set(ans.layers), key=chk.layers.index)
    timed_out, broke, done = False, "", False
    # One deadline for the exchange and the checker's exit (as runner._supervise): the exit after `done` had a whole
    # second `wall_s` of its own, and a check whose tests' process lingered there (an atexit handler of the tests, the
    # finalisation of what they kept) passed after up to twice its wall clock, holding two sandbox slots (session 29).
    # A checker that says `done` near the deadline still has a second to exit.
    deadline = asyncio.get_running_loop().time() + limits.wall_s
    try:
        try:
            done = await asyncio.wait_for(_exchange(c, a, token), limits.wall_s)
        except TimeoutError:
            timed_out = True
        except _Stop as e:
            broke = str(e)
        except _CheckerEnded:
            pass
        if done:
            with contextlib.suppress(OSError):
                a.stdin.close()  # the answer's loop ends at EOF
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(c.wait(), max(1.0, deadline - asyncio.get_running_loop().time()))
    finally:
        chk.kill()
        ans.kill()
        await asyncio.gather(c.wait(), a.wait())
        (c_err, _), (a_err, _) = await asyncio.gather(*drains)
    rc = c.returncode
    if chk.out_of_memory() or ans.out_of_memory():
        who = "the tests" if chk.out_of_memory() else "the answer"
        return CheckResult(False, f"killed: memory limit ({who})", layers, rc)
    if timed_out:
        return CheckResult(False, "timed out (wall-clock limit; the answer or the tests did not finish)", layers, rc)
    if killed_for_output:
        who = "the tests" if killed_for_output[0] is chk else "the answer"
        return CheckResult(False, f"killed: output limit ({who} wrote more than {drain:,} bytes to stderr)", layers, rc)
    if broke:
        a_text = a_err.decode("utf-8", "replace")
        said = " | ".join(a_text.strip().splitlines()[-2:])[-300:]
        return CheckResult(False, with_flock_hint(broke + (f"; its stderr: {said}" if said else ""), a_text,
                                                  limits.threads, 1_000), layers, rc)
    if done and rc == 0:
        return CheckResult(True, "", layers, rc)
    err = c_err.decode("utf-8", "replace")
    tail = " | ".join(err.strip().splitlines()[-3:])
    if rc is not None and rc < 0:
        tail = tail or f"the tests' process was killed by signal {-rc}"
    # the answer's flock ENOSYS comes back to the tests as an OSError, in the tests' stderr
    return CheckResult(False, with_flock_hint(tail or f"the tests' process exited with status {rc}", err,
                                              limits.threads), layers, rc)


async def _exchange(c: asyncio.subprocess.Process, a: asyncio.subprocess.Process, token: str) -> bool:
    """Relay lines until the checker says done (True) or ends without saying it (False).

    No line is parsed here: the answer's lines go to the checker as bytes (it parses and checks
    them, inside its own limits), and the checker's are told apart by their first bytes. Parsing
    a 1 MB line of `[{},{},...]` took the event loop 50-180 ms and 25 MB, once per call, for as
    long as the wall clock ran."""
    assert c.stdin and c.stdout and a.stdin and a.stdout
    done = crossing.dumps({"done": token})
    await _write(c.stdin, (token + "\n").encode(), _TESTS)
    relayed = 0
    reply = await _answer_line(a)  # its names
    while True:
        relayed += len(reply)
        if relayed > MAX_RELAYED:
            raise _Stop(f"the answer and the tests exchanged over {MAX_RELAYED // 2**20} MB")
        await _write(c.stdin, reply, _TESTS)
        line = await _line(c.stdout, _TESTS)
        if not line:
            return False  # it ended: its exit status and stderr say why
        if line.startswith(b'{"done":'):
            if not secrets.compare_digest(line, done):
                raise _Stop("the tests' process ended with a wrong token")
            return True
        if not line.startswith(b'{"call":'):
            raise _Stop("the tests' process sent a malformed line")
        relayed += len(line)
        await _write(a.stdin, line, "the answer's process")
        reply = await _answer_line(a)


async def _answer_line(a: asyncio.subprocess.Process) -> bytes:
    assert a.stdout
    line = await _line(a.stdout, "the answer's process")
    if not line:
        raise _Stop("the answer's process exited before it answered (exit, crash or a limit)")
    return line


async def _line(stream: asyncio.StreamReader, who: str) -> bytes:
    try:
        line = await stream.readline()
    except ValueError:  # longer than the stream's limit
        raise _Stop(f"{who} sent a line over {crossing.MAX_LINE} bytes") from None
    if line and not line.endswith(b"\n"):
        return b""  # cut off by its exit
    if len(line) > crossing.MAX_LINE:
        raise _Stop(f"{who} sent a line over {crossing.MAX_LINE} bytes")
    return line


async def _write(stream: asyncio.StreamWriter, data: bytes, who: str) -> None:
    try:
        stream.write(data)
        await stream.drain()
    except (BrokenPipeError, ConnectionResetError):
        if who == _TESTS:
            raise _CheckerEnded from None
        raise _Stop(f"{who} exited before it read its input") from None
