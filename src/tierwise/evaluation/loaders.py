"""Loaders: RouteLLM's GPT-4 vs Mixtral data (MMLU, GSM8K, MT-Bench), a JSONL format of our own
(fixtures and users' exports), and the ledger's shadow pairs.

The RouteLLM data are read in place from `$TIERWISE_DATA/routellm-gpt4-mixtral`, else
`../shared/data/...`, else where `tierwise data get routellm` puts them (datasets/routellm.py);
contaminated prompts are dropped as RouteLLM does.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from tierwise.evaluation.csv_rows import NotANumber
from tierwise.evaluation.dataset import OutcomeDataset

STRONG = "gpt-4-1106-preview"
WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"
ROUTELLM = "routellm-gpt4-mixtral"
BENCHMARKS = ("mmlu", "gsm8k", "mt-bench")
MMLU_PARSING_ARTEFACT = "high_school_mathematics"


class DataError(ValueError):
    """A dataset that is missing or malformed; the message says which file and why."""


def data_root(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The folder holding `routellm-gpt4-mixtral`, or None when it is not on this machine."""
    candidates = [Path(explicit)] if explicit else []
    if os.environ.get("TIERWISE_DATA"):
        candidates.append(Path(os.environ["TIERWISE_DATA"]))
    here = Path(__file__).resolve()
    candidates += [Path.cwd() / ".." / "shared" / "data", here.parents[3] / ".." / "shared" / "data"]
    from tierwise.datasets.routellm import default_root

    candidates.append(default_root())  # where `tierwise data get routellm` puts it
    for c in candidates:
        if (c / ROUTELLM).is_dir():
            return c.resolve()
        if c.name == ROUTELLM and c.is_dir():
            return c.parent.resolve()
    return None


def _root(root: str | os.PathLike[str] | None) -> Path:
    r = data_root(root)
    if r is None:
        raise DataError(f"RouteLLM data not found: expected a folder {ROUTELLM}/ under $TIERWISE_DATA, ../shared/data "
                        "or ~/.local/share/tierwise/data; `tierwise data get routellm` downloads it")
    return r / ROUTELLM


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [row for _, row in _jsonl_lines(path)]


def _jsonl_lines(path: Path, problems: list[str] | None = None) -> list[tuple[int, Any]]:
    """(line number in the file, parsed value) of each non-blank line (tierwise.jsonl_lines: a BOM, CRLF and
    blank lines are fine; other encodings are an error naming the line; with `problems`, lines that are not JSON
    are added to it)."""
    from tierwise.jsonl_lines import jsonl_lines

    return list(jsonl_lines(path, DataError, problems))


def _contaminated(path: Path) -> set[str]:
    return {r["eval_prompt"] for r in _jsonl(path)} if path.exists() else set()


def _bool(v: str, where: str) -> float:
    if v in ("True", "true", "1"):
        return 1.0
    if v in ("False", "false", "0"):
        return 0.0
    raise DataError(f"{where}: expected True/False, got {v[:20]!r}")


def load_mmlu(root: str | os.PathLike[str] | None = None, *, drop_subjects: tuple[str, ...] = ()) -> OutcomeDataset:
    base = _root(root) / "mmlu"
    bad = _contaminated(base / "contaminated_prompts.jsonl")
    csv.field_size_limit(sys.maxsize)
    prompts, strong, weak, subjects = [], [], [], []
    files = sorted((base / "responses").glob("mmlu_*.csv"))
    if not files:
        raise DataError(f"no MMLU response files in {base / 'responses'}")
    for f in files:
        subject = f.stem.removeprefix("mmlu_")
        if subject in drop_subjects:
            continue
        with f.open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                if row["prompt"] in bad:
                    continue
                prompts.append(row["prompt"])
                strong.append(_bool(row[STRONG], str(f)))
                weak.append(_bool(row[WEAK], str(f)))
                subjects.append(subject)
    name = "mmlu" + "".join(f"-no-{s}" for s in drop_subjects)
    return OutcomeDataset(name, prompts, np.array(strong), np.array(weak), [f"mmlu:{i}" for i in range(len(prompts))],
                          subjects, strong_model=STRONG, weak_model=WEAK)


