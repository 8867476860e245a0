from __future__ import annotations

import pytest

from tierwise.canonical import Request, Response, ResponseFormat, TokenLogprob
from tierwise.sandbox import SandboxLimits
from tierwise.verifiers import VerifierError, VerifyContext, build_verifier
from tierwise.verifiers.code import PythonCodeVerifier
from tierwise.verifiers.judge import parse_grade

from .helpers import req, resp

CTX = VerifyContext()
PERSON = {"type": "object", "required": ["name", "age"],
          "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}}}


async def test_json_parses_with_or_without_fences() -> None:
    v = build_verifier("json")
    assert (await v(req(), resp('```json\n{"a": [1, 2]}\n```'), CTX)).passed
    assert (await v(req(), resp('  {"a": 1} '), CTX)).passed
    bad = await v(req(), resp('{"a": 1,}'), CTX)
    assert not bad.passed and "not valid JSON" in bad.reason


async def test_json_schema_from_config() -> None:
    v = build_verifier({"type": "json_schema", "schema": PERSON})
    assert (await v(req(), resp('{"name": "Ada", "age": 36}'), CTX)).passed
    bad = await v(req(), resp('Here:\n```json\n{"name": "Ada", "age": -1}\n```'), CTX)
    assert not bad.passed and "/age" in bad.reason and "minimum" in bad.reason
    missing = await v(req(), resp('{"name": "Ada"}'), CTX)
    assert not missing.passed and "'age' is a required property" in missing.reason


async def test_json_schema_from_the_request_response_format() -> None:
    v = build_verifier("json_schema")
    with_schema = req(response_format=ResponseFormat("json_schema", schema=PERSON, name="person"))
    assert (await v(with_schema, resp('{"name": "Ada", "age": 36}'), CTX)).passed
    assert not (await v(with_schema, resp('{"name": 5, "age": 36}'), CTX)).passed
    no_schema = await v(req(), resp("{}"), CTX)
    assert not no_schema.passed and "no JSON Schema" in no_schema.reason
    broken = req(response_format=ResponseFormat("json_schema", schema={"type": 12}))
    assert "not valid JSON Schema" in (await v(broken, resp("{}"), CTX)).reason


async def test_regex_and_contains() -> None:
    must = build_verifier({"type": "regex", "pattern": r"^ANSWER: \d+$", "multiline": True})
    assert (await must(req(), resp("work\nANSWER: 42"), CTX)).passed
    assert not (await must(req(), resp("ANSWER: forty"), CTX)).passed
    forbid = build_verifier({"type": "regex", "pattern": "as an ai", "must_match": False, "ignore_case": True})
    assert not (await forbid(req(), resp("As an AI, I cannot"), CTX)).passed
    contains = build_verifier({"type": "contains", "all": ["Paris"], "any": ["France", "French"],
                               "none": ["London"], "ignore_case": True})
    assert (await contains(req(), resp("paris is the french capital"), CTX)).passed
    miss = await contains(req(), resp("Lyon, France"), CTX)
    assert not miss.passed and "'Paris'" in miss.reason
    assert not (await contains(req(), resp("Paris, France, not London"), CTX)).passed


async def test_python_code_compiles_and_passes_tests() -> None:
    tests = "assert add(2, 3) == 5\nassert add(-1, 1) == 0\n"
    v = build_verifier({"type": "python_code", "tests": tests, "timeout_s": 30})
    good = "Here you go:\n```python\ndef add(a, b):\n    return a + b\n```\nDone."
    assert (await v(req(), resp(good), CTX)).passed
    wrong = await v(req(), resp("```python\ndef add(a, b):\n    return a - b\n```"), CTX)
    assert not wrong.passed and "AssertionError" in wrong.reason
    syntax = await v(req(), resp("```python\ndef add(a, b)\n    return a + b\n```"), CTX)
    assert not syntax.passed and "syntax error at line 1" in syntax.reason
    prose = await v(req(), resp("```bash\nls\n```"), CTX)
    assert not prose.passed and "no Python code" in prose.reason


async def test_python_code_compile_only_never_runs_the_code(tmp_path: object) -> None:
    v = build_verifier("python_code")
    verdict = await v(req(), resp("```python\nimport os\nos.system('touch /tmp/should-not-exist-tw')\n```"), CTX)
    assert verdict.passed and verdict.reason == "code compiles"
    import os

    assert not os.path.exists("/tmp/should-not-exist-tw")


async def test_python_code_in_the_sandbox_cannot_hang_the_verifier() -> None:
    v = PythonCodeVerifier(tests="assert f() == 1", limits=SandboxLimits(wall_s=1, cpu_s=5))
    verdict = await v(req(), resp("```python\nimport time\ndef f():\n    time.sleep(60)\n```"), CTX)
    assert not verdict.passed and "timed out" in verdict.reason


def _sampler(texts: list[str]) -> VerifyContext:
    async def sample(n: int) -> list[Response]:
        assert n == len(texts)
        return [resp(t) for t in texts]

    return VerifyContext(sample=sample)


async def test_self_consistency_exact_and_number() -> None:
    exact = build_verifier({"type": "self_consistency", "k": 3, "threshold": 0.6})
    ctx = _sampler(["Paris.", " paris", "Lyon"])
    v = await exact(req(), resp("PARIS"), ctx)
    assert v.passed and v.score == pytest.approx(2 / 3)
    assert not (await exact(req(), resp("Lyon"), ctx)).passed
    number = build_verifier({"type": "self_consistency", "k": 4, "mode": "number", "threshold": 0.75})
    ctx = _sampler(["so 18 dollars", "#### 18", "The answer is 18.0", "#### 20"])
    assert (await number(req(), resp("... #### 18"), ctx)).passed
    assert not (await number(req(), resp("... #### 20"), ctx)).passed


async def test_self_consistency_by_embedding_and_missing_helpers() -> None:
    vectors = {"cats purr": [1.0, 0.0], "felines purr": [0.95, 0.1], "dogs bark": [0.0, 1.0]}

    async def embed(texts: list[str]) -> list[list[float]]:
        return [vectors[t] for t in texts]

    async def sample(n: int) -> list[Response]:
        return [resp("felines purr"), resp("dogs bark")]

    v = build_verifier({"type": "self_consistency", "k": 2, "mode": "embedding", "threshold": 0.5})
    verdict = await v(req(), resp("cats purr"), VerifyContext(sample=sample, embed=embed))
    assert verdict.passed and verdict.score == 0.5
    with pytest.raises(VerifierError, match="sample"):
        await v(req(), resp("x"), CTX)
    with pytest.raises(VerifierError, match="embedder"):
        await v(req(), resp("x"), VerifyContext(sample=sample))


async def test_logprob_thresholds() -> None:
    confident = [TokenLogprob("4", -0.01, [("4", -0.01), ("5", -5.0)]), TokenLogprob(".", -0.05)]
    unsure = [TokenLogprob("4", -1.2, [("4", -1.2), ("5", -1.0), ("6", -1.3)]), TokenLogprob(".", -0.05)]
    v = build_verifier({"type": "logprobs", "min_mean_logprob": -0.5, "max_mean_entropy": 0.8})
    assert (await v(req(), resp("4.", logprobs=confident), CTX)).passed
    bad = await v(req(), resp("4.", logprobs=unsure), CTX)
    assert not bad.passed and "mean logprob" in bad.reason
    entropy = build_verifier({"type": "logprobs", "max_mean_entropy": 0.3})
    assert "entropy" in (await entropy(req(), resp("4.", logprobs=unsure), CTX)).reason
    worst = build_verifier({"type": "logprobs", "min_token_logprob": -1.0})
    assert "'4'" in (await worst(req(), resp("4.", logprobs=unsure), CTX)).reason
    assert not (await v(req(), resp("4."), CTX)).passed
    lenient = build_verifier({"type": "logprobs", "min_mean_logprob": -1, "on_missing": "pass"})
    assert (await lenient(req(), resp("4."), CTX)).passed


@pytest.mark.parametrize("reply, grade", [
    ("The answer is right.\nVERDICT: good", "good"),
    ("Mostly fine but misses a case.\n**Verdict:** Acceptable", "acceptable"),
    ('Reasoning... {"verdict": "poor"}', "poor"),
    ("It is poor at first glance but on reflection good.\nverdict = good", "good"),
    ("Overall I'd call this acceptable.", "acceptable"),
    ("I cannot decide.", None),
])
def test_judge_verdict_parsing(reply: str, grade: str | None) -> None:
    assert parse_grade(reply) == grade


async def test_llm_judge_calls_the_named_model_with_the_rubric() -> None:
    calls: list[tuple[str, Request]] = []

    def judge_replying(text: str):  # type: ignore[no-untyped-def]
        async def judge(model: str, request: Request) -> Response:
            calls.append((model, request))
            return resp(text)

        return judge

    v = build_verifier({"type": "llm_judge", "model": "frontier-judge", "pass_grades": ["good"]})
    ok = await v(req("What is 2+2?"), resp("4"), VerifyContext(judge=judge_replying("Correct.\nVERDICT: good")))
    assert ok.passed and ok.score == 1.0 and "good" in ok.reason
    model, sent = calls[0]
    assert model == "frontier-judge" and sent.max_tokens == 512
    assert "What is 2+2?" in sent.last_user_text() and "VERDICT" in sent.last_user_text()
    meh = await v(req(), resp("4"), VerifyContext(judge=judge_replying("Eh.\nVERDICT: acceptable")))
    assert not meh.passed and meh.score == 0.5
    garbled = await v(req(), resp("4"), VerifyContext(judge=judge_replying("lorem ipsum")))
    assert not garbled.passed and "no recognisable verdict" in garbled.reason
    with pytest.raises(VerifierError, match="judge"):
        await v(req(), resp("4"), CTX)


async def test_callable_verifiers() -> None:
    base = "tests.verifiers.custom_checks:"
    has_ok = build_verifier({"type": "callable", "function": base + "has_ok", "options": {"word": "fine"}})
    assert (await has_ok(req(), resp("all fine"), CTX)).passed
    assert not (await has_ok(req(), resp("all ok"), CTX)).passed
    pair = build_verifier({"type": "callable", "function": base + "async_pair"})
    v = await pair(req(), resp("short"), CTX)
    assert v.passed and v.reason == "length checked"
    full = await build_verifier({"type": "callable", "function": base + "full_verdict", "name": "mine"})(
        req(), resp("x"), CTX)
    assert full.passed and full.score == 0.9 and full.name == "mine"
    boom = await build_verifier({"type": "callable", "function": base + "explodes"})(req(), resp("x"), CTX)
    assert not boom.passed and "RuntimeError" in boom.reason and "secret-token" not in boom.reason
    junk = await build_verifier({"type": "callable", "function": base + "returns_junk"})(req(), resp("x"), CTX)
    assert not junk.passed and "expected Verdict" in junk.reason


async def test_python_code_an_early_exit_is_not_a_pass() -> None:
    # A prompt-injected answer that exits 0 before the tests ran (or midway) must not pass them.
    tests = "assert add(2, 3) == 5\nassert add(1, 1) == 3\n"
    # (8 s: the cheat that calls whatever __main__ holds blocks its own relay until the wall-clock limit)
    v = build_verifier({"type": "python_code", "tests": tests, "timeout_s": 8})
    for cheat in ("import os\nos._exit(0)\n", "raise SystemExit(0)\n", "import sys\nsys.exit()\n",
                  "import atexit, os\natexit.register(lambda: os._exit(0))\n"
                  "import builtins\nbuiltins.AssertionError = SystemExit\n",
                  "import sys\nsys.excepthook = lambda *a: None\nimport os\nos._exit(0) if False else None\n"
                  "def add(a, b):\n    if (a, b) == (1, 1):\n        raise SystemExit(0)\n    return a + b\n",
                  # Call what the harness left in __main__ (it printed the token when called), then leave.
                  "import __main__, os\nfor f in list(vars(__main__).values()):\n"
                  "    if callable(f) and getattr(f, '__module__', None) == '__main__':\n"
                  "        try:\n            f()\n        except BaseException:\n            pass\nos._exit(0)\n"):
        verdict = await v(req(), resp(f"```python\ndef add(a, b):\n    return a + b\n{cheat}```"), CTX)
        assert not verdict.passed, cheat
    v = build_verifier({"type": "python_code", "tests": tests, "timeout_s": 30})
    honest = await v(req(), resp("```python\ndef add(a, b):\n    return a + b\n```"), CTX)
    assert not honest.passed and "AssertionError" in honest.reason
    run_only = build_verifier({"type": "python_code", "run": True, "timeout_s": 30})
    assert (await run_only(req(), resp("```python\nprint('hi')\n```"), CTX)).passed
    assert not (await run_only(req(), resp("```python\nimport os\nos._exit(0)\nprint('never')\n```"), CTX)).passed
