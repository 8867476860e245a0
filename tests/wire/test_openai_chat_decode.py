"""The OpenAI codec's tool-call pairing, where the OpenAPI document and the codec must agree."""

from __future__ import annotations

import pytest

from tierwise.errors import InvalidRequest
from tierwise.wire.openai_chat import decode_request


def _history(call_id, answer_id):
    call = {"type": "function", "function": {"name": "f", "arguments": "{}"}}
    if call_id is not ...:
        call["id"] = call_id
    return {"model": "m", "messages": [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": answer_id, "content": "r"},
    ]}


def test_an_empty_tool_call_id_is_answered_by_an_empty_tool_call_id():
    # schemathesis (seed 17) found the document allows "" for both and the codec refused the pair.
    req = decode_request(_history("", ""), {})
    use, result = req.messages[1].content[0], req.messages[2].content[0]
    assert use.id == "" and result.tool_use_id == ""


def test_a_call_without_an_id_gets_one_and_a_foreign_answer_is_still_refused():
    with pytest.raises(InvalidRequest, match="tool_call_id"):
        decode_request(_history(..., ""), {})
    with pytest.raises(InvalidRequest, match="tool_call_id"):
        decode_request(_history("call_1", "call_2"), {})
    req = decode_request(_history("call_1", "call_1"), {})
    assert req.messages[2].content[0].tool_use_id == "call_1"