def load_gsm8k(root: str | os.PathLike[str] | None = None) -> OutcomeDataset:
    base = _root(root) / "gsm8k"
    bad = _contaminated(base / "contaminated_prompts.jsonl")
    csv.field_size_limit(sys.maxsize)
    prompts, strong, weak, sr, wr = [], [], [], [], []
    path = base / "gsm8k_responses.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["prompt"] in bad:
                continue
            prompts.append(row["prompt"])
            strong.append(_bool(row[STRONG], str(path)))
            weak.append(_bool(row[WEAK], str(path)))
            sr.append(row[f"{STRONG}_response"])
            wr.append(row[f"{WEAK}_response"])
    return OutcomeDataset("gsm8k", prompts, np.array(strong), np.array(weak),
                          [f"gsm8k:{i}" for i in range(len(prompts))], ["gsm8k"] * len(prompts),
                          strong_responses=sr, weak_responses=wr, strong_model=STRONG, weak_model=WEAK)


def load_mtbench(root: str | os.PathLike[str] | None = None) -> OutcomeDataset:
    """One row per question, routed on turn 1 (as RouteLLM does); outcome = mean grade of both turns."""
    base = _root(root) / "mt_bench"
    bad = _contaminated(base / "contaminated_prompts.jsonl")
    scores: dict[tuple[int, str], list[float]] = {}
    for j in _jsonl(base / "judgements.jsonl"):
        scores.setdefault((int(j["question_id"]), j["model"]), []).append(float(j["score"]))
    prompts, strong, weak, groups, cats = [], [], [], [], []
    for q in _jsonl(base / "question.jsonl"):
        turns = q["turns"]
        if turns[0] in bad or (len(turns) > 1 and turns[1] in bad):
            continue
        qid = int(q["question_id"])
        s, w = scores.get((qid, STRONG)), scores.get((qid, WEAK))
        if not s or not w:
            raise DataError(f"{base / 'judgements.jsonl'}: question {qid} lacks grades for both models")
        prompts.append(turns[0])
        strong.append(float(np.mean(s)))
        weak.append(float(np.mean(w)))
        groups.append(f"mt-bench:{qid}")
        cats.append(str(q.get("category", "")))
    return OutcomeDataset("mt-bench", prompts, np.array(strong), np.array(weak), groups, cats,
                          strong_model=STRONG, weak_model=WEAK)


def load_benchmark(name: str, root: str | os.PathLike[str] | None = None) -> OutcomeDataset:
    if name == "mmlu":
        return load_mmlu(root)
    if name in ("mmlu-no-hsm", f"mmlu-no-{MMLU_PARSING_ARTEFACT}"):
        return load_mmlu(root, drop_subjects=(MMLU_PARSING_ARTEFACT,))
    if name == "gsm8k":
        return load_gsm8k(root)
    if name in ("mt-bench", "mtbench"):
        return load_mtbench(root)
    raise DataError(f"unknown benchmark {name!r}, and no file of that name here; choose one of: "
                    f"{', '.join(BENCHMARKS)}, mmlu-no-hsm, routellm, ledger, or a JSONL file's path")


