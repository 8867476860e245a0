"""Values split across texts (tierwise.privacy.split_values): each piece is found in its own
text; a whole value that merely runs on into the next text is not a split value."""

from __future__ import annotations

from tierwise.privacy.split_values import split_findings


def pieces(det, texts: list[str]) -> dict[int, list[tuple[str, str]]]:
    got = split_findings(texts, det.scan, det.scan)
    return {i: [(f.entity, texts[i][f.start:f.end]) for f in fs] for i, fs in got.items()}


def test_a_card_cut_in_three_is_found_in_every_piece(det):
    texts = ["my card: 4111 ", "1111 1111", " 1111 thanks"]
    got = pieces(det, texts)
    assert got == {0: [("CREDIT_CARD", "4111 ")], 1: [("CREDIT_CARD", "1111 1111")], 2: [("CREDIT_CARD", " 1111")]}


def test_an_email_cut_at_the_at_sign(det):
    assert pieces(det, ["write to jane.doe@", "example.com today"]) == {
        0: [("EMAIL_ADDRESS", "jane.doe@")], 1: [("EMAIL_ADDRESS", "example.com")]}


def test_a_whole_value_running_on_into_the_next_text_is_not_split(det):
    assert pieces(det, ["The customer is jane.doe@example.com.", "My card is on file."]) == {}
    assert pieces(det, ["call +46 70 123 45 67", "89 is my room"]) == {}


def test_texts_with_nothing_across_the_junction(det):
    assert pieces(det, ["Hello there.", "", "How are you?"]) == {}
    assert pieces(det, ["only one text 4111 1111 1111 1111"]) == {}


def test_a_long_key_cut_unevenly_is_covered_to_its_ends(det):
    key = "sk-ant-api03-Zx8Qw2Lp9Rt4Vb7Nm1Kc5Hj3Gf6Ds0Ae2Wq8Ty4Ui7OpZx8Qw2Lp9Rt4Vb7Nm1Kc5Hj3Gf6Ds0Ae2Wq8Ty4Ui7Op"
    texts = ["the key is " + key[:6], key[6:] + " -- keep it safe"]
    got = pieces(det, texts)
    assert got == {0: [("SECRET", key[:6])], 1: [("SECRET", key[6:])]}


def test_one_clients_junction_windows_never_push_out_anothers(det):
    """The junction cache was one dict for every client, cleared when full: a client that filled it with its own
    windows, then timed which were scanned again, learned that another client's conversation had just added
    junctions next to digits or `@` (session 23). Each client now has a part of its own."""
    from tierwise.privacy.findings_cache import FindingsCache

    scanned: list[str] = []

    def scan(text: str) -> list:
        scanned.append(text)
        return det.scan(text)

    cache = FindingsCache(max_entries=8, max_clients=4)
    mine = ["write to jane.doe@", "example.com today"]
    split_findings(mine, scan, det.scan, cache, b"victim")
    for i in range(20):  # another client's many junctions
        split_findings([f"room {i}", f"{i} is free"], scan, det.scan, cache, b"attacker")
    scanned.clear()
    split_findings(mine, scan, det.scan, cache, b"victim")
    assert scanned == []  # the victim's window is still kept: no one else's windows pushed it out
