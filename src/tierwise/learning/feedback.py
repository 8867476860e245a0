"""Feedback on an answer: `POST /v1/tierwise/feedback`, `tierwise feedback` and the MCP tool all land here.

A rating (good / acceptable / poor, or thumbs up / down) and an optional reason are merged into the
request's ledger record (`extra.feedback`, at most `MAX_PER_REQUEST` entries), which already holds the
request's route, task type, answering model and its locality (the tier). Negative feedback on a
`reflective` route's local answer re-opens that task type's evaluation (its next uses are judged) and,
when the ledger kept the text, has the judge look at that very answer.
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson

from tierwise.errors import InvalidRequest, NotFound
from tierwise.secret_scrub import scrub_value

RATINGS = {"good": "good", "acceptable": "acceptable", "poor": "poor", "up": "good", "thumbs_up": "good",
           "down": "poor", "thumbs_down": "poor"}
MAX_REASON = 2000
MAX_PER_REQUEST = 20
# Ledger ids of a learning route's background work: the request's id and one of these (policies/reflective.py,
# policies/learned.py); the longest first.
BACKGROUND_SUFFIXES = (("-feedback-eval", "the judge's evaluation (asked by a rating) of"),
                       ("-eval", "the judge's evaluation of"), ("-shadow", "the shadow run of"))
_RID = re.compile(r"^[A-Za-z0-9_\-.:]{1,128}\Z")


def parse_feedback(data: Any) -> tuple[str, str, str | None]:
    """(request id, normalised rating, reason) from a client's body; clear errors naming the field."""
    if not isinstance(data, dict):
        raise InvalidRequest("the body must be a JSON object with `request_id` and `rating`")
    unknown = set(data) - {"request_id", "rating", "thumbs", "reason"}
    if unknown:
        raise InvalidRequest(f"unknown field `{sorted(unknown)[0][:40]}`; allowed: request_id, rating, thumbs, reason")
    rid = data.get("request_id")
    if not isinstance(rid, str) or not _RID.match(rid):
        raise InvalidRequest("`request_id` must be the x-tierwise-request-id of an answer (1-128 letters, digits, _-.:)")
    rating = data.get("rating")
    if rating is None and "thumbs" in data:
        thumbs = data["thumbs"]  # "up"/"down" or a boolean (a list or object here was a 500: unhashable)
        rating = {"up": "up", "down": "down", True: "up", False: "down"}.get(thumbs) if isinstance(
            thumbs, (str, bool)) else None
    if not isinstance(rating, str) or rating.lower() not in RATINGS:
        raise InvalidRequest("`rating` must be one of good, acceptable, poor, up, down (or `thumbs`: up/down)")
    reason = data.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON):
        raise InvalidRequest(f"`reason` must be a string of at most {MAX_REASON} characters")
    return rid, RATINGS[rating.lower()], reason


def not_an_answer(request_id: str) -> str:
    """The 404's message. `tierwise requests` lists a learning route's evaluations and shadow runs (`<id>-eval`,
    `<id>-feedback-eval`, `<id>-shadow`) beside the requests: such an id names the request to rate instead (from
    the id alone, so it tells no one what the ledger holds)."""
    for suffix, what in BACKGROUND_SUFFIXES:
        if request_id.endswith(suffix) and len(request_id) > len(suffix):
            judged = request_id[: -len(suffix)]
            return (f"{request_id!r} is {what} request {judged}, not an answer: rate {judged} itself "
                    "(its x-tierwise-request-id)")
    return f"no answer with request id {request_id!r} in the ledger"


def tier_of(locality: str | None) -> str | None:
    """The tier a user reads for a provider's `locality`: `local` or `frontier`, the words of `tierwise boundary`
    and of a reflective route's config (the ledger's column keeps `remote`; before session 37 feedback said so)."""
    return "frontier" if locality == "remote" else locality


