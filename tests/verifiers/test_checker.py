"""`python_code` with the tests in a checker process (`isolation: split`, the default): correct
answers pass whatever they return or raise (within plain data), the answer's prints do not
matter, and every way the answer can break the protocol is a failed check with its reason."""

from __future__ import annotations

import tracemalloc

import pytest

from tests.verifiers.padded_answers import padded_add
from tests.verifiers.test_sandbox import need_layer
from tierwise.sandbox import SandboxLimits, backend
from tierwise.sandbox.capacity import Capacity
from tierwise.verifiers import VerifyContext, build_verifier, checker
from tierwise.verifiers.base import Verdict
from tierwise.verifiers.code import PythonCodeVerifier
from tierwise.verifiers.crossing import CrossingError, decode, encode

from .helpers import req, resp

LIMITS = SandboxLimits(wall_s=20, cpu_s=5, memory_mb=256)


@pytest.fixture(autouse=True)
def strong_sandbox() -> None:
    need_layer("seccomp", "bubblewrap with seccomp is not available here")


async def verdict(code: str, tests: str, limits: SandboxLimits = LIMITS) -> Verdict:
    v = PythonCodeVerifier(tests=tests, limits=limits)
    return await v(req(), resp(f"```python\n{code}\n```"), VerifyContext())


RICH = '''
import math
LIMIT = 10
NAMES = ("a", "b")
class Negative(ValueError):
    pass
def parse(text, *, base=10):
    if text.startswith("-"):
        raise Negative("negative: " + text)
    return int(text, base)
def shapes(n):
    print("computing", n)  # stray prints do not reach the protocol
    return (n, [n, n * 1.5], {"k": {n}, (1, 2): frozenset({n})}, b"\\x00\\xff", None, True)
def odd():
    return (float("nan"), float("inf"), -0.0, 10 ** 200)
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)
def depth(n):
    return 0 if n == 0 else 1 + depth(n - 1)
def lookup(d, key):
    return d[key]
print("x" * 100_000)
'''
RICH_TESTS = '''
import math
assert LIMIT == 10 and NAMES == ("a", "b")
assert parse("ff", base=16) == 255
try:
    parse("-1")
except ValueError as e:
    assert "Negative: negative: -1" == str(e), str(e)
else:
    raise AssertionError("no error")
try:
    lookup({"a": 1}, "b")
except KeyError:
    pass
else:
    raise AssertionError("no KeyError")
got = shapes(2)
assert got == (2, [2, 3.0], {"k": {2}, (1, 2): frozenset({2})}, b"\\x00\\xff", None, True), got
assert type(got[2]["k"]) is set and type(got[2][(1, 2)]) is frozenset
nan, inf, zero, big = odd()
assert math.isnan(nan) and inf == math.inf and math.copysign(1, zero) == -1 and big == 10 ** 200
assert fib(15) == 610 and depth(500) == 500
print("tests print too")
def check(candidate):  # HumanEval's shape: the tests get the function itself
    assert candidate(10) == 55
check(fib)
'''


async def test_a_correct_answer_passes_with_exceptions_containers_and_prints() -> None:
    v = await verdict(RICH, RICH_TESTS)
    assert v.passed and v.reason == "tests passed", v.reason
    assert v.detail["isolation"] == "split" and "seccomp" in v.detail["layers"]


async def test_a_failing_assert_fails_with_the_tests_traceback() -> None:
    v = await verdict("def add(a, b):\n    return a - b", "assert add(2, 3) == 5, 'add is wrong'")
    assert not v.passed and "add is wrong" in v.reason, v.reason


@pytest.mark.parametrize(("code", "tests", "reason"), [
    ("def g():\n    yield 1", "assert list(g()) == [1]", "value of type generator cannot cross to the checker"),
    ("class P:\n    pass\ndef make():\n    return P()", "assert make()", "value of type P cannot cross"),
    ("def f(x):\n    return x", "assert f(lambda: 1)", "value of type function cannot cross to the answer"),
    ("def f():\n    return list(range(200_000))", "assert f()", "too large"),
    ("def f():\n    return 10 ** 5000", "assert f()", "int too large to cross to the checker"),
    ("import os\ndef f():\n    os._exit(0)", "assert f() is None", "the answer's process exited before it answered"),
    ("import sys\ndef f():\n    sys.exit(0)", "try:\n    f()\nexcept Exception:\n    pass",
     "the answer raised SystemExit"),
    ("raise ImportError('nope')", "assert True", "importing the answer raised ImportError: nope"),
])
async def test_what_cannot_be_checked_fails_clearly(code: str, tests: str, reason: str) -> None:
    v = await verdict(code, tests)
    assert not v.passed and reason in v.reason, v.reason


