"""Seeded mutation fuzz of a real gateway on loopback (session 38, fuzz38): hostile clients and a hostile upstream.

A gateway (tests/harness.py) on the upstream doubles, with a route under `pii: redact` (the privacy scan reads every
attachment) and a plain fallback route, gets mutated requests on the chat, messages, responses, embeddings,
count_tokens, input_tokens and feedback endpoints: attachments (PNG, JPEG, GIF, WebP, WAV, MP3, PDF, office zip, tar,
gzip) truncated, bit-flipped, given huge declared lengths, duplicated; fields of the wrong type, surrogate halves, NUL
bytes, content nested 1,000 deep, bodies of a few MB. Then a hostile upstream (the doubles' `Raw`): mutated SSE, wrong
content types, a gzip bomb, a stream that never ends. Each answer is checked: no 5xx from the gateway itself (an
upstream's fault may be a 502/504 in the API's error schema), no traceback text, an error in the schema of the API
spoken (read back through the openai / anthropic SDKs' error classes), no request past the client's 60 s bound.

    PYTHONPATH=src:. .venv/bin/python bench/gateway_fuzz.py --seed 1 --requests 3000
"""

from __future__ import annotations

import argparse
import base64
import collections
import gzip
import io
import json
import random
import resource
import struct
import sys
import tarfile
import time
import wave
import zipfile
import zlib
from typing import Any

import anthropic
import httpx2 as httpx
import openai

from tests.doubles import AnthropicDouble, OpenAIDouble, Raw, Reply
from tests.harness import GatewayServer, make_config, two_tier_config

# ---------------------------------------------------------------- seed files


def _png() -> bytes:
    def ch(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    return (b"\x89PNG\r\n\x1a\n" + ch(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0))
            + ch(b"tEXt", b"Comment\x00jane@example.com") + ch(b"IDAT", zlib.compress(b"\0" * 52)) + ch(b"IEND", b""))


def _jpeg() -> bytes:
    return (b"\xff\xd8\xff\xfe\x00\x12jane@example.com" + b"\xff\xc0\x00\x11\x08\x00\x10\x00\x20\x03" + b"\0" * 9
            + b"\xff\xd9")


def _gif() -> bytes:
    return b"GIF89a\x10\x00\x10\x00\x00\x00\x00\x21\xfe\x10jane@example.com\x00\x2c\0\0\0\0\x10\0\x10\0\0\x02\x02D\x01\0;"


def _webp() -> bytes:
    body = b"WEBPVP8X" + struct.pack("<I", 10) + b"\x08\0\0\0\x0f\0\0\x0f\0\0EXIF" + struct.pack("<I", 16) + b"jane@example.com"
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _wav() -> bytes:
    b = io.BytesIO()
    with wave.open(b, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8000)
        w.writeframes(b"\x80" * 64)
    return b.getvalue()


def _mp3() -> bytes:
    f = b"COMM" + struct.pack(">I", 21) + b"\0\0\0eng\0jane@example.com"
    return b"ID3\x03\x00\x00" + bytes([0, 0, 0, len(f)]) + f + b"\xff\xfb" + b"\0" * 64


def _pdf() -> bytes:
    return (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
            b"3 0 obj<</Type/Page>>endobj\n4 0 obj<</Length 35>>stream\nBT (jane@example.com 0701234567) Tj ET\n"
            b"endstream endobj\ntrailer<</Root 1 0 R>>\n%%EOF")


def _docx() -> bytes:
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w") as z:
        z.writestr("word/document.xml", "<w:document><w:body><w:p><w:r><w:t>jane@</w:t></w:r><w:r><w:t>example.com"
                   "</w:t></w:r></w:p></w:body></w:document>")
    return b.getvalue()


def _tar() -> bytes:
    b, d = io.BytesIO(), b"jane@example.com"
    with tarfile.open(fileobj=b, mode="w") as t:
        ti = tarfile.TarInfo("n.txt")
        ti.size = len(d)
        t.addfile(ti, io.BytesIO(d))
    return b.getvalue()


SEEDS = {"image/png": _png, "image/jpeg": _jpeg, "image/gif": _gif, "image/webp": _webp, "audio/wav": _wav,
         "audio/mpeg": _mp3, "application/pdf": _pdf, "application/zip": _docx, "application/x-tar": _tar,
         "application/gzip": lambda: gzip.compress(b"call jane@example.com")}


