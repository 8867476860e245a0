"""The markup view (privacy/markup.py) read separate items, each in its own code span, emphasis or inline tag,
as one value once their markup was removed: "Took `120` `340` `560` ms", "ports `8080` `8443`", "`2024` `2025`
`2026`", `*0.91* *0.88*`, `<code>6386</code> <i>8023</i>` became phone numbers, redacted (`pii: redact`) in what
a coding agent sent the remote model (session 25, review25b). Items set apart by their own markup are a list, as
table cells are; markup inside a value (`4111 **1111** 1111 1111`, `jane.doe@**example**.com`) is still found."""

from __future__ import annotations

import json

import pytest

from tests.privacy.support import ask_remote, found
from tests.privacy.test_attack_round2 import remote  # noqa: F401  (the fixture)

ITEMS = [
    "Took `120` `340` `560` ms across runs",
    "Listening on ports `8080` `8443` and `9090`.",
    "`2024` `2025` `2026` budgets",
    "Results: *0.91* *0.88* *0.93* *0.87*",
    "Step `1` `2` `3` `4` `5` `6` `7` `8` `9` `10`",
    "**1** **2** **3** **4** **5** **6** **7** **8** **9** **0**",
    "<td><code>6386</code> <i>8023</i></td>",
    "row: <b>555</b> <b>1234</b>",
]


@pytest.mark.parametrize("text", ITEMS)
def test_items_each_in_their_own_markup_are_not_one_value(det, text):
    assert not any(e in ("PHONE_NUMBER", "CREDIT_CARD") for e, _ in found(det, text))


@pytest.mark.parametrize("text, entity, value", [
    ("card 4111 **1111** 1111 1111 ok", "CREDIT_CARD", "4111 **1111** 1111 1111"),
    ("card 4111<b>1111</b>1111 1111 ok", "CREDIT_CARD", "4111<b>1111</b>1111 1111"),
    ("call 555 <b>123</b>-4567 now", "PHONE_NUMBER", "555 <b>123</b>-4567"),
    ("mail jane.doe@**example**.com", "EMAIL_ADDRESS", "jane.doe@**example**.com"),
])
def test_markup_inside_a_value_is_still_found(det, text, entity, value):
    assert (entity, value) in found(det, text)


@pytest.mark.parametrize("remote", ["anthropic", "openai"], indirect=True)
def test_timings_in_code_spans_reach_the_remote_model_as_written(remote):  # noqa: F811
    g, up = remote
    text = "The benchmark took `120` `340` `560` ms on the three runs; ports `8080` `8443`. Why so slow?"
    ask_remote(g, up, text)
    body = up.requests[-1].raw.decode()
    assert "PHONE_NUMBER" not in body and json.dumps(text)[1:-1] in body