@pytest.mark.parametrize("catch", ["except:", "except BaseException:"])
@pytest.mark.parametrize("code", ["def divide(a, b):\n    return (x for x in [])",  # cannot cross
                                  "def divide(a, b):\n    raise SystemExit(0)",
                                  "def divide(a, b):\n    raise StopIteration"])
async def test_a_failure_to_check_stays_a_failure_when_the_tests_catch_everything(code: str, catch: str) -> None:
    # The wrong answer returns (or exits) where it should raise; with the tests in its own process
    # (`shared`) the `else` fails it, and a check that cannot be made must not pass it either.
    tests = f"try:\n    divide(1, 0)\n{catch}\n    pass\nelse:\n    raise AssertionError('no error')\n"
    v = await verdict(code, tests)
    assert not v.passed and "the answer cannot be checked" in v.reason, v.reason


async def test_tests_that_import_solution_themselves_still_work() -> None:
    tests = "import solution\nfrom solution import add, LIMIT\nassert solution.add(1, 2) == add(1, 2) == 3 == LIMIT"
    v = await verdict("LIMIT = 3\ndef add(a, b):\n    return a + b", tests)
    assert v.passed, v.reason


async def test_an_answer_that_never_answers_fails_within_its_time_limit() -> None:
    code = "import time\ndef f():\n    while True:\n        time.sleep(1)"
    v = await verdict(code, "assert f() == 1", SandboxLimits(wall_s=2, cpu_s=5, memory_mb=256))
    assert not v.passed and "timed out" in v.reason, v.reason


async def test_the_answer_flooding_stderr_does_not_block_the_check() -> None:
    code = "import sys\ndef f():\n    for _ in range(2000):\n        print('y' * 1000, file=sys.stderr)\n    return 1"
    v = await verdict(code, "assert f() == 1")
    assert v.passed, v.reason


async def test_a_pair_of_runs_fits_in_a_single_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backend, "capacity", Capacity(max_concurrent=1, wait_s=5))
    v = await verdict("def f():\n    return 1", "assert f() == 1")
    assert v.passed, v.reason


async def test_shared_isolation_still_passes_objects_across() -> None:
    code = "class Box:\n    def __init__(self, v):\n        self.v = v\ndef make(v):\n    return Box(v)"
    config = {"type": "python_code", "tests": "assert make(3).v == 3", "isolation": "shared"}
    v = await build_verifier(config)(req(), resp(f"```python\n{code}\n```"), VerifyContext())
    assert v.passed, v.reason
    config["isolation"] = "split"
    v = await build_verifier(config)(req(), resp(f"```python\n{code}\n```"), VerifyContext())
    assert not v.passed and "value of type Box cannot cross" in v.reason, v.reason


def test_values_cross_as_plain_data_only() -> None:
    value = {(1, "a"): [None, True, 2.5, b"x", {frozenset({1})}], "n": float("inf")}
    assert decode(encode(value)) == value
    for bad in ({"x": 1}, {"i": 1}, {"t": "no"}, {"d": [[[], 1]]}, {"i": "1", "f": "2"}, 1, 1.5):
        with pytest.raises(CrossingError):
            decode(bad)
    nested: list[object] = []
    for _ in range(60):
        nested = [nested]
    with pytest.raises(CrossingError, match="nested too deep"):
        encode(nested)
    with pytest.raises(CrossingError, match="type bool_ cannot|type MyInt cannot"):
        encode(type("MyInt", (int,), {})(1))


# A correct `add` whose every reply carries 1 MB of `{}`: the checker reads the value and ignores
# the rest; the gateway relays the line. It serves later calls itself, so each one gets a padded reply.
PADDED = padded_add("dicts")


async def test_the_gateway_relays_the_answers_lines_without_parsing_them() -> None:
    # Parsed in the gateway, each such line took 25 MB (and 50-180 ms of its event loop), once per
    # call for as long as the wall clock ran; relayed as bytes it takes about its own size.
    tracemalloc.start()
    try:
        v = await verdict(PADDED, "for i in range(4):\n    assert add(i, 1) == i + 1")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert v.passed, v.reason
    assert peak < 12_000_000, peak


async def test_the_bytes_relayed_in_one_check_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    # The wall clock and CPU limits may be minutes; what the gateway relays is bounded on its own
    # (1 MB replies to a loop of calls crossed 1.2 GB in 10 s). Here the bound is lowered to 8 MB.
    monkeypatch.setattr(checker, "MAX_RELAYED", 8 * 2**20)
    v = await verdict(PADDED, "for i in range(20):\n    assert add(i, 1) == i + 1")
    assert not v.passed and "the answer and the tests exchanged over 8 MB" in v.reason, v.reason
    v = await verdict(PADDED, "for i in range(6):\n    assert add(i, 1) == i + 1")
    assert v.passed, v.reason  # under the bound, the same answer passes