def load_jsonl(path: str | os.PathLike[str]) -> OutcomeDataset:
    """Our own format, one query per line:
    `{"prompt": str, "strong": number, "weak": number, "id"?: str, "subject"?: str,
      "strong_response"?: str, "weak_response"?: str}`."""
    from tierwise.evaluation.csv_rows import csv_rows, is_table
    from tierwise.evaluation.json_array import is_json_array, json_array_rows

    p = Path(path)
    rows: list[tuple[str, int, Any]]  # (where, for errors; the row's default id; the row)
    unparsed: list[str] = []  # JSONL lines that are not JSON, named with the rows' problems
    if is_table(p):
        rows = [(f"{p}:{n}", n, r) for n, r in csv_rows(p, DataError)]
    elif is_json_array(p):
        rows = [(f"{p}:{line} (item {n})", n, r) for n, line, r in json_array_rows(p, DataError)]
    else:
        rows = [(f"{p}:{n}", n, r) for n, r in _jsonl_lines(p, unparsed)]
    if not rows:
        if is_table(p):
            raise DataError(f"{p}: a header row and no records below it (one record a line under the header: "
                            "prompt, strong, weak; docs/routers.md)")
        raise DataError(f"{p}: no rows (one JSON object a line: prompt, strong, weak; docs/routers.md)")
    prompts, strong, weak, groups, subjects = [], [], [], [], []
    sr: list[str] = []
    wr: list[str] = []
    # every row's problem at once: a file with a few mistakes is fixed in one pass, not one rerun per mistake
    problems = [(n, f"{where}: {problem}") for where, n, r in rows if (problem := _row_problem(r)) is not None]
    problems += [(int(u[len(f'{p}:'):].split(':', 1)[0]), u) for u in unparsed]  # `path:N: ...`
    if problems:
        raise DataError(_problems_text([text for _, text in sorted(problems)]))
    for _, n, r in rows:
        prompts.append(r["prompt"])
        strong.append(float(r["strong"]))
        weak.append(float(r["weak"]))
        # null in an optional field (a spreadsheet's empty cell) is the field left out: `"id": null` on every
        # row made them all the question "None"; an empty or blank `"id": ""` (what a CSV-to-JSON tool writes for an
        # empty cell, as the CSV reader already reads one) made them all the question "" (session 36)
        groups.append(str(n if _absent_id(r.get("id")) else r["id"]))
        subjects.append(_text_or_empty(r.get("subject")))
        sr.append(_text_or_empty(r.get("strong_response")))
        wr.append(_text_or_empty(r.get("weak_response")))
    has_resp = any(sr) or any(wr)
    name = Path(p.stem).stem if p.suffix.lower() == ".gz" else p.stem  # mine.jsonl.gz is the data set "mine"
    return OutcomeDataset(name, prompts, np.array(strong), np.array(weak), groups, subjects,
                          strong_responses=sr if has_resp else None, weak_responses=wr if has_resp else None)


MAX_PROBLEMS_SHOWN = 20


def _problems_text(problems: list[str]) -> str:
    """The rows to fix, one a line (the first line as a single problem reads), at most MAX_PROBLEMS_SHOWN."""
    if len(problems) == 1:
        return problems[0]
    shown = problems[:MAX_PROBLEMS_SHOWN]
    more = len(problems) - len(shown)
    tail = f"\n(and {more:,} more; {len(problems):,} rows to fix in all)" if more else \
        f"\n({len(problems)} rows to fix)"
    return "\n".join(shown) + tail