def mutate(rng: random.Random, b: bytes) -> bytes:
    out = bytearray(b)
    for _ in range(rng.randint(0, 6)):
        op = rng.randrange(8)
        n = len(out)
        if op == 0 and n:
            out[rng.randrange(n)] = rng.randrange(256)
        elif op == 1 and n:
            del out[rng.randrange(n):]  # truncated
        elif op == 2 and n > 4:
            i = rng.randrange(n - 4)  # a huge or zero declared length / size
            out[i:i + 4] = rng.choice([b"\xff\xff\xff\xff", b"\0\0\0\0", b"\x7f\xff\xff\xff", b"\x80\0\0\0"])
        elif op == 3 and n:
            i = rng.randrange(n)
            out[i:i] = out[i:i + rng.randint(1, 64)] * rng.randint(1, 300)  # repeated structure
        elif op == 4:
            out += rng.choice(list(SEEDS.values()))()  # another file glued on
        elif op == 5:
            out += b"\xff" * rng.randint(1, 4000)
        elif op == 6 and n:
            i = rng.randrange(n)
            out[i:i] = rng.choice([b"\xff\xd8", b"\x21\xfe\xff", b"LIST", b"obj", b"/Type/Page", b"\0", b"\x1f\x8b",
                                   b"PK\x03\x04", b"ustar"])
        elif op == 7:
            return bytes(out[: rng.randrange(24)])
    return bytes(out)


# ---------------------------------------------------------------- hostile JSON values

WEIRD: list[Any] = [None, True, 0, -1, 2**63, 1e308, "", "\x00", "\ud800", "\udfff x", "a\x00b", [], {}, [None],
                    {"type": None}, "x" * 100_000, [[[[[]]]]], {"content": {"content": {}}}, -0.0, "\u202e", 10**30]


def deep(n: int, leaf: Any) -> Any:
    for _ in range(n):
        leaf = {"type": "web_fetch_tool_result", "tool_use_id": "t", "content": [leaf]}
    return leaf


def attachment(rng: random.Random, api: str) -> tuple[Any, str]:
    media = rng.choice(list(SEEDS))
    data = base64.b64encode(mutate(rng, SEEDS[media]())).decode()
    if rng.random() < 0.05:
        data = data[: rng.randrange(len(data) + 1)] + rng.choice(["=", "\x00", "\ud800", "!!", " ", "%%"])
    if rng.random() < 0.1:
        media = rng.choice(list(SEEDS) + ["image/svg+xml", "text/plain", "", "image/png;x=1"])
    if api == "anthropic":
        kind = "image" if media.startswith("image") else "document"
        return {"type": kind, "source": {"type": "base64", "media_type": media, "data": data}}, media
    if api == "responses":
        if media.startswith("image"):
            return {"type": "input_image", "image_url": f"data:{media};base64,{data}"}, media
        return {"type": "input_file", "filename": "f", "file_data": f"data:{media};base64,{data}"}, media
    if media.startswith("image"):
        return {"type": "image_url", "image_url": {"url": f"data:{media};base64,{data}"}}, media
    if media.startswith("audio"):
        return {"type": "input_audio", "input_audio": {"data": data, "format": media.split("/")[1]}}, media
    return {"type": "file", "file": {"filename": "f", "file_data": f"data:{media};base64,{data}"}}, media


def break_somewhere(rng: random.Random, body: Any) -> Any:
    """Replace one value anywhere in `body` by a hostile one (or delete it)."""
    paths: list[tuple[Any, Any]] = []

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            for k in list(v):
                paths.append((v, k))
                walk(v[k])
        elif isinstance(v, list):
            for i in range(len(v)):
                paths.append((v, i))
                walk(v[i])
    walk(body)
    if paths:
        parent, key = rng.choice(paths)
        if isinstance(parent, dict) and rng.random() < 0.2:
            del parent[key]
        else:
            parent[key] = rng.choice(WEIRD) if rng.random() < 0.8 else deep(rng.choice([7, 50, 1000]), {"type": "text", "text": "x"})
    return body


