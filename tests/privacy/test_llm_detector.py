"""The local model as a detector (privacy.llm_detector): over real HTTP, `local` is the OpenAI
double (locality local) that answers the detector's question, `frontier` the Anthropic double
(remote). A name no pattern and no NER can find must still not leave; a failing, slow or
rambling local model must fail closed."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest

from tests.doubles import Delay, Fail, Reply
from tests.gateway.conftest import ant, oai
from tests.privacy.support import echo_placeholders, privacy_config
from tierwise.errors import ConfigError
from tierwise.privacy.llm_detector import LlmDetectionFailed, parse_spans

ROUTES = {"main": {"policy": "fallback", "targets": ["frontier"], "retries": 0}}
NAME = "Zorblax Quint"  # no first-name list, no title, no cue: only the model knows it is a person
MSG = f"Please tell {NAME} that the parcel is late."


def _is_detector_call(rec: Any) -> bool:
    return "privacy filter" in rec.raw.decode("utf-8", "replace")


def spans_brain(rec: Any) -> Reply:
    """The local model: lists the name (and a type nobody asked for) when asked as a detector."""
    if _is_detector_call(rec):
        return Reply(text=json.dumps({"spans": [{"text": NAME, "type": "PERSON"},
                                                {"text": "parcel", "type": "BANANA"}]}))
    return Reply(text="local answer")


def _gateway(gateway: Any, openai_up: Any, anthropic_up: Any, llm: bool = True, **extra: Any) -> Any:
    anthropic_up.default = echo_placeholders
    privacy: dict[str, Any] = {"ner": {"enabled": False, "heuristics": False}}
    if llm:
        privacy["llm_detector"] = {"enabled": True, "model": "local", "timeout_s": 1, **extra}
    return gateway(privacy_config(openai_up.url, anthropic_up.url, ROUTES, **privacy))


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_names_the_local_model_lists_are_redacted_and_restored(gateway, openai_up, anthropic_up, sdk):
    openai_up.default = spans_brain
    g = _gateway(gateway, openai_up, anthropic_up)
    if sdk == "openai":
        answer = oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": MSG}]
                                                ).choices[0].message.content
    else:
        r = ant(g).messages.create(model="main", max_tokens=100, messages=[{"role": "user", "content": MSG}])
        answer = "".join(b.text for b in r.content if b.type == "text")
    sent = anthropic_up.requests[-1].raw.decode()
    assert NAME not in sent and "<PERSON_1>" in sent
    assert "parcel" in sent  # a type no class asked for is ignored
    assert NAME in answer  # the echoed placeholder came back restored
    assert sum(_is_detector_call(r) for r in openai_up.requests) == 1  # one local call per request


def test_without_the_llm_detector_the_name_leaves(gateway, openai_up, anthropic_up):
    """The control: patterns and NER off, nothing else finds this name."""
    openai_up.default = spans_brain
    g = _gateway(gateway, openai_up, anthropic_up, llm=False)
    oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": MSG}])
    assert NAME in anthropic_up.requests[-1].raw.decode()


@pytest.mark.parametrize("failure", [Fail(500), Delay(3.0, Reply(text='{"spans": []}')),
                                     Reply(text="Sure! The names are: Zorblax Quint.")],
                         ids=["error", "timeout", "not-json"])
def test_a_failing_local_detector_fails_closed(gateway, openai_up, anthropic_up, failure):
    openai_up.default = failure
    g = _gateway(gateway, openai_up, anthropic_up)
    with pytest.raises((openai.APIStatusError, anthropic.APIStatusError)) as e:
        oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": MSG}])
    assert e.value.status_code in (400, 502, 503)  # a privacy refusal: 400 since session 36 (403 before)
    assert NAME not in str(e.value)
    assert anthropic_up.requests == []


def test_the_detector_model_must_be_local(openai_up, anthropic_up, tmp_path):
    from tests.harness import make_config
    from tierwise.gateway import Gateway

    cfg = make_config(privacy_config(openai_up.url, anthropic_up.url, ROUTES,
                                     llm_detector={"enabled": True, "model": "frontier"}), tmp_path)
    with pytest.raises(ConfigError, match="locality: local"):
        Gateway(cfg)
    with pytest.raises(ConfigError, match="model: required"):
        make_config(privacy_config(openai_up.url, anthropic_up.url, ROUTES, llm_detector={"enabled": True}), tmp_path)


def test_parse_spans_accepts_fenced_json_and_rejects_prose():
    allowed = frozenset({"PERSON"})
    fenced = '```json\n{"spans": [{"text": "Ann Lee", "type": "person"}, {"text": "x", "type": "CAT"}]}\n```'
    assert parse_spans(fenced, allowed) == [("PERSON", "Ann Lee")]
    with pytest.raises(LlmDetectionFailed):
        parse_spans("There are no names here.", allowed)
    with pytest.raises(LlmDetectionFailed):
        parse_spans('{"names": ["Ann"]}', allowed)
