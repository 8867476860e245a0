"""RouteLLM's evaluation data (GPT-4-1106-preview vs Mixtral-8x7B-Instruct on MMLU, GSM8K and
MT-Bench), which `tierwise eval` and `tierwise replay-serve` read.

The source is the public RouteLLM repository (lm-sys/RouteLLM on GitHub, Apache-2.0), pinned to
one commit; the files are fetched from its raw-file host and each is checked against the size and
SHA-256 below (recorded from the files at that commit). Hugging Face's `routellm/*` data sets hold
RouteLLM's router *training* data, not these per-question outcomes, so they are not used here.

Where the data goes: the folder `routellm-gpt4-mixtral/` under `--to`, else `$TIERWISE_DATA`, else
`~/.local/share/tierwise/data` (`$XDG_DATA_HOME/tierwise/data`); `evaluation.loaders.data_root`
looks in those places, after `../shared/data`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from tierwise.datasets.fetch import RemoteFile, fetch_all, matches

FOLDER = "routellm-gpt4-mixtral"
REPO = "lm-sys/RouteLLM"
COMMIT = "0b64fdafe049e596a3f5657c219329f24af24198"
BASE_URL = f"https://raw.githubusercontent.com/{REPO}/{COMMIT}/"
BASE_URL_ENV = "TIERWISE_ROUTELLM_URL"  # a mirror holding the same paths (the tests' loopback server)
MAX_TOTAL_BYTES = 64 << 20  # the files add up to about 12 MB

# (path under FOLDER, size in bytes, SHA-256[, path in the repository when not routellm/evals/<path>])
FILES: tuple[tuple[str, int, str] | tuple[str, int, str, str], ...] = (
    ("commercial_mt_bench/gpt-4_single.jsonl", 1291533, "891e597c31754228e6d52a88a1fc1946e8ef66cf6caa1a8ef33206fb02f483c3", "benchmarks/mt-bench/gpt-4_single.jsonl"),
    ("commercial_mt_bench/martian.jsonl", 174023, "e0bba32ddb332ffb05edf4ae0b6f4b780948faaa7c0279da2a7c06222511d86b", "benchmarks/mt-bench/martian.jsonl"),
    ("commercial_mt_bench/unify.jsonl", 243281, "8c991046cda4e50d00eff985997433fd8fed90957e8be0f7c1e1ac7be37a4de9", "benchmarks/mt-bench/unify.jsonl"),
    ("gsm8k/contaminated_prompts.jsonl", 6282, "1f5a7be02148ee0f7f306d233ba76a6573c826cee9499a34f8ef938a1a84c234"),
    ("gsm8k/gsm8k_responses.csv", 1291062, "1f38ed03db354a020f71e92022383dc3cf37bbf2694dea4daaeea7b6c43fe57b"),
    ("gsm8k/test.jsonl", 749738, "3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14"),
    ("mmlu/contaminated_prompts.jsonl", 4498, "9606c968198eabf5efa46ccba31286392c8e35525d83c86661618ffc5ec6d40e"),
    ("mmlu/responses/mmlu_abstract_algebra.csv", 20003, "67e564eea42e71fbfcaf616972df952c316e5538376da1c16d691177458b96b9"),
    ("mmlu/responses/mmlu_anatomy.csv", 33922, "53ebea8257805eeecc25713728264b8235cffad7b720962a3eafc92fd27ef537"),
    ("mmlu/responses/mmlu_astronomy.csv", 47647, "49915ece9dfe8aadbd351f221ada2ea86b6f832ce49fa64d1622a0f066c19794"),
    ("mmlu/responses/mmlu_business_ethics.csv", 33854, "13a45bed754ffe8f0e7f0348e69085c648a1ae0e91aa76cd5e6906fa45f7ec8e"),
    ("mmlu/responses/mmlu_clinical_knowledge.csv", 64226, "5ea37709bfbad4df7a3fcbd8973413f7645a2adfef9772490f09d3f293ffe882"),
    ("mmlu/responses/mmlu_college_biology.csv", 49612, "c38620db5b9f6f1b0fde7bc8d8299b8e2305c4dacbb1567c904cd51618d627d5"),
    ("mmlu/responses/mmlu_college_chemistry.csv", 25362, "78ca6ba22ff25c8fdb93e1c6e84384e72522106c73ed5ee9fed620928ce395ce"),
    ("mmlu/responses/mmlu_college_computer_science.csv", 43299, "8a7b2a87a36b428c9d1a8f12ce3b01cf7920f0a7146d6f8a111da6749c332da3"),
    ("mmlu/responses/mmlu_college_mathematics.csv", 25385, "3f22f42779c48509c66e21d7d1fc3054eb0256c1b5b772bb6d9a3af1b253238b"),
    ("mmlu/responses/mmlu_college_medicine.csv", 83407, "63d71d29e630fc6538e1705a51f4267bdbbdea0fa7ee85056ad7d6f8f10d3987"),
    ("mmlu/responses/mmlu_college_physics.csv", 30851, "8162a0660d4ef7b963088e0a176d4b8630096127a0d0b5ed003f649cbad34455"),
    ("mmlu/responses/mmlu_computer_security.csv", 27712, "26446faf7460f03aa2d82a05c170faedb5cbf6d7bdda133b1146229107097d1c"),
    ("mmlu/responses/mmlu_conceptual_physics.csv", 42034, "ea40473704b64cb60d564ffe91962848ec6fc3106b40089d08cebc98d5c7226d"),
    ("mmlu/responses/mmlu_econometrics.csv", 47278, "927b4d877cec8697f3b8378bb7e7c7a279babaea2edacf350ea50908701907b9"),
    ("mmlu/responses/mmlu_electrical_engineering.csv", 26003, "de2fb7c2e9addb4808f5b3f7c79efbfdfb86216235bb7dc28ab70bc53664f11e"),
    ("mmlu/responses/mmlu_elementary_mathematics.csv", 72419, "88697ff0d238b5852c7a959379dc8b0b45c3554ed4b2ee7cbb7ffc34e06c7cf5"),
    ("mmlu/responses/mmlu_formal_logic.csv", 50588, "094a462626468569ad595c03e66e73a299188cfa175248b499dba94e005506e6"),
    ("mmlu/responses/mmlu_global_facts.csv", 19055, "6f75ddf7d6eb94ac0471529a85ff7f8b738c9f4055185b3114eed26393222d06"),
    ("mmlu/responses/mmlu_high_school_biology.csv", 111417, "444982fc2c750ab8cbc6942a0c0267040aa5023c1d2364247d20e2a28b4e325d"),
    ("mmlu/responses/mmlu_high_school_chemistry.csv", 59694, "ae5e62479365dcd056354c568f60da65b1df9f1de57dda3953a8e9933a6f12e4"),
    ("mmlu/responses/mmlu_high_school_computer_science.csv", 45133, "d156d9448a6e899f7f976a0afac148a928bf709a2baa573f0c407854a25bdb11"),
    ("mmlu/responses/mmlu_high_school_european_history.csv", 271527, "c64afd6c5e30ef0cd5c10beab961ac05e7ba55d6b48cd93bf6ad0a45f90515bf"),
    ("mmlu/responses/mmlu_high_school_geography.csv", 43125, "21b12044be4a6b9813880ad46372006dc0846e7f85fa46883bb73dbd90fba30a"),
    ("mmlu/responses/mmlu_high_school_government_and_politics.csv", 67164, "2791689acc61775a5857f4f3a5fd248d30552553c3a96f6ee63dc28285437259"),
    ("mmlu/responses/mmlu_high_school_macroeconomics.csv", 119896, "73b931a2a06ba74a5c9f1e005d45a25004e36be5d075d98f8ebcf89b3fda367b"),
    ("mmlu/responses/mmlu_high_school_mathematics.csv", 56703, "151b2a736981b7b20f3bad99de6a573e4692d68cf87020e943b601b70bb37390"),
    ("mmlu/responses/mmlu_high_school_microeconomics.csv", 77019, "f7ea151efb4c9d96374db3358ac7e97e4d8349e26715f61dac98bc9d854ca046"),
    ("mmlu/responses/mmlu_high_school_physics.csv", 60489, "1e2103fc8f7f1cfac7c00952b26db2418acab092486af78a9c51c551ae2ff9be"),
    ("mmlu/responses/mmlu_high_school_psychology.csv", 162370, "d11604f2c7a2425258d5b9a285ef71737c011cc3a91456890f088a0ee4c55212"),
    ("mmlu/responses/mmlu_high_school_statistics.csv", 112040, "de6642bcd93d7a80e7bbd73d987a44d67b6e537b47749ddc518122fd582703bb"),
    ("mmlu/responses/mmlu_high_school_us_history.csv", 298464, "a71186d143363e203b2f216d78c9d21f10cca51de455ef176c9c01b77f546592"),
    ("mmlu/responses/mmlu_high_school_world_history.csv", 380424, "e9c52305977dc37b3e48eee727ad933b2d24d96ca3a06aec865a8900b1e87d2c"),
    ("mmlu/responses/mmlu_human_aging.csv", 47361, "0d6c4109b4f61f138781ce50bbc60ff2e90dd451694d3926a088be5a5bd88aa8"),
    ("mmlu/responses/mmlu_human_sexuality.csv", 32866, "20916037e3012731883f926738daf47ed994f74ba25518fdb7f0df72a81143fd"),
    ("mmlu/responses/mmlu_international_law.csv", 54224, "e389b886e3e1570bfdf798f6f56dc3c675350200c5baf0f41a0766294ff312eb"),
    ("mmlu/responses/mmlu_jurisprudence.csv", 34614, "7e94c3849231be7b2654db11e44ee51531f8474e300fe83b1e05438df3038f0b"),
    ("mmlu/responses/mmlu_logical_fallacies.csv", 51102, "fa2d94cd2e901621aaebd0a7e64560b5dbbe4249086795398533eed2561c0c1e"),
    ("mmlu/responses/mmlu_machine_learning.csv", 34575, "9301e928481be6e20b3541e1ac112b25a4a71338b21592978c0d219cb6240020"),
    ("mmlu/responses/mmlu_management.csv", 20594, "a00b12ab0265918f9335a85ce02303ddaea0491a7b099f88a05986eeac4aa4fb"),
    ("mmlu/responses/mmlu_marketing.csv", 64281, "3ee0b6560ebe0eb4f14ce63227d6f6ec8cb8b6e57e345eae9460be742672f36c"),
    ("mmlu/responses/mmlu_medical_genetics.csv", 21444, "7c830f87dcbc0029137b3400cf361931831cb57dda55717a64e72ad74663d5df"),
    ("mmlu/responses/mmlu_miscellaneous.csv", 151860, "c2e1a5b0394a8429f55b6340e1865166ac17ec6b3571523005e413b3b2843b9f"),
    ("mmlu/responses/mmlu_moral_disputes.csv", 109870, "8b2b973b1987b724f39fd10970604d7f1150747a0db9ce766c193bd978c9d0c4"),
    ("mmlu/responses/mmlu_moral_scenarios.csv", 379235, "78ded6fdca1cd0d5c4ed16a5ed4aebf2e98401b9c00b20e565e6cce5bf1153c7"),
    ("mmlu/responses/mmlu_nutrition.csv", 94113, "ba197fbf4b6c5034414d66ea7747211056cf5f709f83d919d2d856245720cc51"),
    ("mmlu/responses/mmlu_philosophy.csv", 81836, "2f30ad01ab529ddea00dff4ff87e950fef838a78754c94f6884120628a7d0591"),
    ("mmlu/responses/mmlu_prehistory.csv", 91362, "afc816d4b78814627bae9b8c3730a9bb72bd958ff6259fd36c981777cfe83753"),
    ("mmlu/responses/mmlu_professional_accounting.csv", 126233, "fe5ee976a625832ecf624086103619523d063a3a728c60681b6a53c55b638a37"),
    ("mmlu/responses/mmlu_professional_law.csv", 1902501, "60a4308df4f481ff8840590b29061835207b50a9f06a9fc68baf12b114f7e2e0"),
    ("mmlu/responses/mmlu_professional_medicine.csv", 219104, "6fda30b523e4e2ce8b1f18e871a0722190a4ac81ec377a75fbba4a63e0b510f7"),
    ("mmlu/responses/mmlu_professional_psychology.csv", 229411, "bfb3a7fb653e2b195d3fa258894af64d3f1c3dbd4059c1e0feb728131d20f9b3"),
    ("mmlu/responses/mmlu_public_relations.csv", 29421, "2196279ea2535fbda62509c3156209b764459a3d515a9ba84b69cf16bb4c27d0"),
    ("mmlu/responses/mmlu_security_studies.csv", 206239, "1354bb17649f95b7dd8ef3179e22329abe6bef84e639d63370ae9e80b2509905"),
    ("mmlu/responses/mmlu_sociology.csv", 67343, "903ba6259b13f2877607abef22b7b19cb575104268d4ced615e3129d3caafb47"),
    ("mmlu/responses/mmlu_us_foreign_policy.csv", 29024, "f1c1d266753a3f161e2018c16c6948fb78c7f5e506a10b4fc0441049962a6c69"),
    ("mmlu/responses/mmlu_virology.csv", 39794, "d525f1ba88982befd42140e73822fe940e73db82bbdcdd569d95f26c3dd41e68"),
    ("mmlu/responses/mmlu_world_religions.csv", 26268, "49dc00d44e069ecaac6a7f7e2188f4a8bce5df56ee91bb15f55519d07f64af8e"),
    ("mt_bench/contaminated_prompts.jsonl", 2694, "a77356ecd7cab6ba9bfb6d7b91c512f83aee4f82309934387a6cdfb915882109"),
    ("mt_bench/judgements.jsonl", 1417551, "ffd1d44e7af835c810d35ebd420b88a47acd8aac850f46b149b9889964ae4478"),
    ("mt_bench/question.jsonl", 48929, "119565adbab82227089cefdb44c8d7e2cf04dc0a0ec233634c82e7d4e2a944f7"),
)


def manifest(base_url: str | None = None) -> list[RemoteFile]:
    base = base_url or os.environ.get(BASE_URL_ENV) or BASE_URL
    base = base if base.endswith("/") else base + "/"
    out = []
    for row in FILES:
        path, size, digest = row[0], row[1], row[2]
        repo_path = row[3] if len(row) == 4 else f"routellm/evals/{path}"  # type: ignore[misc]
        out.append(RemoteFile(path, size, digest, base + repo_path))
    return out


def default_root() -> Path:
    """Where `tierwise data get` puts data when neither `--to` nor $TIERWISE_DATA says."""
    if os.environ.get("TIERWISE_DATA"):
        return Path(os.environ["TIERWISE_DATA"])
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "tierwise" / "data"


def missing(root: Path) -> list[str]:
    """The files under `root/FOLDER` that are absent or differ from the manifest."""
    return [f.path for f in manifest() if not matches(root / FOLDER / f.path, f)]


def get(root: Path, *, base_url: str | None = None, progress: Callable[[str], None] = lambda _: None) -> list[str]:
    """Fetch what is missing into `root/FOLDER`; returns the files downloaded."""
    return fetch_all(manifest(base_url), root / FOLDER, max_total_bytes=MAX_TOTAL_BYTES, progress=progress)
