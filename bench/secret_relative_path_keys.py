"""Keys shaped like relative paths, and relative paths that are not keys (session 35, review35e).

newuser35 read relative paths whose parts are words with at most a leading capital, or all-capital names, as paths,
not random text (Codex's `r0/skill-creator/SKILL.md`); bench/secret_random_slashes.py measured its recall cost on
random base64 only, where a part almost never has that shape. A key of lower case and digits (base36, hex) after a
capitalised part has it: in a URL (`https://api.example.com/v1/Keys/<key>`, the token is `com/v1/Keys/<key>`) or under
a prefix (`vault/Prod/<key>`). Compare checkouts: `PYTHONPATH=<checkout>/src .venv/bin/python
bench/secret_relative_path_keys.py`. Seeded: the same keys in every run.
"""

from __future__ import annotations

import random
import string

from tierwise.privacy.recognizers.secrets import SecretRecognizer

L36 = string.ascii_lowercase + string.digits
PATHS = [  # relative paths a coding agent's prompt holds, each with a digit and a capital (else never entropic)
    "r0/skill-creator/SKILL.md", "r1/openai-docs/SKILL.md", "r2/skill-installer/SKILL.md", "r3/plugin-creator/SKILL.md",
    "tests/fixtures/Sample2024/README.md", "build/x86_64-linux/Release/app2", "releases/2026-12-07/CHANGELOG.md",
    "data/raw/20261207143055/Export.csv", "models/Qwen2/qwen2-7b-instruct-q4km/README.md", "docs/v2/Guide/AGENTS.md",
    "src/app/Handlers/user_v2/Index.ts", "assets/icons/Logo512/favicon-32x32.png",
]


def main() -> None:
    r = SecretRecognizer()
    rng = random.Random(7)
    forms = {
        "https://api.example.com/v1/Keys/<24 base36>": lambda k: "https://api.example.com/v1/Keys/" + k(24),
        "https://hooks.example.net/Tokens/<32 hex>": lambda k: "https://hooks.example.net/Tokens/" + rng.randbytes(16).hex(),
        "vault/Prod/<20 base36>": lambda k: "vault/Prod/" + k(20),
    }
    n = 5000
    for name, make in forms.items():
        caught = sum(next(iter(r.find("value: " + make(lambda m: "".join(rng.choice(L36) for _ in range(m))))), None)
                     is not None for _ in range(n))
        print(f"{name}: caught {caught:,} of {n:,}")
    flagged = [p for p in PATHS if next(iter(r.find(f"(file: {p})")), None) is not None]
    print(f"relative paths taken for secrets: {len(flagged)} of {len(PATHS)} {flagged}")


if __name__ == "__main__":
    main()
