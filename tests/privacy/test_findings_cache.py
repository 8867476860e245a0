"""Long texts a client resends every turn are scanned once: Claude Code's system prompt and tool definitions
(~19,000 tokens, the same in every main-agent turn) took ~2 s of detection per turn with NER on. The cache is
per client key (one client's scans neither answer nor time another's) and holds digests, not texts."""

from __future__ import annotations

from typing import Any

from tierwise.canonical import Message, Request, TextBlock
from tierwise.privacy.boundary import Boundary, Guard
from tierwise.privacy.finding import Finding
from tierwise.privacy.findings_cache import MIN_CHARS, FindingsCache
from tierwise.privacy.policy_config import PrivacyConfig

LONG = "You are a coding agent. Write to jane.doe@example.com when done. " * 20  # over MIN_CHARS
SHORT = "hello"


class CountingDetector:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, text: str) -> list[Any]:
        self.seen.append(text)
        i = text.find("jane.doe@example.com")
        return [Finding("EMAIL_ADDRESS", i, i + 20, 1.0, "test")] if i >= 0 else []


def request(key: str) -> Request:
    return Request(model="m", system=[TextBlock(text=LONG)],
                   messages=[Message(role="user", content=[TextBlock(text=SHORT)])], headers={"x-api-key": key})


def boundary(det: CountingDetector) -> Boundary:
    return Boundary(PrivacyConfig.model_validate({"classes": {"pii": {}}, "ner": {"enabled": False}}), detector=det)


def test_a_clients_long_text_is_scanned_once_across_its_requests() -> None:
    assert len(LONG) >= MIN_CHARS
    det = CountingDetector()
    b = boundary(det)
    for _ in range(3):  # three turns, each its own request and guard
        counts = Guard(b, "main").scan_request(request("key-a"))
        assert counts["EMAIL_ADDRESS"] == 1  # the cached findings count as the scanned ones did
    assert det.seen.count(LONG) == 1
    assert det.seen.count(SHORT) == 3  # short texts are not worth an entry


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
    assert all(isinstance(k, bytes) and len(k) == 16 for k in cache._entries)
