"""No key ever leaks: a hostile upstream echoes the credentials it was sent (plain, URL-encoded,
base64, split in two, JSON-escaped, cut by truncation) into every error shape it can produce, and
the test greps everything the gateway emitted for them — what each client saw (raw HTTP bodies,
headers and streams, and the official SDKs' errors), the log, the ledger's SQLite rows and
`tierwise trace` — in both client formats.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anthropic
import httpx2 as httpx
import openai
import pytest
import yaml
from click.testing import CliRunner

from tests.doubles import (
    AnthropicDouble,
    CutStream,
    Fail,
    OpenAIDouble,
    Raw,
    RecordedRequest,
    Reply,
    StreamError,
)
from tests.harness import GatewayServer, make_config
from tierwise.cli import main as cli

KEY_OAI = "tw-oai-" + secrets.token_hex(20)  # not shaped like any known key: only by-value scrubbing finds it
KEY_ANT = "tw-ant-" + secrets.token_hex(20)
KEY_GW = "tw-gw-" + secrets.token_hex(16)  # the client's gateway key: never in the log, ledger or trace
ENV = {"TW_LEAKTEST_OAI": KEY_OAI, "TW_LEAKTEST_ANT": KEY_ANT, "TW_LEAKTEST_GW": KEY_GW}
WINDOW = 12


def encodings(key: str) -> list[str]:
    raw = key.encode()
    out = [key, quote(key, safe=""), raw.hex()]
    for skip in range(3):  # base64 of any text holding the key contains one of these whole
        whole = raw[skip:][: (len(raw) - skip) // 3 * 3]
        out += [base64.b64encode(whole).decode(), base64.urlsafe_b64encode(whole).decode()]
    return out


def leaks(text: str, keys: tuple[str, ...] = (KEY_OAI, KEY_ANT)) -> list[str]:
    """Every 12-character run of a key (or of one of its encodings) found in `text`."""
    found = []
    for k in keys:
        for enc in encodings(k):
            found += [enc[i : i + WINDOW] for i in range(len(enc) - WINDOW + 1) if enc[i : i + WINDOW] in text]
    return found


def echo(rec: RecordedRequest) -> str:
    """What a careless upstream says back: the credentials it got, in every common spelling."""
    auth = rec.headers.get("authorization") or rec.headers.get("x-api-key") or ""
    key = auth.removeprefix("Bearer ")
    assert key in (KEY_OAI, KEY_ANT), "the upstream should have been sent its key"
    half = len(key) // 2
    return (f"Incorrect API key provided: {auth}. x-api-key: {key}; url {quote(key, safe='')}; "
            f"basic {base64.b64encode(f'user:{key}'.encode()).decode()}; b64 {base64.b64encode(auth.encode()).decode()}; "
            f"split {key[:half]} | {key[half:]}; json {json.dumps({'authorization': auth})}")


def cut_text(rec: RecordedRequest) -> str:
    """A text/plain body the gateway cuts at 300 characters: the cut falls in the middle of the key."""
    key = (rec.headers.get("authorization") or rec.headers.get("x-api-key") or "").removeprefix("Bearer ")
    return "proxy error; upstream request had key " + "." * (300 - 38 - len(key) // 2) + key + " (rejected)"


# ---------------------------------------------------------------------------- scenarios
# name -> (route, stream, items for the OpenAI double, items for the Anthropic double)
Items = list[Callable[[RecordedRequest], Any] | Any]


def _fail(status: int) -> Callable[[RecordedRequest], Any]:
    return lambda rec: Fail(status, echo(rec), retry_after=0 if status == 429 else None)


SCENARIOS: dict[str, tuple[str, bool, Items, Items]] = {
    "oai_401": ("local", False, [_fail(401)], []),
    "ant_401": ("frontier", False, [], [_fail(401)]),
    "oai_429": ("local", False, [_fail(429)], []),
    "ant_429": ("frontier", False, [], [_fail(429)]),
    "oai_500": ("local", False, [_fail(500)], []),
    "ant_529": ("frontier", False, [], [_fail(529)]),
    "oai_text_502_cut": ("local", False, [lambda r: Raw(502, cut_text(r), "text/plain")], []),
    "ant_text_500_cut": ("frontier", False, [], [lambda r: Raw(500, cut_text(r), "text/plain")]),
    "ant_200_type_error": ("frontier", False, [], [lambda r: Raw(200, json.dumps(
        {"type": "error", "error": {"type": "api_error", "message": echo(r)}}))]),
    "oai_200_error": ("local", False, [lambda r: Raw(200, json.dumps({"error": {"message": echo(r)}}))], []),
    "oai_stream_first_chunk_error": ("local", True, [lambda r: StreamError(0, echo(r), "server_error")], []),
    # the error's `type` is the upstream's text too: it was kept as the error's kind (the ledger's error_kind)
    "oai_stream_error_type_echo": ("local", True, [lambda r: StreamError(0, "rejected", echo(r))], []),
    "ant_stream_first_event_error": ("frontier", True, [], [lambda r: StreamError(0, echo(r), "api_error")]),
    "oai_stream_mid_error": ("local", True, [lambda r: StreamError(3, echo(r), "server_error")], []),
    "ant_stream_mid_error": ("frontier", True, [], [lambda r: StreamError(4, echo(r), "overloaded_error")]),
    "oai_stream_401": ("local", True, [_fail(401)], []),
    "ant_stream_429": ("frontier", True, [], [_fail(429)]),
    "oai_reset_after_headers": ("local", True, [CutStream(1)], []),
    "ant_reset_mid_body": ("frontier", False, [], [CutStream(1)]),
    "fallback_last_error": ("chain", False, [_fail(500)], [_fail(503)]),
    "fallback_last_error_stream": ("chain", True, [lambda r: StreamError(0, echo(r))],
                                   [lambda r: StreamError(0, echo(r), "api_error")]),
    "cascade_judge_error": ("judged", False, [Reply(text="draft answer"), _fail(500)], [Reply(text="frontier")]),
    "cascade_judge_echoes_key": ("judged", False, [Reply(text="draft answer"),
                                                   lambda r: Reply(text=echo(r) + "\nVERDICT: poor")],
                                 [Reply(text="frontier")]),
    "draft_verify_check_error": ("dv", False, [Reply(text="draft answer")], [_fail(500), Reply(text="fixed")]),
}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with pytest.MonkeyPatch.context() as mp:
        for k, v in ENV.items():
            mp.setenv(k, v)
        oai_up, ant_up = OpenAIDouble(api_key=KEY_OAI).start(), AnthropicDouble(api_key=KEY_ANT).start()
        tmp = tmp_path_factory.mktemp("leaks")
        data = {
            "server": {"api_keys_env": ["TW_LEAKTEST_GW"]},
            "ledger": {"path": "ledger.db"},
            "breaker": {"failures": 100000, "cooldown": 0.1},  # every scenario must reach the double
            "providers": {
                "oai": {"kind": "openai", "base_url": oai_up.url + "/v1", "api_key_env": "TW_LEAKTEST_OAI",
                        "timeouts": {"connect": 2, "read": 5}},
                "ant": {"kind": "anthropic", "base_url": ant_up.url, "api_key_env": "TW_LEAKTEST_ANT",
                        "timeouts": {"connect": 2, "read": 5}},
            },
            "models": {
                "local": {"provider": "oai", "model": "qwen-local"},
                "judge": {"provider": "oai", "model": "judge-model"},
                "frontier": {"provider": "ant", "model": "big-model"},
            },
            "routes": {
                "chain": {"policy": "fallback", "targets": ["frontier", "local"], "retries": 0},
                "judged": {"policy": "cascade", "tiers": ["local", "frontier"],
                           "verifiers": [{"type": "llm_judge", "model": "judge"}]},
                "dv": {"policy": "draft_verify", "draft": "local", "verifier": "frontier", "on_reject": "frontier"},
            },
        }
        cfg_path = tmp / "tierwise.yaml"
        cfg_path.write_text(yaml.safe_dump(data, sort_keys=False))
        g = GatewayServer(make_config(data, tmp)).start()
        try:
            yield {"g": g, "oai": oai_up, "ant": ant_up, "cfg": str(cfg_path), "db": str(tmp / "ledger.db")}
        finally:
            g.stop()
            oai_up.stop()
            ant_up.stop()


def _raw_call(g: GatewayServer, fmt: str, route: str, stream: bool) -> tuple[str, str | None]:
    """Everything a raw HTTP client sees (status line, headers, body or stream) and the request id."""
    if fmt == "openai":
        url, body = g.url + "/v1/chat/completions", {"model": route, "max_tokens": 20, "stream": stream,
                                                     "messages": [{"role": "user", "content": "hi"}]}
        headers = {"authorization": f"Bearer {KEY_GW}"}
    else:
        url, body = g.url + "/v1/messages", {"model": route, "max_tokens": 20, "stream": stream,
                                             "messages": [{"role": "user", "content": "hi"}]}
        headers = {"x-api-key": KEY_GW, "anthropic-version": "2023-06-01"}
    with httpx.Client(timeout=20) as c, c.stream("POST", url, json=body, headers=headers) as r:
        text = r.read().decode("utf-8", "replace")
        return f"{r.status_code}\n{r.headers!r}\n{text}", r.headers.get("x-tierwise-request-id")


def _sdk_call(g: GatewayServer, fmt: str, route: str, stream: bool) -> str:
    """What the official SDK hands the application: the answer, or the error it raised."""
    seen: list[str] = []
    msgs = [{"role": "user", "content": "hi"}]
    with contextlib.ExitStack() as clients:  # closed after the error's response is read
        try:
            if fmt == "openai":
                oc = clients.enter_context(openai.OpenAI(base_url=g.url + "/v1", api_key=KEY_GW, max_retries=0))
                if stream:
                    for chunk in oc.chat.completions.create(model=route, messages=msgs, max_tokens=20,  # type: ignore[arg-type]
                                                            stream=True):
                        seen.append(chunk.model_dump_json())
                else:
                    seen.append(oc.chat.completions.create(model=route, messages=msgs, max_tokens=20).model_dump_json())  # type: ignore[arg-type]
            else:
                ac = clients.enter_context(anthropic.Anthropic(base_url=g.url, api_key=KEY_GW, max_retries=0))
                if stream:
                    for ev in ac.messages.create(model=route, messages=msgs, max_tokens=20, stream=True):  # type: ignore[arg-type]
                        seen.append(ev.model_dump_json())
                else:
                    seen.append(ac.messages.create(model=route, messages=msgs, max_tokens=20).model_dump_json())  # type: ignore[arg-type]
        except (openai.APIError, anthropic.APIError) as e:
            seen += [str(e), repr(getattr(e, "body", None))]
            resp = getattr(e, "response", None)
            if resp is not None:
                seen.append(repr(resp.headers))
                try:
                    seen.append(resp.text)
                except Exception:  # a stream the SDK stopped reading: its error event is in str(e)
                    pass
    return "\n".join(seen)


def _script(env: dict[str, Any], name: str) -> None:
    _, _, oai_items, ant_items = SCENARIOS[name]
    env["oai"].reset()
    env["ant"].reset()
    env["oai"].script(*oai_items)
    env["ant"].script(*ant_items)


def _ledger_text(db: str, since: float = 0.0) -> str:
    with sqlite3.connect(db) as c:
        return "\n".join(repr(tuple(row)) for row in c.execute("SELECT * FROM requests WHERE ts >= ?", (since,)))


@pytest.mark.parametrize("fmt", ["openai", "anthropic"])
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_no_key_reaches_client_log_ledger_or_trace(env: dict[str, Any], name: str, fmt: str,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="tierwise")  # the gateway's records (not the test clients')
    g: GatewayServer = env["g"]
    route, stream, _, _ = SCENARIOS[name]
    started = time.time()

    _script(env, name)
    raw, request_id = _raw_call(g, fmt, route, stream)
    echoed = len(env["oai"].requests) + len(env["ant"].requests)
    _script(env, name)
    sdk = _sdk_call(g, fmt, route, stream)
    g.flush()
    assert echoed > 0, "the upstream double was never asked: the scenario proves nothing"

    assert not leaks(raw), f"raw HTTP client saw a key: {raw[:2000]}"
    assert not leaks(sdk), f"SDK client saw a key: {sdk[:2000]}"
    keys = (KEY_OAI, KEY_ANT, KEY_GW)
    assert not leaks(caplog.text, keys), "the log holds a key"
    ledger = _ledger_text(env["db"], started)  # this scenario's rows only
    assert not leaks(ledger, keys), "the ledger holds a key"
    assert request_id is not None
    for args in (["trace", "-c", env["cfg"], request_id], ["trace", "-c", env["cfg"], "--json", request_id]):
        out = CliRunner().invoke(cli, args)
        assert out.exit_code == 0, out.output
        assert request_id in out.output
        assert not leaks(out.output, keys), f"`tierwise trace` shows a key: {out.output[:2000]}"


def test_scrubbed_error_still_says_what_went_wrong(env: dict[str, Any]) -> None:
    """Redaction removes the key, not the upstream's explanation."""
    _script(env, "oai_401")
    raw, _ = _raw_call(env["g"], "openai", "local", False)
    assert "Incorrect API key provided" in raw and "[redacted]" in raw
    assert not leaks(raw)


