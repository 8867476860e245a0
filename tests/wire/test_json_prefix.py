"""wire/json_prefix.py: whatever a model writes as a tool call's arguments, and however a server splits it,
the pieces passed on plus the completion are one JSON object (the anthropic SDK parses them as they come)."""

from __future__ import annotations

import json

import pytest

from tierwise.wire.json_prefix import ObjectPrefix

TEXTS = ['{"path": "a.py", oops', "[1, 2]", '{"pa', '{"a": [1, {"b": "x\\u00', '{"a": tru', '{"a": 1.', '{"a": 1}x',
         '{"a": 1}', "", "  ", '{"a": "\\', '{"a"', '{"a":', '{"a": 1,', "{", '{"a": [', '{"a": [1,',
         '{"a": "x\ny"}', "not json", '{"a": 01}', '{"k": -}', '{"a": [1, 2]]', '{"a": {"b": [null, false, -1.5e+3]}}',
         '{"s": "\\"}\\\\"}', '{"a": "\u00e9\u2028"}']


@pytest.mark.parametrize("text", TEXTS)
def test_every_split_ends_as_one_object(text):
    for a in range(len(text) + 1):
        for b in range(a, len(text) + 1):
            check = ObjectPrefix()
            sent = [p for p in (text[:a], text[a:b], text[b:]) if check.feed(p)]
            final = "".join(sent) + check.completion(text)
            if not text.strip():
                assert not final.strip()
                continue
            value = json.loads(final)
            assert isinstance(value, dict), final
            try:
                meant = json.loads(text)
            except ValueError:
                meant = None
            if isinstance(meant, dict):
                assert value == meant and "".join(sent) == text  # a valid object goes out whole, as it came
