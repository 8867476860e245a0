"""What an older secret scrubber redacted that this tree's misses: a corpus of key shapes (provider keys, bearer
tokens, JSON fields, URL keys and passwords, keys side by side, at and past the 4,096-character window, after long
key names) and 20,000 random mixtures of anchors and runs, each scrubbed by both; a character the old one covered
and the new one does not is printed (a regression).

    git show 6948d33:src/tierwise/secret_scrub.py > /tmp/old_scrub.py
    PYTHONPATH=src .venv/bin/python bench/scrub_old_vs_new.py /tmp/old_scrub.py
"""

from __future__ import annotations

import importlib.util
import random
import string
import sys

from tierwise import secret_scrub as new


def _load(path: str):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("old_scrub", path)
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def _chars(spans: list[tuple[int, int]]) -> set[int]:
    return {i for s, e in spans for i in range(s, e)}


def main() -> None:
    old_s, new_s = _load(sys.argv[1]).SecretScrubber(), new.SecretScrubber()
    rng = random.Random(1)
    an = string.ascii_letters + string.digits

    def r(n: int) -> str:
        return "".join(rng.choice(an) for _ in range(n))

    cases = {
        "openai": "key sk-" + r(48), "proj": "sk-proj-" + r(60), "ant": "x sk-ant-api03-" + r(90),
        "aiza": "AIza" + r(35), "bearer": "Authorization: Bearer " + r(40), "json": f'{{"api_key": "{r(30)}"}}',
        "url ?key=": f"https://x.com/v1?key={r(39)}&a=b", "user:pass@": f"redis://user:{r(20)}@host:6379",
        "side by side": f"sk-{r(40)} sk-{r(40)} AIza{r(35)}", "joined": f"sk-{r(40)}sk-{r(40)}",
        "key name of 120": "password" + "_for_the_production_database" * 4 + "=" + r(20),
        "key name of 72": "api_key" + "_" * 65 + "=" + r(20),
        "sk- at 4,096": "sk-" + r(4093) + " sk-" + r(40), "sk- of 5,000": "sk-" + r(5000),
        "api_key= 5,000": "api_key=" + r(5000), "bearer 6,000": "Bearer " + r(6000),
        "jwt in jwt": "eyJ" + r(20) + "." + "eyJ" + r(300) + "." + r(40) + "." + r(40),
        "url user 5,000": "redis://u" + r(5000) + ":" + r(20) + "@h/0",
        "x-api-key ×500 then key": "x-api-key" * 500 + ": " + r(30), "password= ×600": "password=" * 600 + r(30),
    }
    for name, t in cases.items():
        lost = _chars(old_s.spans(t)) - _chars(new_s.spans(t))
        print(f"{'REGRESSION' if lost else 'same or more'}: {name}" + (f" ({len(lost):,} characters)" if lost else ""))
    pieces = ["sk-", "sk-ant-", "AIza", "Bearer ", "api_key", "password", "=", ": ", '"', "://u:", "@", "eyJ", ".",
              " ", "&key=", "x-api-key", "token=", "_", "-"]
    worse = 0
    for _ in range(20_000):
        t = "".join(rng.choice(pieces) if rng.random() < .4 else r(rng.randint(1, 300 if rng.random() < .9 else 4500))
                    for _ in range(rng.randint(1, 12)))
        worse += bool(_chars(old_s.spans(t)) - _chars(new_s.spans(t)))
    print(f"random mixtures where the old one redacted a character the new one does not: {worse} of 20,000")


if __name__ == "__main__":
    main()