def _row_problem(r: Any) -> str | None:
    """What is wrong with one row of the JSONL format, in words that say how to fix it; None when it is fine."""
    if isinstance(r, list):
        return "a JSON array; the format is one JSON object a line (JSONL), not one array of them"
    if not isinstance(r, dict):
        return "not a JSON object; each line is one object with `prompt`, `strong` and `weak`"
    near = _misspelt_field(r)
    if near is not None:  # a typo'd optional field would be dropped without a word (extra columns are fine)
        return f"unknown field `{near[0]}` (did you mean `{near[1]}`?)"
    missing = [k for k in ("prompt", "strong", "weak") if k not in r]
    if missing:
        alias = next((k for k in PROMPT_ALIASES if k in r), None) if "prompt" in missing else None
        hint = f"; this row's `{alias}` is read only as `prompt`: rename the field" if alias else ""
        # the tiers by the names `tierwise boundary` and feedback use (session 37, newuser37)
        tiers = [f"`{k}` as `{v}`" for k, v in OUTCOME_ALIASES.items() if k in r and v in missing]
        hint += f"; rename this row's {' and '.join(tiers)} (the frontier and local tiers' outcomes)" if tiers else ""
        return (f"no {' and no '.join(f'`{k}`' for k in missing)} (each row needs `prompt` (text) and the "
                f"outcomes `strong` and `weak` (numbers){hint})")
    if isinstance(r["prompt"], list) and all(isinstance(m, dict) and "content" in m for m in r["prompt"]):
        return ("`prompt` is a list of messages; it must be text (a JSON string): the last user message, as the "
                "gateway's `learned` route scores it, or the turns joined into one text")
    if not isinstance(r["prompt"], str):
        return "`prompt` must be text (a JSON string)"
    if not r["prompt"].strip():  # a router fitted to outcomes of no text (accepted without a word before session 37)
        return "`prompt` is empty (or only whitespace): the router has nothing to read; fill it in or drop the row"
    for k in ("id", "subject"):  # a list or an object became its Python repr ("['x']"): no exporter means that
        v = r.get(k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (str, int, float))):
            return f"`{k}` must be text (or a number), not {json.dumps(v)[:40]}"
    for k in ("prompt", "id", "subject", "strong_response", "weak_response"):
        bad = _surrogate(r.get(k))
        if bad is not None:  # json reads "\ud800" as a lone surrogate, which cannot be hashed or written as UTF-8
            return (f"`{k}` holds an unpaired UTF-16 surrogate escape (\\u{ord(bad):04x}), which is not text: fix "
                    "the exporter that wrote it")
    for k in ("strong", "weak"):
        v = r[k]
        if _finite_number(v):
            if abs(v) <= MAX_OUTCOME:
                continue
            shown = repr(float(v)) if isinstance(v, float) else _digits(v)
            return (f"`{k}` is {shown}: outcomes are 1/0 correctness or a grade; rescale them to within "
                    f"±{MAX_OUTCOME:.0e} (sums of larger ones overflow)")
        if isinstance(v, bool):
            return f"`{k}` is {str(v).lower()}: write the outcome as a number, 1 or 0"
        if isinstance(v, NotANumber):  # a CSV cell
            return v.problem(k)
        if isinstance(v, str):
            return f"`{k}` is text ({json.dumps(v[:20])}): write the outcome as a JSON number, without quotes"
        return f"`{k}` must be a finite number (an outcome: 1/0 correctness or a grade), not {json.dumps(v)[:20]}"
    return None


JSONL_FIELDS = ("prompt", "strong", "weak", "id", "subject", "strong_response", "weak_response")
OUTCOME_ALIASES = {"frontier": "strong", "remote": "strong", "local": "weak"}  # what a row may call the outcomes
# What other data sets call the prompt (Hugging Face exports: MMLU-Pro `question`, Alpaca `instruction`, ...).
PROMPT_ALIASES = ("question", "query", "input", "instruction", "text", "messages", "content")


def _misspelt_field(row: Any) -> tuple[str, str] | None:
    """(field, the known field it is a near miss of) for the first such field of a row, else None."""
    import difflib

    if not isinstance(row, dict):
        return None
    for k in row:
        if isinstance(k, str) and k not in JSONL_FIELDS:
            near = difflib.get_close_matches(k, JSONL_FIELDS, n=1, cutoff=0.8)
            if near:
                return k, near[0]
    return None


MAX_OUTCOME = 1e12  # an outcome's magnitude bound: the training sums of 1e308 overflowed to infinity


