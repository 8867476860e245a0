"""Differential fuzz (review36f): the recognizers privacy16 changed to try patterns at start positions (secret
assignments, URL credentials, a card run's split) against their code before it (git show 402b4e8f), on random texts
made of cue words, separators, values, long fillers and `İ` (lower-casing changes lengths). Reports texts where the old
code covered a character the new does not ("lost"), and where the new covers more.

    PYTHONPATH=src .venv/bin/python bench/privacy_recognizer_diff.py 60000 2
"""

import importlib.util
import random
import subprocess
import sys
import tempfile
import time

from tierwise.privacy.recognizers import contact as new_c
from tierwise.privacy.recognizers import ids as new_i
from tierwise.privacy.recognizers import secrets as new_s

_OLD = "402b4e8f"


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


_tmp = tempfile.mkdtemp()
for _f in ("secrets", "contact", "ids"):
    with open(f"{_tmp}/old_{_f}.py", "w") as _o:
        _o.write(
            subprocess.run(
                ["git", "show", f"{_OLD}:src/tierwise/privacy/recognizers/{_f}.py"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )
old_s = load("old_secrets", f"{_tmp}/old_secrets.py")
old_c = load("old_contact", f"{_tmp}/old_contact.py")
old_i = load("old_ids", f"{_tmp}/old_ids.py")

CUES = [
    "password",
    "PASSWORD",
    "Pass",
    "pwd",
    "secret",
    "api_key",
    "API-KEY",
    "apikey",
    "access_key",
    "secret_key",
    "client_secret",
    "auth_token",
    "access_token",
    "refresh_token",
    "private_key",
    "token",
    "Token",
    "passwort",
    "kennwort",
    "lösenord",
    "mot de passe",
    "contraseña",
    "bearer",
    "Bearer",
    "basic",
    "key",
    "passphrase",
    "DB_PASSWORD",
]
SEPS = ["=", ":", " = ", ": ", " is ", "=>", '"=', "': '", "  :  ", '= "', " ", "_", "-"]
VALS = [
    "hunter2abc",
    "s3cr3tValue99",
    "abcdefghijklmnop1234",
    "enabled",
    "${X}",
    "<pw>",
    "x",
    "AbC/def+ghi=jkl012345",
    "ab,cd",
    "q" * 210,
]
FILL = [
    " " * 250,
    "a" * 255,
    "x" * 19 + " ",
    "",
    " ",
    "\n",
    "a",
    "ab_",
    "x=",
    "xx ",
    "İ",
    "é",
    "_",
    "my",
    "the ",
    "://",
    "https://u:p@h ",
    "'",
    '"',
    ";",
]


def piece(r):
    k = r.random()
    if k < 0.35:
        return r.choice(CUES)
    if k < 0.55:
        return r.choice(SEPS)
    if k < 0.75:
        return r.choice(VALS)
    if k < 0.85:
        return "".join(r.choice("abcXYZ019 _-=:'\"") for _ in range(r.randint(1, 30)))
    return r.choice(FILL)


def cover(fs):
    s = set()
    for f in fs:
        s.update(range(f.start, f.end))
    return s


def main(n, seed):
    r = random.Random(seed)
    so, sn = old_s.SecretRecognizer(), new_s.SecretRecognizer()
    lost = same = more = 0
    examples = []
    t_old = t_new = 0.0
    for _k in range(n):
        text = "".join(piece(r) for _ in range(r.randint(1, 40)))
        if r.random() < 0.1:
            text = text * r.randint(2, 5)
        a = time.perf_counter()
        fo = list(so.find(text))
        b = time.perf_counter()
        fn = list(sn.find(text))
        c = time.perf_counter()
        t_old += b - a
        t_new += c - b
        co, cn = cover(fo), cover(fn)
        if co - cn:
            lost += 1
            if len(examples) < 8:
                examples.append(
                    (text, sorted((f.start, f.end) for f in fo), sorted((f.start, f.end) for f in fn))
                )
        elif cn - co:
            more += 1
        else:
            same += 1
    print(
        f"secrets: {n} texts seed {seed}: lost {lost}, same {same}, new covers more {more}; old {t_old:.2f}s new {t_new:.2f}s"
    )
    for e in examples:
        print(repr(e[0][:300]), "\n  old", e[1], "\n  new", e[2])
    # URL credentials and cards
    uo, un = old_c.UrlCredentialsRecognizer(), new_c.UrlCredentialsRecognizer()
    co_, cn_ = old_i.CardRecognizer(), new_i.CardRecognizer()
    d_url = d_card = 0
    for _k in range(n):
        text = "".join(
            r.choice(["://", "a", "b:", "@", "/", " ", "h.c", "x", "http", "s3://", ":p", "?", "#", "u"])
            for _ in range(r.randint(1, 60))
        )
        fo = sorted((f.start, f.end) for f in uo.find(text))
        fn = sorted((f.start, f.end) for f in un.find(text))
        if fo != fn:
            d_url += 1
            if d_url < 4:
                print("URL", repr(text), fo, fn)
        digits = "".join(r.choice("0123456789 -4") for _ in range(r.randint(10, 60)))
        if r.random() < 0.3:
            digits = "4111 1111 1111 1111" + r.choice([" ", "-", ""]) + digits
        fo = sorted((f.start, f.end) for f in co_.find(digits))
        fn = sorted((f.start, f.end) for f in cn_.find(digits))
        if fo != fn:
            d_card += 1
            if d_card < 4:
                print("CARD", repr(digits), fo, fn)
    print(f"url differences {d_url} / {n}; card differences {d_card} / {n}")


main(int(sys.argv[1]), int(sys.argv[2]))