def request(rng: random.Random, route: str) -> tuple[str, str, Any]:
    ep = rng.choice(["chat", "chat", "messages", "messages", "responses", "embeddings", "count", "input_tokens",
                     "feedback"])
    text = rng.choice(["hello", "mail jane@example.com", "\ud800", "a\x00b", "x" * rng.choice([1, 70_000])])
    if ep in ("messages", "count"):
        parts = [attachment(rng, "anthropic")[0] for _ in range(rng.randint(0, 3))] + [{"type": "text", "text": text}]
        if rng.random() < 0.15:
            parts.append(deep(rng.choice([5, 7, 1000]), {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "jane@example.com"}}))
        body: Any = {"model": route, "messages": [{"role": "user", "content": parts}]}
        if ep == "messages":
            body.update(max_tokens=rng.choice([16, 0, -1, 10**9]), stream=rng.random() < 0.4)
        path, api = ("/v1/messages" if ep == "messages" else "/v1/messages/count_tokens"), "anthropic"
    elif ep in ("responses", "input_tokens"):
        parts = [attachment(rng, "responses")[0] for _ in range(rng.randint(0, 3))] + [{"type": "input_text", "text": text}]
        body = {"model": route, "input": [{"role": "user", "content": parts}]}
        if ep == "responses":
            body["stream"] = rng.random() < 0.4
        path, api = ("/v1/responses" if ep == "responses" else "/v1/responses/input_tokens"), "openai"
    elif ep == "embeddings":
        body, path, api = {"model": route, "input": rng.choice([text, [text, "b"], [[1, 2, 3]], []])}, "/v1/embeddings", "openai"
    elif ep == "feedback":
        body = {"request_id": rng.choice(["req_x", "", "\x00", "r" * 10_000]), "rating": rng.choice([1, -1, 0, 5, "good"]),
                "reason": text}
        path, api = "/v1/tierwise/feedback", "openai"
    else:
        parts = [attachment(rng, "openai")[0] for _ in range(rng.randint(0, 3))] + [{"type": "text", "text": text}]
        body = {"model": route, "messages": [{"role": "user", "content": parts}], "stream": rng.random() < 0.4}
        path, api = "/v1/chat/completions", "openai"
    if rng.random() < 0.35:
        body = break_somewhere(rng, body)
    return path, api, body


# ---------------------------------------------------------------- checks

_OAI = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="x", max_retries=0)
_ANT = anthropic.Anthropic(base_url="http://127.0.0.1:9", api_key="x", max_retries=0)


def findings(status: int, text: str, api: str, upstream_fault: bool) -> list[str]:
    out = []
    if status >= 500 and not (upstream_fault and status in (502, 503, 504)):
        out.append(f"5xx:{status}")
    if "Traceback" in text or 'File "/' in text:
        out.append("traceback")
    if status >= 400:
        try:
            body = json.loads(text)
        except ValueError:
            return [*out, "error not JSON"]
        resp = httpx.Response(status, json=body, request=httpx.Request("POST", "http://x/"))
        if api == "anthropic":
            ok = isinstance(body, dict) and body.get("type") == "error" and isinstance(body.get("error"), dict) \
                and body["error"].get("message") and body["error"].get("type")
            err: Any = _ANT._make_status_error_from_response(resp)
        else:
            ok = isinstance(body, dict) and isinstance(body.get("error"), dict) and body["error"].get("message") \
                and body["error"].get("type")
            err = _OAI._make_status_error_from_response(resp)
        if not ok or not isinstance(err, openai.APIStatusError | anthropic.APIStatusError) or \
                body["error"]["message"] not in str(err):
            out.append("error off schema")
    return out


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------- runs

BOMB = gzip.compress(b"\0" * (200 << 20))  # 200 MB inflated, ~200 KB sent