def _finite_number(v: Any) -> bool:
    """A JSON number (not a boolean, not text) that is not NaN or infinite (json accepts NaN)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    return isinstance(v, int) or math.isfinite(v)  # an int of 400 digits is finite (float() of it overflows)


def _digits(v: int) -> str:
    """A large integer shown short: its first 22 digits and how many it has."""
    s = str(v)
    return s if len(s) <= 22 else f"{s[:22]}… ({len(s.lstrip('-'))} digits)"


def _surrogate(v: Any) -> str | None:
    """The first unpaired surrogate of a string, else None."""
    if not isinstance(v, str):
        return None
    try:
        v.encode("utf-8")
    except UnicodeEncodeError as e:
        return v[e.start]
    return None


def _absent_id(v: Any) -> bool:
    """`id` null, empty or blank: the field left out (the row's default id is its line's number)."""
    return v is None or (isinstance(v, str) and not v.strip())


def _text_or_empty(v: Any) -> str:
    return "" if v is None else str(v)


def _benchmark_names() -> set[str]:
    return {*BENCHMARKS, "mmlu-no-hsm", f"mmlu-no-{MMLU_PARSING_ARTEFACT}", "mtbench", "routellm"}


def data_parts(spec: str) -> list[str]:
    """The parts of a DATA argument: split at commas, unless the whole of it names a file (`runs,2026.jsonl` was
    "unknown benchmark 'runs'", though the file was there)."""
    if "," in spec and Path(spec).is_file():
        return [spec]
    return [p.strip() for p in spec.split(",") if p.strip()]


def load_dataset(spec: str, root: str | os.PathLike[str] | None = None) -> OutcomeDataset:
    """A benchmark name, a path to a JSONL file, `routellm` (all three benchmarks), or several of
    these joined by commas (`mmlu,gsm8k,mine.jsonl`): one dataset, each part's outcomes on [0, 1]."""
    parts = data_parts(spec)
    if parts == ["routellm"]:
        parts = list(BENCHMARKS)
    if len(parts) > 1:
        from tierwise.evaluation.dataset import concat, unit_scale

        return concat([unit_scale(load_dataset(p, root)) for p in parts], "+".join(parts))
    if not parts:
        raise DataError("no dataset given")
    spec = parts[0]
    if spec.endswith(".jsonl") or os.sep in spec or (spec not in _benchmark_names() and Path(spec).is_file()):
        # a .csv/.tsv is read by its header, a .json holding an array as its items, any other file as JSONL
        return load_jsonl(spec)
    if spec not in _benchmark_names():
        # `mine` for `mine.jsonl`: the name a file manager shows without its extension
        near = [f"{spec}{ext}" for ext in (".jsonl", ".json", ".csv", ".tsv") if Path(f"{spec}{ext}").is_file()]
        if near:
            raise DataError(f"no file or benchmark {spec!r}; did you mean {' or '.join(f'`{n}`' for n in near)}? "
                            "(a file's path with its extension)")
    else:
        shadowed_file_note(spec, f"the {spec} benchmark")
    return load_benchmark(spec, root)


def shadowed_file_note(name: str, what: str) -> None:
    """A file in the working folder named exactly like a benchmark (or `ledger`) was silently passed over for it:
    say on stderr which was read and how to read the file instead."""
    if Path(name).exists():
        print(f"tierwise: `{name}` is read as {what}, not the file ./{name} in this folder (give "
              f"`./{name}` to read the file)", file=sys.stderr)


def _outcome_pair(rec: Any) -> tuple[float, float] | None:
    """(strong, weak) outcomes of a ledger record, from a judge's annotation or the shadow pair."""
    sh = rec.shadow or {}
    if any(isinstance(side, dict) and side.get("ok") is False for side in (sh.get("strong"), sh.get("weak"))):
        return None  # the shadow call failed: its empty answer says nothing about the model
    out = (rec.extra or {}).get("outcome")
    if isinstance(out, dict) and "strong" in out and "weak" in out:
        return _grades(rec, out["strong"], out["weak"])
    s, w = sh.get("strong") or {}, sh.get("weak") or {}
    if isinstance(s, dict) and isinstance(w, dict) and s.get("outcome") is not None and w.get("outcome") is not None:
        return _grades(rec, s["outcome"], w["outcome"])
    return None


