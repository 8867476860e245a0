"""Ids are unique within a process and across a fork (the child draws a new prefix)."""

from __future__ import annotations

import os

from tierwise.ids import new_id


def test_ids_are_unique_and_keep_their_kind() -> None:
    ids = [new_id("msg_") for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert all(i.startswith("msg_") and len(i) == len("msg_") + 24 for i in ids)


def test_a_forked_child_does_not_repeat_the_parents_ids() -> None:
    new_id("x_")  # the parent has handed out ids before the fork
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        os.write(w, new_id("x_").encode())
        os._exit(0)
    os.close(w)
    child = os.read(r, 100).decode()
    os.close(r)
    os.waitpid(pid, 0)
    parent = new_id("x_")
    assert child[:14] != parent[:14]  # different per-process prefix