def hostile_upstream(rng: random.Random) -> Any:
    sse = (b'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'
           b"data: [DONE]\n\n")
    ant_sse = (b'event: message_start\ndata: {"type":"message_start","message":{"id":"m","type":"message","role":"assistant",'
               b'"content":[],"model":"m","usage":{"input_tokens":1,"output_tokens":0}}}\n\n'
               b'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n'
               b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi"}}\n\n'
               b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
    kind = rng.randrange(6)
    if kind == 0:
        return Raw(200, mutate(rng, rng.choice([sse, ant_sse])), "text/event-stream")
    if kind == 1:
        return Raw(rng.choice([200, 201, 500, 502, 429]), mutate(rng, b'{"id":"x","choices":[]}'),
                   rng.choice(["text/html", "application/json", "text/event-stream", "", "image/png"]))
    if kind == 2:
        return Raw(200, BOMB, rng.choice(["application/json", "text/event-stream"]), headers={"Content-Encoding": "gzip"})
    if kind == 3:  # an endless stream: comments forever (cut by the double after its own bound)
        return Raw(200, b": keepalive\n\n" * 20000, "text/event-stream", split=tuple(range(13, 13 * 200, 13)), pause=0.05)
    if kind == 4:
        return Raw(200, b"data: " + b"x" * (8 << 20) + b"\n\n", "text/event-stream")
    return Raw(200, json.dumps({"choices": [{"message": {"content": "\ud800\x00"}}], "usage": {"prompt_tokens": -5}}),
               "application/json")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--upstream-requests", type=int, default=200)
    ap.add_argument("--big", type=int, default=3, help="bodies of 100 MB sent (the gateway's body bound answers)")
    args = ap.parse_args()
    sys.setrecursionlimit(20_000)  # (bodies nested 1,000 deep, encoded here)
    rng = random.Random(args.seed)
    import tempfile
    from pathlib import Path

    o, a = OpenAIDouble(), AnthropicDouble()
    o.start()
    a.start()
    o.default = Reply(text="fine")
    a.default = Reply(text="fine")
    cfg = two_tier_config(o.url, a.url, routes={"main": {"policy": "fallback", "targets": ["local", "frontier"]},
                                                "fb": {"policy": "fallback", "targets": ["frontier", "local"], "retries": 0}})
    cfg["privacy"] = {"ner": {"enabled": False}, "classes": {"pii": {}}, "policy": {"pii": "redact"},
                      "routes": {"fb": {"pii": "redact"}}}
    g = GatewayServer(make_config(cfg, Path(tempfile.mkdtemp()))).start()
    client = httpx.Client(base_url=g.url, timeout=60, headers={"anthropic-version": "2023-06-01"})
    counts: collections.Counter[str] = collections.Counter()
    examples: dict[str, str] = {}
    rss0 = rss_mb()

    def one(path: str, api: str, content: bytes, upstream_fault: bool = False) -> None:
        counts["requests"] += 1
        t = time.monotonic()
        try:
            r = client.post(path, content=content, headers={"content-type": "application/json"})
            status, text = r.status_code, r.text
        except httpx.TimeoutException:
            status, text = 0, ""
            counts["hang past 60 s"] += 1
        except httpx.HTTPError as e:
            status, text = 0, ""
            counts[f"transport {type(e).__name__}"] += 1
        counts[f"status {status // 100}xx"] += 1
        for f in findings(status, text, api, upstream_fault) if status else []:
            counts[f] += 1
            examples.setdefault(f, f"{path} {status} {text[:300]!r} <- {content[:300]!r} ({time.monotonic() - t:.1f} s)")

    for _ in range(args.requests):
        path, api, body = request(rng, rng.choice(["fb", "main"]))
        one(path, api, json.dumps(body).encode("utf-8", "surrogatepass"))
    rss1 = rss_mb()
    for _ in range(args.big):  # 100 MB bodies: refused by the body bound
        one("/v1/chat/completions", "openai", b'{"model":"main","messages":[{"role":"user","content":"' + b"a" * (100 << 20) + b'"}]}')
    for _ in range(args.upstream_requests):
        o.default = hostile_upstream(rng)
        a.default = hostile_upstream(rng)
        path, api, body = request(rng, "main")
        if path == "/v1/tierwise/feedback":
            continue
        one(path, api, json.dumps(body).encode("utf-8", "surrogatepass"), upstream_fault=True)
    client.close()
    g.stop()
    o.stop()
    a.stop()
    print(json.dumps({"seed": args.seed, **counts, "max RSS MB after client phase": round(rss1),
                      "max RSS MB at start": round(rss0), "max RSS MB at end": round(rss_mb())}, indent=1))
    for k, v in examples.items():
        print(f"FINDING {k}: {v}")


if __name__ == "__main__":
    main()
