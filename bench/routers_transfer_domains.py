"""Leave-one-MMLU-category-out (issue 22): a domain shift inside one benchmark, closer to a many-domain
multiple-choice test set than the three RouteLLM benchmarks are to each other. Train on GSM8K + MT-Bench +
MMLU without one of its four categories (STEM, humanities, social sciences, other, as in the MMLU
repository's categories), score the category left out; APGR with a 95% bootstrap interval, and whether the
router is above random with confidence. A check of routers already chosen, not a way of choosing them.

    TIERWISE_DATA=/work/shared/data OMP_NUM_THREADS=1 .venv/bin/python bench/routers_transfer_domains.py \
        --routers linear,transfer-lsa --ci 300 [--drop-hsm]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from routers_transfer import build, cell  # bench/ is on sys.path when this script runs

from tierwise.evaluation.baselines import prompt_length_scores, random_scores
from tierwise.evaluation.dataset import concat, unit_scale
from tierwise.evaluation.loaders import load_benchmark
from tierwise.routers.embedding_cache import EmbeddingCache

CATEGORIES = {
    "stem": ("abstract_algebra", "anatomy", "astronomy", "college_biology", "college_chemistry",
             "college_computer_science", "college_mathematics", "college_physics", "computer_security",
             "conceptual_physics", "electrical_engineering", "elementary_mathematics", "high_school_biology",
             "high_school_chemistry", "high_school_computer_science", "high_school_mathematics",
             "high_school_physics", "high_school_statistics", "machine_learning"),
    "humanities": ("formal_logic", "high_school_european_history", "high_school_us_history",
                   "high_school_world_history", "international_law", "jurisprudence", "logical_fallacies",
                   "moral_disputes", "moral_scenarios", "philosophy", "prehistory", "professional_law",
                   "world_religions"),
    "social sciences": ("econometrics", "high_school_geography", "high_school_government_and_politics",
                        "high_school_macroeconomics", "high_school_microeconomics", "high_school_psychology",
                        "human_sexuality", "professional_psychology", "public_relations", "security_studies",
                        "sociology", "us_foreign_policy"),
    "other": ("business_ethics", "clinical_knowledge", "college_medicine", "global_facts", "human_aging",
              "management", "marketing", "medical_genetics", "miscellaneous", "nutrition",
              "professional_accounting", "professional_medicine", "virology"),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--routers", default="linear,transfer-lsa")
    ap.add_argument("--ci", type=int, default=300)
    ap.add_argument("--drop-hsm", action="store_true",
                    help="leave MMLU high-school mathematics (GPT-4's 3%%: a parsing artefact) out everywhere")
    args = ap.parse_args()
    mmlu = load_benchmark("mmlu")
    assert sorted(s for c in CATEGORIES.values() for s in c) == sorted(set(mmlu.subjects)), "57 subjects, once each"
    if args.drop_hsm:
        mmlu = mmlu.without_subjects(["high_school_mathematics"], name="mmlu")
    rest = [unit_scale(load_benchmark(n)) for n in ("gsm8k", "mt-bench")]
    subj = np.array(mmlu.subjects)
    rows: dict[str, dict[str, str]] = {}
    for cat, members in CATEGORIES.items():
        inside = np.isin(subj, members)
        test = mmlu.where(inside, cat)
        train = concat([unit_scale(mmlu.where(~inside, "mmlu")), *rest], f"all-but-{cat}")
        rows.setdefault("random", {})[cat] = cell(random_scores(test, 0), test, args.ci)
        rows.setdefault("prompt-length", {})[cat] = cell(prompt_length_scores(test), test, args.ci)
        for spec in [s for s in args.routers.split(",") if s]:
            t0 = time.time()
            r = build(spec, EmbeddingCache(None)).fit(train)
            rows.setdefault(spec, {})[cat] = cell(r.score(test), test, args.ci)
            print(f"<!-- {spec} → {cat} ({len(test)} questions): {time.time() - t0:.0f} s -->", flush=True)
    cats = list(CATEGORIES)
    print("\n| router | " + " | ".join(f"{c} ({int(np.isin(subj, CATEGORIES[c]).sum())})" for c in cats) + " |")
    print("|---|" + "---|" * len(cats))
    for k, r in rows.items():
        print(f"| {k} | " + " | ".join(r[c] for c in cats) + " |")


if __name__ == "__main__":
    main()