def record_feedback(ledger: Any, request_id: str, rating: str, reason: str | None = None, *,
                    source: str = "api", route_filter: Any = None, owner: str | None = None) -> dict[str, Any]:
    """Merge the feedback into the request's record; the linked route / task type / tier / model back.
    With `owner` (the gateway key's name, when the gateway has keys) only that key's requests are found:
    request ids are guessable (a process prefix and a counter), feedback moves learned routing."""
    ledger.flush()
    rec = ledger.get(request_id)
    if rec is None or rec.kind not in ("chat", "ensemble") or (route_filter is not None and not route_filter(rec.route)) \
            or (owner is not None and (rec.extra or {}).get("key") != owner):
        raise NotFound(not_an_answer(request_id))
    entry = {"rating": rating, "reason": scrub_value(reason) if reason else None, "ts": round(time.time(), 3),
             "source": source}
    # One transaction from read to write: ratings sent at the same moment all land, and only one is the first
    # (each first negative rating starts a judge call; a read here and a write later lost some and judged twice).
    previous = ledger.append_extra(request_id, "feedback", entry, keep=MAX_PER_REQUEST)
    if previous is None:
        raise NotFound(not_an_answer(request_id))
    return {"request_id": request_id, "rating": rating, "route": rec.route,
            "task_type": (rec.extra or {}).get("task_type"), "tier": tier_of(rec.locality),
            "model": rec.decision, "upstream_model": rec.model, "first": not previous, "served_at": rec.ts,
            "poor_before": any(isinstance(p, dict) and p.get("rating") == "poor" for p in previous)}


def wants_judging(gateway: Any, linked: dict[str, Any]) -> bool:
    """Negative feedback on a local answer of a `reflective` route (the only kind that acts on it)."""
    if rating_counts(gateway, linked):
        return False  # counted as evidence, not judged
    if linked["rating"] != "poor" or linked.get("tier") != "local" or not linked.get("task_type"):
        return False
    if linked.get("poor_before"):  # judged already: each judging is a frontier call, one per answer
        return False
    return getattr(gateway.cfg.routes.get(linked["route"]), "policy", None) == "reflective"


def rating_counts(gateway: Any, linked: dict[str, Any]) -> bool:
    """A rating of a local answer of a `reflective` route that samples by value of information."""
    if linked.get("tier") != "local" or not linked.get("task_type"):
        return False
    pc = gateway.cfg.routes.get(linked["route"])
    return getattr(pc, "policy", None) == "reflective" and getattr(pc, "sampling", None) == "value"


def notify_route(gateway: Any, linked: dict[str, Any], rec: Any = None, key: str = "") -> bool:
    """Tell a reflective route about negative feedback on its local answer; True if it took note.
    `rec` is the request's ledger record when the caller has read it (off the event loop); `key` the name of
    the gateway key that rated (its ratings count as evidence up to a share, `boundary.key_share`).

    With `sampling: value` any rating of a local answer is evidence that cost nothing: the first rating of a
    request enters the task type's posterior like a verdict (`evidence: true` in the answer) and no judge
    call is made."""
    first = linked.pop("first", False)
    served_at = linked.pop("served_at", None)
    judge = wants_judging(gateway, linked)
    linked.pop("poor_before", None)  # internal: not part of the answer
    if rating_counts(gateway, linked):
        route = gateway.resolve(linked["route"])
        linked["evidence"] = bool(first) and route.rating_evidence(linked["task_type"], linked["request_id"],
                                                                  linked["rating"] != "poor", key, served_at)
        return False
    if not judge:
        return False
    route = gateway.resolve(linked["route"])
    if rec is None and gateway.ledger is not None:
        rec = gateway.ledger.get(linked["request_id"])
    return bool(route.after_negative_feedback(linked["task_type"], linked["request_id"],
                                              getattr(rec, "prompt", None), getattr(rec, "answer", None), key))


