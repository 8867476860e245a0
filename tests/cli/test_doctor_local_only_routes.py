"""`tierwise doctor` warns of a route that reaches no local model while a data class is `local_only` there: every
request to it holding such data is refused, and nothing in the config said so before a request failed (session 36,
newuser36: an Aider team with `pii: local_only` and the `architect: frontier` route of docs/architect-editor.md had
each planning turn that named a person refused)."""

from __future__ import annotations

from collections.abc import Callable

WARNING = "reaches no local model"
PRIVACY = """privacy:
  classes: {pii: {}, secrets: {}}
"""


def test_warns_of_the_remote_only_route_and_says_what_to_change(architect_editor_doctor: Callable[[str], str]) -> None:
    out = architect_editor_doctor(PRIVACY + "  ner: {enabled: false}\n  policy: {pii: local_only, secrets: redact}\n")
    lines = [ln for ln in out.splitlines() if WARNING in ln]
    assert len(lines) == 1, out  # not `editor`: its local model takes such requests
    assert "route architect" in lines[0] and "'pii'" in lines[0] and "privacy.routes.architect.pii: redact" in lines[0]


def test_a_route_override_counts(architect_editor_doctor: Callable[[str], str]) -> None:
    out = architect_editor_doctor(PRIVACY + "  ner: {enabled: false}\n  policy: {pii: local_only}\n"
                                            "  routes: {architect: {pii: redact}}\n")
    assert WARNING not in out, out
    out = architect_editor_doctor(PRIVACY + "  ner: {enabled: false}\n  policy: {pii: redact}\n"
                                            "  routes: {architect: {secrets: local_only}}\n")
    assert WARNING in out and "'secrets'" in out, out


def test_no_warning_without_local_only(architect_editor_doctor: Callable[[str], str]) -> None:
    out = architect_editor_doctor(PRIVACY + "  ner: {enabled: false}\n  policy: {pii: redact, secrets: block}\n")
    assert WARNING not in out, out