def _grades(rec: Any, strong: Any, weak: Any) -> tuple[float, float] | None:
    """Both outcomes as finite numbers, or None with a line on stderr naming the row: a hand-edited or foreign row
    with `"x"` as a grade ended `eval` on "could not convert string to float" with no row named, and a NaN one
    turned every figure into NaN."""
    try:
        pair = float(strong), float(weak)
    except (TypeError, ValueError):
        pair = (math.nan, math.nan)
    if not all(map(math.isfinite, pair)):
        print(f"tierwise: ledger row {rec.request_id!r}: outcomes strong={strong!r:.40}, weak={weak!r:.40} are not "
              "both numbers; row left out", file=sys.stderr)
        return None
    return pair


def _unjudged_reason(shadow: dict[str, Any]) -> str:
    """Why a shadow pair has no outcomes, as far as the pair says: its `unjudged` reason (the route's judge ran),
    a budget's `skipped`, or a shadow run that failed; "" when it does not say (no `validation`, or written before
    session 38)."""
    if isinstance(shadow.get("unjudged"), str):
        return "not judged: " + str(shadow["unjudged"])[:200]
    if isinstance(shadow.get("skipped"), str):
        return "skipped: " + str(shadow["skipped"])[:200]
    if any(isinstance(shadow.get(t), dict) and shadow[t].get("ok") is False for t in ("strong", "weak")):
        return "whose shadow run failed (no second answer to judge)"
    return ""


def load_ledger(ledger: Any, *, route: str | None = None) -> OutcomeDataset:
    """Queries from the ledger whose two tiers' outcomes are known.

    A record counts when it has a prompt (its own `prompt`, or the shadow pair's) and outcomes
    for both tiers: `extra.outcome = {"strong": x, "weak": y}` (what a judge writes with
    `Ledger.annotate`) or `shadow.strong.outcome` / `shadow.weak.outcome`. The shadow pair's
    answers, when present, become the recorded responses.
    """
    prompts, strong, weak, groups, sr, wr = [], [], [], [], [], []
    unjudged = 0  # shadow pairs whose answers no judge has graded: the usual reason for an empty data set
    reasons: dict[str, int] = {}  # why, as the route recorded it (since session 38), -> pairs
    for rec in ledger.scan(route=route):
        pair = _outcome_pair(rec)
        sh = rec.shadow or {}
        prompt = rec.prompt or sh.get("prompt")
        if pair is None and isinstance(sh.get("strong"), dict) and isinstance(sh.get("weak"), dict):
            unjudged += 1
            why = _unjudged_reason(sh)
            if why:
                reasons[why] = reasons.get(why, 0) + 1
        if pair is None or not prompt:
            continue
        prompts.append(str(prompt))
        strong.append(pair[0])
        weak.append(pair[1])
        groups.append(str(sh.get("of") or rec.request_id))
        sr.append(str((sh.get("strong") or {}).get("answer", "")))
        wr.append(str((sh.get("weak") or {}).get("answer", "")))
    if not prompts:
        if reasons:  # the route has a judge: it ran and graded nothing, so adding one is not the fix
            said = "; ".join(f"{n} {why}" for why, n in sorted(reasons.items(), key=lambda kv: -kv[1])[:5])
            rest = unjudged - sum(reasons.values())
            said += f"; {rest} with no judge (a learned route needs `validation: {{judge: MODEL}}`)" if rest else ""
            raise DataError(f"the ledger has {unjudged} shadow pair(s) but none has both answers graded: {said} "
                            "(docs/routers.md#online-validation)")
        if unjudged:
            raise DataError(f"the ledger has {unjudged} shadow pair(s) but no judge has graded them, so neither "
                            "tier's outcome is known: add `validation: {judge: MODEL}` to the learned route "
                            "(docs/routers.md#online-validation), or set extra.outcome with Ledger.annotate")
        raise DataError("the ledger has no records with both tiers' outcomes: give a learned route "
                        "`shadow_rate` (it runs a sample on the other tier) and `validation: {judge: MODEL}` (a "
                        "judge grades both answers; docs/routers.md#online-validation)")
    return OutcomeDataset("ledger", prompts, np.array(strong), np.array(weak), groups, [""] * len(prompts),
                          strong_responses=sr, weak_responses=wr)
