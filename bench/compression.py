"""Context compression: does the answer survive, and how many tokens go?

Long-context questions built from the Python standard library's own docstrings (public text every
machine with Python has): for each question one function's docstring holds the answer — its first
sentence is the answer span — and it is hidden among `--distractors` other docstrings, the whole
given as an earlier user turn (a pasted document) before the question "What does <short name> do?" (the last part of the name only).
Each request goes through tierwise's extractive compressor at several target ratios; a question
counts as surviving when its answer span is still in the compressed request word for word.

Run:  nice -n 5 python bench/compression.py [--questions 300] [--distractors 39] [--embeddings]
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from tierwise.canonical import Message, Request, TextBlock  # noqa: E402
from tierwise.compression.compressor import extract  # noqa: E402
from tierwise.compression.settings import RouteCompression  # noqa: E402

MODULES = ("os", "os.path", "json", "re", "collections", "itertools", "functools", "string", "textwrap", "shutil",
           "pathlib", "datetime", "statistics", "random", "heapq", "bisect", "csv", "urllib.parse", "html",
           "base64", "difflib", "fractions", "inspect", "typing", "argparse", "logging", "subprocess", "tempfile",
           "glob", "fnmatch", "zipfile", "tarfile", "gzip", "calendar", "copy", "pprint", "enum", "dataclasses",
           "contextlib", "operator", "secrets", "uuid", "ipaddress", "email.utils", "http.client", "shlex",
           "threading", "queue", "asyncio", "unittest", "sqlite3", "configparser", "getpass", "locale", "platform",
           "codecs", "io", "pickle", "struct", "weakref", "traceback", "warnings", "ast", "dis", "tokenize",
           "zlib", "hashlib", "hmac", "socket", "selectors", "signal", "mimetypes", "webbrowser", "wave",
           "colorsys", "imaplib", "smtplib", "ftplib", "xml.dom.minidom", "plistlib", "netrc", "filecmp")


def first_sentence(doc: str) -> str:
    para = doc.strip().split("\n\n")[0].replace("\n", " ")
    para = " ".join(para.split())
    cut = para.find(". ")
    return para if cut < 0 else para[: cut + 1]


def docstrings() -> list[tuple[str, str, str]]:
    """(qualified name, docstring, answer span) of public functions and methods with a real docstring."""
    out: dict[str, tuple[str, str, str]] = {}
    for mod_name in MODULES:
        try:
            mod = importlib.import_module(mod_name)
        except Exception:
            continue
        for name, obj in sorted(vars(mod).items()):
            if name.startswith("_"):
                continue
            members = [(name, obj)]
            if inspect.isclass(obj):
                members += [(f"{name}.{m}", f) for m, f in sorted(vars(obj).items())
                            if not m.startswith("_") and callable(f)]
            for qual, fn in members:
                doc = inspect.getdoc(fn) if (inspect.isfunction(fn) or inspect.isclass(fn) or
                                             inspect.ismethod(fn)) else None
                if not doc or len(doc) < 120:
                    continue
                span = first_sentence(doc)
                if len(span) < 30 or len(span) > 400:
                    continue
                full = f"{mod_name}.{qual}"
                out.setdefault(doc, (full, " ".join(doc.split()), span))
    return sorted(out.values())


def build(target: tuple[str, str, str], pool: list[tuple[str, str, str]], k: int, rng: random.Random) -> Request:
    docs = rng.sample([d for d in pool if d[0] != target[0]], k) + [target]
    rng.shuffle(docs)
    context = "\n\n".join(f"{name}\n{text}" for name, text, _ in docs)
    question = f"What does {target[0].rsplit('.', 1)[-1]} do?"  # the short name only: no module to match
    return Request(model="m", messages=[
        Message("user", [TextBlock("Here is some documentation I will ask about:\n\n" + context)]),
        Message("assistant", [TextBlock("Understood. What is your question?")]),
        Message("user", [TextBlock(question)]),
    ])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", type=int, default=300)
    ap.add_argument("--distractors", type=int, default=39)
    ap.add_argument("--ratios", default="2,4,8,16")
    ap.add_argument("--embeddings", action="store_true", help="mix local embeddings into the passage scores")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    pool = docstrings()
    rng = random.Random(args.seed)
    targets = rng.sample(pool, min(args.questions, len(pool)))
    reqs = [(t, build(t, pool, args.distractors, rng)) for t in targets]
    emb = None
    if args.embeddings:
        from tierwise.routers.features import Embedder

        emb = Embedder()
    print(f"{len(pool)} docstrings from {len(MODULES)} stdlib modules; {len(reqs)} questions, each with "
          f"{args.distractors} distractor docstrings; scoring: BM25{' + embeddings' if emb else ''}")
    print(f"{'ratio':>6} {'survived':>9} {'ctx tokens before':>18} {'after':>7} {'achieved':>9} {'saved':>7} "
          f"{'ms/request':>11}")
    for ratio in [float(r) for r in args.ratios.split(",")]:
        rc = RouteCompression(ratio=ratio, min_tokens=0, embeddings=emb is not None)
        ok = before_sum = after_sum = 0
        t0 = time.perf_counter()
        for (_, _, span), req in reqs:
            out, before, after = extract(req, rc, emb)
            ok += span in out.messages[0].content[0].text  # type: ignore[union-attr]
            before_sum += before
            after_sum += after
        ms = (time.perf_counter() - t0) * 1000 / len(reqs)
        print(f"{ratio:>5.0f}x {ok / len(reqs):>9.1%} {before_sum / len(reqs):>18.0f} {after_sum / len(reqs):>7.0f} "
              f"{before_sum / max(after_sum, 1):>8.2f}x {1 - after_sum / before_sum:>7.1%} {ms:>11.1f}")


if __name__ == "__main__":
    main()
