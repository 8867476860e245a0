"""Long texts a client resends every turn are scanned once: Claude Code's system prompt and tool definitions
(~19,000 tokens, the same in every main-agent turn) took ~2 s of detection per turn with NER on. The cache is
per client key (one client's scans neither answer nor time another's) and holds digests, not texts."""

from __future__ import annotations

from typing import Any

from tierwise.canonical import Message, Request, TextBlock
from tierwise.privacy.boundary import Boundary, Guard
from tierwise.privacy.finding import Finding
from tierwise.privacy.findings_cache import MAX_CLIENT_ENTRIES, FindingsCache
from tierwise.privacy.policy_config import PrivacyConfig

LONG = "You are a coding agent. Write to jane.doe@example.com when done. " * 20
SHORT = "The file path"  # a tool schema's property description


class CountingDetector:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, text: str) -> list[Any]:
        self.seen.append(text)
        i = text.find("jane.doe@example.com")
        return [Finding("EMAIL_ADDRESS", i, i + 20, 1.0, "test")] if i >= 0 else []


def request(key: str, short: str = SHORT) -> Request:
    return Request(model="m", system=[TextBlock(text=LONG)],
                   messages=[Message(role="user", content=[TextBlock(text=short)])], headers={"x-api-key": key})


def boundary(det: CountingDetector) -> Boundary:
    return Boundary(PrivacyConfig.model_validate({"classes": {"pii": {}}, "ner": {"enabled": False}}), detector=det)


def test_a_clients_texts_are_scanned_once_across_its_requests() -> None:
    det = CountingDetector()
    b = boundary(det)
    for _ in range(3):  # three turns, each its own request and guard
        counts = Guard(b, "main").scan_request(request("key-a"))
        assert counts["EMAIL_ADDRESS"] == 1  # the cached findings count as the scanned ones did
    assert det.seen.count(LONG) == 1
    # Short texts too (session 32): with NER each one with a capital is a ~6 ms spaCy call, and a Claude Code
    # turn holds ~110 (tool names, schema descriptions): ~0.7 s of every turn, rescanned before.
    assert det.seen.count(SHORT) == 1


def test_a_value_added_to_a_cached_short_text_is_found() -> None:
    det = CountingDetector()
    b = boundary(det)
    assert Guard(b, "main").scan_request(request("key-a", "Mail me"))["EMAIL_ADDRESS"] == 1  # LONG's address
    counts = Guard(b, "main").scan_request(request("key-a", "Mail jane.doe@example.com"))
    assert counts["EMAIL_ADDRESS"] == 2  # a different text: its own key, scanned, not the cached text's findings
    assert det.seen.count("Mail jane.doe@example.com") == 1


def test_two_texts_never_share_a_key() -> None:
    cache = FindingsCache()
    texts = ["Edit", "Edit ", "edit", "Edit\u0000", "Éd­it", "a" * 64, "a" * 65]
    keys = {FindingsCache.key(b"salt", t) for t in texts}
    assert len(keys) == len(texts)
    cache.put(FindingsCache.key(b"salt", "Edit"), [Finding("PERSON", 0, 4, 0.7, "test")])
    assert cache.get(FindingsCache.key(b"salt", "Edit ")) is None
    assert cache.get(FindingsCache.key(b"other salt", "Edit")) is None


def test_a_clients_part_is_bounded_by_entries() -> None:
    cache = FindingsCache()
    for i in range(MAX_CLIENT_ENTRIES + 500):
        cache.put(FindingsCache.key(b"salt", f"t{i}"), [])
    assert len(cache) == MAX_CLIENT_ENTRIES


def test_another_client_key_scans_for_itself() -> None:
    det = CountingDetector()
    b = boundary(det)
    Guard(b, "main").scan_request(request("key-a"))
    Guard(b, "main").scan_request(request("key-b"))
    assert det.seen.count(LONG) == 2


def test_the_cache_is_bounded_and_holds_no_text() -> None:
    cache = FindingsCache(max_entries=3)
    for i in range(10):
        cache.put(FindingsCache.key(b"salt", f"text {i}"), [])
    assert len(cache) == 3
    assert cache.get(FindingsCache.key(b"salt", "text 9")) == [] and cache.get(FindingsCache.key(b"salt", "text 0")) is None
    assert all(isinstance(k, bytes) and len(k) == 16 for part in cache._parts.values() for k in part.entries)


def test_one_clients_texts_never_push_out_anothers() -> None:
    """Prime and probe (session 23): with one LRU over every client, a client that filled the cache with its
    own one-value texts and then timed which of them were scanned again (a miss rescans, milliseconds with
    NER) learned how many values another client's text had just held: exactly that many of its own entries
    went. Each client now has a part of its own; a part is emptied only by its own client's texts."""
    cache = FindingsCache(max_entries=100, max_findings=20, max_clients=4)
    mine = [FindingsCache.key(b"attacker", f"probe text {i}") for i in range(20)]
    for k in mine:
        cache.put(k, [object()])  # the attacker's part, full to its findings bound
    cache.put(FindingsCache.key(b"victim", "a text holding seven values"), [object()] * 7)
    assert all(cache.get(k) is not None for k in mine)
    for i in range(3):  # other clients: the least recently used part goes whole, never part of one
        cache.put(FindingsCache.key(f"client {i}".encode(), "x"), [object()])
    assert cache.get(FindingsCache.key(b"victim", "a text holding seven values")) is None
    assert all(cache.get(k) is not None for k in mine)
    assert cache.findings_held == 20 + 3