def test_upstream_key_of_another_shape_in_a_log_message(env: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    """A log call that formats a key (a careless debug line, a traceback) is scrubbed as it is made."""
    caplog.set_level(logging.DEBUG)
    log = logging.getLogger("tierwise.some.module")
    log.debug("calling with key %s and header %r", KEY_OAI, {"x-api-key": KEY_ANT})
    try:
        raise RuntimeError(f"upstream said: {quote(KEY_GW, safe='')}")
    except RuntimeError:
        log.exception("failed")
    logging.getLogger("thirdparty").warning("token %s", base64.b64encode(KEY_ANT.encode()).decode())
    assert caplog.records, "nothing was logged"
    text = caplog.text + "".join(r.getMessage() for r in caplog.records)
    assert not leaks(text, (KEY_OAI, KEY_ANT, KEY_GW)), text


def test_ledger_written_by_other_paths_is_scrubbed(env: dict[str, Any], tmp_path: Path) -> None:
    """Ensemble and shadow rows are built outside the gateway's record(): the store scrubs them too."""
    from tierwise.ledger.records import LedgerRecord
    from tierwise.ledger.store import Ledger

    led = Ledger.open(str(tmp_path / "l.db"))
    led.submit(LedgerRecord(request_id="req_x", ts=1.0, route="r", kind="ensemble",
                            error_message=f"agent failed: {KEY_OAI[:30]}", reason=f"Bearer {KEY_ANT}",
                            steps=[{"kind": "call", "name": "a", "reason": quote(KEY_GW, safe=""),
                                    "detail": {"raw": base64.b64encode(KEY_OAI.encode()).decode()}}],
                            extra={"note": json.dumps({"k": KEY_ANT})}))
    led.close()
    assert not leaks(_ledger_text(str(tmp_path / "l.db")), (KEY_OAI, KEY_ANT, KEY_GW))


def test_cli_listings_scrub_rows_written_before_a_leak_was_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ledger keeps what older versions wrote (an upstream's stream error `type` holding the key went into
    `error_kind` unscrubbed): `tierwise requests` printed it, in its table and raw in its JSON."""
    from tierwise.ledger.records import LedgerRecord
    from tierwise.ledger.store import Ledger

    key = "tw-cli-" + secrets.token_hex(20)  # one no gateway of this process has told the scrubber about
    monkeypatch.setenv("TW_LEAKTEST_CLI", key)
    cfg = tmp_path / "tierwise.yaml"
    cfg.write_text(yaml.safe_dump({
        "ledger": {"path": "ledger.db"},
        "providers": {"oai": {"kind": "openai", "base_url": "http://127.0.0.1:1/v1", "api_key_env": "TW_LEAKTEST_CLI"}},
        "models": {"local": {"provider": "oai", "model": "m"}}}))
    led = Ledger.open(str(tmp_path / "ledger.db"))
    led.submit(LedgerRecord(request_id="req_old", ts=time.time(), route="local", status=502, error_kind=f"rejected {key}"))
    led.close()
    for args in (["requests", "-c", str(cfg)], ["requests", "-c", str(cfg), "--json"]):
        out = CliRunner().invoke(cli, args)
        assert out.exit_code == 0, out.output
        assert "req_old" in out.output and "rejected" in out.output
        assert not leaks(out.output, (key,)), out.output
