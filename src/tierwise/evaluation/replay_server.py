"""A replay upstream: serves a dataset's recorded answers as an OpenAI-compatible model, so whole
gateway policies run end to end on real recorded outputs.

`model` in the request picks the side (`strong`, `weak`, or the dataset's model names); the
prompt (last user message) picks the query. Each answer carries its recorded outcome (header
`x-tierwise-replay-outcome`, body field `tierwise_replay`), and `GET /replay/stats` gives the
quality of everything served so far — the quality of the policy under test.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiohttp import web

from tierwise.evaluation.dataset import OutcomeDataset

MAX_BODY = 8 * 1024 * 1024
STATE: web.AppKey[ReplayState] = web.AppKey("replay_state")


def _error(status: int, message: str, etype: str = "invalid_request_error") -> web.Response:
    body = {"error": {"message": message, "type": etype, "param": None, "code": None}}
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


class ReplayState:
    def __init__(self, data: OutcomeDataset) -> None:
        self.data = data
        self.index = {p.strip(): i for i, p in enumerate(data.prompts)}
        self.sides = {"strong": "strong", "weak": "weak", data.strong_model: "strong", data.weak_model: "weak"}
        self.served = {"strong": [0, 0.0], "weak": [0, 0.0]}  # side -> [count, sum of outcomes]
        self.misses = 0

    def answer(self, side: str, i: int) -> tuple[str, float]:
        outcome = float(self.data.strong[i] if side == "strong" else self.data.weak[i])
        recorded = self.data.strong_responses if side == "strong" else self.data.weak_responses
        text = recorded[i] if recorded is not None and recorded[i] else (
            f"[replay {side} answer to {self.data.groups[i]}: outcome {outcome:g}]")
        self.served[side][0] += 1
        self.served[side][1] += outcome
        return text, outcome

    def stats(self) -> dict[str, Any]:
        n = sum(int(c) for c, _ in self.served.values())
        total = sum(s for _, s in self.served.values())
        return {"dataset": self.data.name, "served": n, "misses": self.misses,
                "strong_calls": int(self.served["strong"][0]),
                "mean_outcome": (total / n) if n else None}


async def _chat(request: web.Request) -> web.StreamResponse:
    state: ReplayState = request.app[STATE]
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return _error(400, "request body is not valid JSON")
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return _error(400, "`messages` must be a list")
    model = str(body.get("model", ""))
    side = state.sides.get(model)
    if side is None:
        return _error(404, f"model {model!r} is not served; use one of: {', '.join(sorted(state.sides))}",
                      "not_found_error")
    prompt = next((_text(m.get("content")) for m in reversed(body["messages"])
                   if isinstance(m, dict) and m.get("role") == "user"), "")
    i = state.index.get(prompt.strip())
    if i is None:
        state.misses += 1
        # A 400, the request's fault: a gateway in front must not count it against the model's health.
        return _error(400, "this prompt is not in the replay dataset: send one of its prompts verbatim as the last "
                      "user message (`load_dataset(NAME).prompts` in tierwise.evaluation.loaders; RouteLLM's "
                      "contaminated prompts are left out)")
    text, outcome = state.answer(side, i)
    rid = f"chatcmpl-replay-{i}-{int(time.time() * 1000)}"
    usage = {"prompt_tokens": max(1, len(prompt) // 4), "completion_tokens": max(1, len(text) // 4)}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    meta = {"id": state.data.groups[i], "outcome": outcome, "side": side}
    headers = {"x-tierwise-replay-outcome": f"{outcome:g}", "x-tierwise-replay-id": state.data.groups[i]}
    if body.get("stream"):
        resp = web.StreamResponse(headers={"content-type": "text/event-stream", **headers})
        await resp.prepare(request)
        base = {"id": rid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
        for delta, finish in (({"role": "assistant", "content": ""}, None), ({"content": text}, None), ({}, "stop")):
            chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            await resp.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
        if (body.get("stream_options") or {}).get("include_usage"):
            await resp.write(b"data: " + orjson.dumps({**base, "choices": [], "usage": usage}) + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp
    out = {"id": rid, "object": "chat.completion", "created": int(time.time()), "model": model,
           "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
           "usage": usage, "tierwise_replay": meta}
    return web.Response(body=orjson.dumps(out), content_type="application/json", headers=headers)


async def _models(request: web.Request) -> web.Response:
    state: ReplayState = request.app[STATE]
    data = [{"id": m, "object": "model", "owned_by": "tierwise-replay"} for m in sorted(state.sides)]
    return web.Response(body=orjson.dumps({"object": "list", "data": data}), content_type="application/json")


async def _stats(request: web.Request) -> web.Response:
    return web.Response(body=orjson.dumps(request.app[STATE].stats()), content_type="application/json")


def replay_app(data: OutcomeDataset) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
    app[STATE] = ReplayState(data)
    app.router.add_post("/v1/chat/completions", _chat)
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/replay/stats", _stats)
    return app
