"""Cost of reversible redaction (tierwise.privacy.redact / stream_restore), detection excluded.

Builds a ~2,000-token request (system prompt, 6 turns, a tool call and a tool result, ~8,000
characters) holding 20 sensitive values, each appearing twice; findings are precomputed (the
detector's cost is measured by the detection bench). Measures, with timeit, best-of-5 medians:

- redact: a fresh Pseudonymizer + `redact_request` over the whole canonical Request;
- restore: `restore_response` of an answer of ~600 tokens echoing 20 placeholders;
- one request end to end: fresh mapping + redact + pattern compile + restore;
- stream: `StreamRestorer.feed` per text delta of ~4 characters (the usual token size), for the
  same answer, and the same with a Pseudonymizer holding nothing (the pass-through path).

    PYTHONPATH=src python bench/privacy_redaction.py
"""

from __future__ import annotations

import random
import statistics
import timeit
from dataclasses import dataclass

from tierwise.canonical import (
    BlockDelta,
    BlockStart,
    BlockStop,
    Message,
    Request,
    Response,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
)
from tierwise.privacy.redact import Pseudonymizer
from tierwise.privacy.redact_canonical import redact_request, restore_response
from tierwise.privacy.stream_restore import StreamRestorer


@dataclass(frozen=True, slots=True)
class F:
    entity: str
    start: int
    end: int


VALUES = (
    [("PERSON", n) for n in ["Jane Doe", "Bob Stone", "Ana Lima", "Kai Berg", "Li Wei", "Omar Haddad"]]
    + [("EMAIL_ADDRESS", f"user{i}@corp{i}.example") for i in range(4)]
    + [("CREDIT_CARD", c) for c in ["4111 1111 1111 1111", "5500 0000 0000 0004", "3400 000000 00009"]]
    + [("IBAN_CODE", i) for i in ["DE89370400440532013000", "GB82WEST12345698765432", "NL91ABNA0417164300"]]
    + [("PHONE_NUMBER", p) for p in ["+44 20 7946 0958", "+1 212 555 0100", "+49 30 901820"]]
    + [("US_SSN", "078-05-1120")]
)
WORDS = "the account holder asked about a refund for the order and wants it sent today please check".split()


def filler(rng: random.Random, n_words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n_words))


def build() -> tuple[Request, dict[str, list[F]]]:
    rng = random.Random(7)
    texts: list[str] = []
    for turn in range(8):
        parts = []
        for k in range(5):
            entity, value = VALUES[(turn * 5 + k) % len(VALUES)]
            parts.append(filler(rng, 28) + " " + value)
        texts.append(" ".join(parts) + ". " + filler(rng, 20))
    findings: dict[str, list[F]] = {}
    for t in texts:
        fs = []
        for entity, value in VALUES:
            i = t.find(value)
            while i >= 0:
                fs.append(F(entity, i, i + len(value)))
                i = t.find(value, i + 1)
        findings[t] = fs
    msgs = [Message("user" if i % 2 == 0 else "assistant", [TextBlock(t)]) for i, t in enumerate(texts[1:6])]
    msgs.append(Message("assistant", [ToolUseBlock("t1", "lookup", {"query": texts[6]})]))
    msgs.append(Message("user", [ToolResultBlock("t1", [TextBlock(texts[7])])]))
    return Request("m", msgs, system=[TextBlock(texts[0])]), findings


def best_median(fn, number: int) -> float:
    runs = [min(timeit.repeat(fn, number=number, repeat=5)) / number for _ in range(3)]
    return statistics.median(runs)


def main() -> None:
    req, findings = build()
    chars = len(req.text())

    def detect(text: str) -> list[F]:
        return findings.get(text, [])

    print(
        f"request: {chars} chars (~{chars // 4} tokens), {sum(len(v) for v in findings.values())} findings, "
        f"{len(VALUES)} distinct values"
    )
    for surrogates in ((), ("CREDIT_CARD", "IBAN_CODE", "EMAIL_ADDRESS", "PHONE_NUMBER")):
        measure(req, detect, surrogates)


def measure(req: Request, detect, surrogates: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    def do_redact() -> Pseudonymizer:
        p = Pseudonymizer(surrogate_entities=surrogates)
        redact_request(req, p, detect)
        return p

    p = do_redact()
    tokens = [p.stand_in(e, v) for e, v in VALUES]
    rng = random.Random(3)
    answer = " ".join(filler(rng, 25) + " " + t for t in tokens)
    resp = Response("r", "m", [TextBlock(answer)])
    deltas = [answer[i : i + 4] for i in range(0, len(answer), 4)]

    def do_stream(pz: Pseudonymizer) -> None:
        sr = StreamRestorer(pz)
        sr.feed(BlockStart(0, TextBlock("")))
        for d in deltas:
            sr.feed(BlockDelta(0, "text", d))
        sr.feed(BlockStop(0))

    def full_cycle() -> None:  # what one request pays: fresh mapping, redact, compile the pattern, restore
        pz = do_redact()
        restore_response(resp_fresh, pz)

    resp_fresh = resp
    empty = Pseudonymizer()
    t_redact = best_median(do_redact, 50)
    t_restore = best_median(lambda: restore_response(resp, p), 200)
    t_stream = best_median(lambda: do_stream(p), 20) / len(deltas)
    t_stream_empty = best_median(lambda: do_stream(empty), 20) / len(deltas)
    kind = "surrogates for " + ", ".join(surrogates) if surrogates else "placeholders only"
    print(f"-- {kind}")
    print(f"redact_request (fresh mapping):   {t_redact * 1e6:8.1f} us")
    print(f"restore_response ({len(answer)} chars, {len(tokens)} stand-ins): {t_restore * 1e6:8.1f} us")
    print(f"redact + restore:                 {(t_redact + t_restore) * 1e6:8.1f} us")
    print(f"one request, end to end (incl. pattern compile): {best_median(full_cycle, 50) * 1e6:8.1f} us")
    print(f"stream restore per 4-char delta:  {t_stream * 1e6:8.2f} us ({len(deltas)} deltas)")
    print(f"  same, empty mapping (pass-through): {t_stream_empty * 1e6:8.2f} us")


if __name__ == "__main__":
    main()