def clean_note(gateway: Any, note: str) -> str:
    """A client's free text kept outside the ledger (an MCP evaluation's note in the ensembles' evaluations
    file): the gateway's secrets scrubbed and, with a `privacy:` section, every protected value replaced, as
    the ledger's seal does for what it keeps."""
    privacy = getattr(gateway, "privacy", None)
    if note and privacy is not None:
        note = privacy.clean_text(note) or ""
    return str(scrub_value(note)) if note else note


FEEDBACK_THREADS = 2
_threads: ThreadPoolExecutor | None = None


async def _in_feedback_thread(fn: Any, *args: Any, **kw: Any) -> Any:
    """Run a rating's ledger work (blocking SQLite I/O) in the feedback endpoint's own threads. In the event loop's
    default executor, which the request path shares (a large request's privacy scan, the semantic cache, the
    sandbox), a key posting ratings faster than the ledger took them held every thread, and the other clients'
    requests waited behind its queue (no rate limit applies to feedback)."""
    global _threads
    if _threads is None:
        _threads = ThreadPoolExecutor(FEEDBACK_THREADS, thread_name_prefix="tierwise-feedback")
    return await asyncio.get_running_loop().run_in_executor(_threads, functools.partial(fn, *args, **kw))


MCP_KEY = "mcp"  # the key name an MCP evaluation counts under (a share of a type's evidence, like a gateway key)


def link_mcp_evaluation(gateway: Any, ensemble: str, run_id: str | None, verdict: str,
                        note: str = "") -> dict[str, Any] | None:
    """The MCP `record_evaluation` tool's verdict on a run of `ensemble` becomes feedback on the run's ledger row
    (`ens_<run id>`), so the learning loop sees it; None when that ensemble has no such run. Only the named
    ensemble's own runs: MCP arguments are untrusted (whatever a prompt injection makes an agent send), and a
    request id of a gateway client (a process prefix and a counter: guessable) would let it rate other clients'
    answers and move the boundary they are served by."""
    ledger = getattr(gateway, "ledger", None)
    if ledger is None or not run_id or not _RID.match(run_id):
        return None
    rid = run_id if run_id.startswith("ens_") else "ens_" + run_id
    ledger.flush()
    rec = ledger.get(rid)
    if rec is None or rec.kind != "ensemble" or (rec.extra or {}).get("ensemble") != ensemble:
        return None
    rating = "good" if verdict == "good" else "poor"
    linked = record_feedback(ledger, rid, rating, note[:MAX_REASON] or None, source="mcp")
    linked["judging"] = notify_route(gateway, linked, key=MCP_KEY)
    return linked


async def feedback_endpoint(app: Any, scope: dict[str, Any], receive: Any, send: Any) -> None:
    """`POST /v1/tierwise/feedback` behind the gateway key; errors in OpenAI's error schema."""
    from tierwise.errors import TierwiseError
    from tierwise.server.asgi_scope import request_headers
    from tierwise.wire import openai_chat

    headers = request_headers(scope)
    try:
        key = app.check_auth(headers, scope)
        data = await app.parse(scope, receive, headers)
        rid, rating, reason = parse_feedback(data)
        gw = app.gw
        if gw.ledger is None:
            raise InvalidRequest("feedback needs the ledger, which this gateway's config disables")
        # The ledger is SQLite behind a batch writer: waiting for it and reading the row are blocking
        # I/O, so they run in a worker thread of their own and a flood of feedback never stalls the event
        # loop, nor the worker threads other requests need.
        linked = await _in_feedback_thread(record_feedback, gw.ledger, rid, rating, reason,
                                           route_filter=lambda r: key.visible(r, gw.deployments),
                                           owner=key.name if app.keyring.required else None)
        rec = await _in_feedback_thread(gw.ledger.get, rid) if wants_judging(gw, linked) else None
        linked["judging"] = notify_route(gw, linked, rec, key.name if app.keyring.required else "")
    except TierwiseError as e:
        await app.send_json(send, e.status, openai_chat.encode_error(e))
        return
    await app.send_json(send, 200, orjson.dumps({"object": "tierwise.feedback", **linked}))
