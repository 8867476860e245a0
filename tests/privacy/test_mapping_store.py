"""The encrypted conversation mapping store (tierwise.privacy.mapping_store): TTL, size bound,
sealing (nothing in clear in the file, repr or logs), and the conversation key."""

from __future__ import annotations

import logging

import pytest

from tierwise.canonical import Message, Request, TextBlock
from tierwise.privacy.mapping_store import MappingStore, conversation_key
from tierwise.privacy.redact import Pseudonymizer

VALUES = ["Jane Doe", "jane.doe@example.org", "4111 1111 1111 1111"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _mapping() -> Pseudonymizer:
    p = Pseudonymizer(surrogate_entities=["CREDIT_CARD"])
    for entity, value in zip(["PERSON", "EMAIL_ADDRESS", "CREDIT_CARD"], VALUES, strict=True):
        p.stand_in(entity, value)
    return p


@pytest.mark.parametrize("on_disk", [False, True])
def test_round_trip_and_ttl(tmp_path, on_disk):
    clock = Clock()
    store = MappingStore(b"k" * 32, ttl_s=60, path=tmp_path / "m.db" if on_disk else None, clock=clock)
    p = _mapping()
    assert store.save("conv", p)
    q = store.load("conv")
    assert q is not None and q.restore("<PERSON_1> <EMAIL_ADDRESS_1>") == "Jane Doe jane.doe@example.org"
    assert q.stand_in("PERSON", "Jane Doe") == "<PERSON_1>" and q.stand_in("PERSON", "Bob") == "<PERSON_2>"
    clock.now += 59
    assert store.load("conv") is not None
    clock.now += 2
    assert store.load("conv") is None
    assert len(store) == 0


@pytest.mark.parametrize("on_disk", [False, True])
def test_bounded_size_evicts_least_recently_used(tmp_path, on_disk):
    clock = Clock()
    store = MappingStore(b"k" * 32, max_entries=3, path=tmp_path / "m.db" if on_disk else None, clock=clock)
    for i in range(3):
        clock.now += 1
        store.save(f"c{i}", _mapping())
    clock.now += 1
    assert store.load("c0") is not None  # c0 used again: c1 is now the oldest
    clock.now += 1
    store.save("c3", _mapping())
    assert len(store) == 3
    assert store.load("c1") is None
    assert all(store.load(k) is not None for k in ["c0", "c2", "c3"])


def test_oversized_entry_is_refused():
    store = MappingStore(b"k" * 32, max_entry_bytes=200)
    assert not store.save("conv", _mapping())
    assert store.load("conv") is None


def test_nothing_in_clear_in_file_repr_or_logs(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    path = tmp_path / "m.db"
    store = MappingStore(b"k" * 32, path=path)
    p = _mapping()
    store.save("conv", p)
    store.load("conv")
    store.close()
    raw = path.read_bytes()
    for v in VALUES + ["4111111111111111", "<PERSON_1>", "PERSON"]:
        assert v.encode() not in raw
        assert v not in repr(store) and v not in repr(p)
        assert v not in caplog.text
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_wrong_key_or_swapped_entry_does_not_decrypt(tmp_path):
    path = tmp_path / "m.db"
    a = MappingStore(b"a" * 32, path=path)
    a.save("conv1", _mapping())
    a.close()
    assert MappingStore(b"b" * 32, path=path).load("conv1") is None
    # An entry copied under another conversation's key fails the associated-data check.
    import sqlite3

    db = sqlite3.connect(path)
    db.execute("INSERT INTO mapping SELECT 'conv2', exp, at, blob FROM mapping WHERE k = 'conv1'")
    db.commit()
    db.close()
    b = MappingStore(b"a" * 32, path=path)
    assert b.load("conv1") is not None and b.load("conv2") is None
    with pytest.raises(ValueError):
        MappingStore(b"short")


def test_conversation_key_depends_on_client_and_first_message_only():
    secret = b"s" * 32
    turn1 = Request("m", [Message("user", [TextBlock("Hi, I am Jane Doe")])])
    turn2 = Request(
        "m",
        [*turn1.messages, Message("assistant", [TextBlock("Hello")]), Message("user", [TextBlock("more")])],
    )
    k1 = conversation_key("sk-client-1", turn1, secret)
    assert k1 == conversation_key("sk-client-1", turn2, secret)
    assert k1 != conversation_key("sk-client-2", turn1, secret)
    assert k1 != conversation_key(
        "sk-client-1", Request("m", [Message("user", [TextBlock("Hi, I am Bob")])]), secret
    )
    assert k1 != conversation_key("sk-client-1", turn1, b"t" * 32)
    assert "Jane" not in k1 and "sk-client" not in k1 and len(k1) == 64
