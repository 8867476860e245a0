"""The ledger file's `budget_spend` rows of processes no longer running (`budgets/spend_file.py`,
`budgets/spend_members.py`). Before session 34 (costs6) each start of a gateway process added a copy of its spend
mirror under a new member, kept until the counters' windows ended: a gateway restarted every hour piled up a copy an
hour, all read at the next emptying. Now each start folds the rows of the processes no longer running (the kernel's
`flock` on each process's own lock file tells which) into one member's, which RESTORE counts as it counted them:
the spend the restarted deployment gets back is the same. Real gateways, the openai SDK, Redis db 10."""

from __future__ import annotations

import sqlite3

from tests.budgets.test_store_emptied import COST, REDIS_URL, _config, _spend, _used, prefix  # noqa: F401,F811
from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, oai, openai_up  # noqa: F401 (the same fixtures)
from tests.harness import GatewayServer, drop_redis_keys, make_config, wait_for


def _start(openai_up, anthropic_up, prefix, tmp_path):  # noqa: F811
    cfg = _config(openai_up, anthropic_up, prefix)
    cfg["ledger"] = {"path": str(tmp_path / "ledger.db")}
    return GatewayServer(make_config(cfg, tmp_path)).start()


def _rows(tmp_path) -> dict[str, int]:
    db = sqlite3.connect(tmp_path / "ledger.db")
    try:
        return dict(db.execute("SELECT member, count(*) FROM budget_spend GROUP BY member").fetchall())
    finally:
        db.close()


def _saved(g, tmp_path) -> None:
    """Wait until `g`'s own rows are in the file."""
    store = g.gateway.spend.store
    wait_for(lambda: store.member in _rows(tmp_path))


def _answer_and_stop(openai_up, anthropic_up, prefix, tmp_path, n: int) -> None:  # noqa: F811
    """A gateway started on the file, `n` requests answered, its rows in the file, stopped."""
    g = _start(openai_up, anthropic_up, prefix, tmp_path)
    try:
        assert _spend([oai(g)], n) == n
        _saved(g, tmp_path)
    finally:
        g.stop()


def test_restarts_leave_one_fold_and_the_restore_counts_the_same(openai_up, anthropic_up, prefix,  # noqa: F811
                                                                  tmp_path):
    anthropic_up.default = Reply(text="answer " * 50, usage=(100, 400))
    _answer_and_stop(openai_up, anthropic_up, prefix, tmp_path, 3)
    for _ in range(5):  # restarted five times, the store kept its data; one answer each time
        _answer_and_stop(openai_up, anthropic_up, prefix, tmp_path, 1)
    rows = _rows(tmp_path)
    # Before (session 34): one member per start, six of them, each with a copy of the counter
    assert len(rows) <= 2, f"{len(rows)} members' rows kept after 6 starts: {rows}"
    drop_redis_keys(REDIS_URL, prefix)  # the deployment restarted with its Redis emptied
    g = _start(openai_up, anthropic_up, prefix, tmp_path)
    try:
        # 8 answers make the $0.05 cap: 8 were answered, so the budget is spent (the 'remaining' overrun: one more)
        more = _spend([oai(g)], 4)
        assert more <= 1, f"{more} answered after the restart: ${(8 + more) * COST:.4f} of $0.05"
        assert _used(g) >= 8 * COST - 1e-9
    finally:
        g.stop()


def test_a_running_process_rows_are_not_folded(openai_up, anthropic_up, prefix, tmp_path):  # noqa: F811
    """Two processes of one ledger file (`--workers 2`): the one restarting folds the dead, never the running one's
    rows (its live offer and its rows would then count its settlements twice at the next emptying)."""
    anthropic_up.default = Reply(text="answer " * 50, usage=(100, 400))
    a = _start(openai_up, anthropic_up, prefix, tmp_path)
    try:
        assert _spend([oai(a)], 2) == 2
        _saved(a, tmp_path)
        for _ in range(3):
            _answer_and_stop(openai_up, anthropic_up, prefix, tmp_path, 1)
        b = _start(openai_up, anthropic_up, prefix, tmp_path)  # (its start folds the stopped ones)
        try:
            _saved(b, tmp_path)
            rows = _rows(tmp_path)
            assert a.gateway.spend.store.member in rows
            assert len(rows) <= 3, rows  # a, b and one fold
        finally:
            b.stop()
    finally:
        a.stop()
    drop_redis_keys(REDIS_URL, prefix)
    g = _start(openai_up, anthropic_up, prefix, tmp_path)
    try:
        wait_for(lambda: _used(g) >= 5 * COST - 1e-9)
        assert _spend([oai(g)], 3) == 3  # 5 + 3: the cap, not more
        assert _spend([oai(g)], 2) <= 1
    finally:
        g.stop()


def test_a_process_is_alive_while_it_runs_and_dead_once_killed(tmp_path):
    """The kernel decides: a process holding its member's lock is alive, paused or not; SIGKILLed, it is dead."""
    import os
    import signal
    import subprocess
    import sys

    from tierwise.budgets.spend_members import Members

    member = "ab" * 16
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from tierwise.budgets.spend_members import Members; "
         f"Members({str(tmp_path / 'ledger.db')!r}).hold({member!r}); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True, env={**os.environ})
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        members = Members(str(tmp_path / "ledger.db"))
        child.send_signal(signal.SIGSTOP)  # (paused: still its lock)
        with members.dead({member, "cd" * 16}, own="") as dead:
            assert dead == {"cd" * 16}  # (no lock file: a member of an older gateway, or a fold)
        child.kill()
        child.wait(10)
        with members.dead({member}, own="") as dead:
            assert dead == {member}
        assert not os.path.exists(tmp_path / "ledger.db.spend" / (member + ".lock"))  # (its file removed)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)


def test_a_process_that_keeps_the_offer_lock_hangs_no_request(openai_up, anthropic_up, prefix, tmp_path):  # noqa: F811
    """A process stopped while it holds the file's offer lock (SIGSTOP, a debugger): a starting gateway's first
    admission waits for its offer of the file, which waited for the lock for ever (its requests hung). Now it waits
    `spend_members.OFFER_WAIT` at most, offers without the lock and folds nothing."""
    import os
    import subprocess
    import sys

    import openai

    anthropic_up.default = Reply(text="answer " * 50, usage=(100, 400))
    os.makedirs(tmp_path / "ledger.db.spend", exist_ok=True)
    child = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, time; "
         f"fd = os.open({str(tmp_path / 'ledger.db.spend' / 'offer.lock')!r}, os.O_RDWR | os.O_CREAT); "
         "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(120)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        g = _start(openai_up, anthropic_up, prefix, tmp_path)
        try:
            client = openai.OpenAI(base_url=g.url + "/v1", api_key="x", max_retries=0, timeout=60)
            try:  # before: no answer (the admission waited for the lock until the holder let go)
                client.chat.completions.create(model="main", max_tokens=400,
                                               messages=[{"role": "user", "content": "question"}])
            except openai.APITimeoutError:
                raise AssertionError("the request hung behind another process's offer lock") from None
        finally:
            child.kill()  # (lets a blocked lock go, so the gateway can stop)
            child.wait(10)
            g.stop()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
