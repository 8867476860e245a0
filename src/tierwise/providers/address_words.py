"""Words of upstream error text that the address mask's patterns catch but that are no address (wire12), for
providers/address_mask.py: each match of its patterns is kept when it is one of these shapes, else `[address]`.

Before (review34c's "left"), a provider's error that named its software or a source line lost the words that said
what went wrong: `vllm 0.6.3.4`, `transformers 4.46.0.1` (a four-part version reads as an IPv4 address),
`/src/ggml-cuda.cu:70`, `tokenizer.json:12` (a dotted name and a port), `length:4096`, `minute:60`, `code:400` (a
one-label name and a port, as `ollama:11434`). Kept now, each only where its context says what it is:
- a four-part version: decimal, ASCII dots, no port or path after it, and either one of five or more parts
  (`1.2.3.4.5`: no address has five) or right after a version's cue: `version`/`ver`/`release`/`rev` or a requirement's
  operator (`==`, `>=`, `~=`; then a non-private number, wire13 for the words), or the name of a serving stack's software with ` `, `/`, `-` (`vllm/0.6.3.4`, a
  User-Agent; `vllm-0.6.3.4`, a wheel). After a software name, only a number that is no private address (public, or
  `0.x.x.x`, which nothing connects to): `vllm 10.0.0.5` is still masked, so is `host 4.46.0.1` (no cue);
- a source file's position: `name.ext:N` where `ext` is a source or data file's suffix. Suffixes that are no
  top-level domain (`.json`, `.cpp`, `.yaml`, `.js`, ...) are kept as they stand: no resolver finds such a host.
  Suffixes that are also country domains (`.py` Paraguay, `.cu` Cuba, `.rs` Serbia, `.cc`, `.sh`, `.pl`, `.md`, `.so`)
  need a file's context: a path before the name (`src/main.rs:42`, `C:\\x\\main.rs:42`; not `//`, a URL's host) or a
  column after the line (`main.rs:42:7`: no host has two ports). So `ggml-cuda.cu:70` with its path (as llama.cpp
  prints `__FILE__`) is kept and bare `evil.rs:8000` is not; bare `file.py:42` stays masked (a Paraguayan host);
- a one-label `field:N` whose word is a field's or a unit's name (`length`, `minute`, `tokens`, `limit`, ...), and
  `code:N`/`status:N` when N is an HTTP status code (100-599, not 443): no compose or Kubernetes service is named
  `length`, while one named `status` or `code` on port 8080 would be (masked).
review35b: those rules kept addresses a misconfigured upstream or its proxy writes. Not kept now: a field word or a
file's name after a word saying it was connected to (`Cannot connect to host index:9200 ssl:default`, `dial tcp
batch:8000`), a private address after an operator or `release` (`host==10.0.0.5`, `failed to release 10.244.1.5`;
`tensorrt==10.0.1.6` goes with them), a fifth part whose run holds a private address (`10.0.0.5.8000`, tcpdump's
address and port), a part with a leading zero (inet_aton's octal), a public address after `node` or `driver`.
Never kept: anything in a URL's authority (after `//` or `@`), another form of an address (octal, hex, ideographic
dots, a 32-bit number), a name under a private suffix, an address with a port.
"""

from __future__ import annotations

import ipaddress
import re

_QUAD = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_VERSION_WORDS = frozenset(("version", "ver", "release", "rev"))
_OPERATORS = ("==", ">=", "<=", "~=", "!=")
_SOFTWARE = frozenset(
    "vllm sglang transformers tokenizers torch pytorch torchvision cuda cudnn cublas nccl triton tensorrt tensorrt-llm"
    " trt-llm python ollama llama.cpp llama-cpp-python tgi text-generation-inference lmstudio numpy xformers"
    " flash-attn flash_attn flashinfer accelerate peft bitsandbytes safetensors onnxruntime openvino rocm mlx jax"
    " jaxlib tensorflow nvcc openai anthropic aiohttp httpx uvicorn fastapi pydantic starlette gcc glibc"
    " openssl nginx envoy kernel linux".split())  # (not `node`, `driver`: a cluster's or Spark's machines, review35b)
_WORD = re.compile(r"[\w.+-]+")
_NOT_CONNECTED = ipaddress.IPv4Network("0.0.0.0/8")

_FILE = re.compile(r"[\w-]+(?:\.[\w-]+)*\.([a-z0-9]+):\d+", re.IGNORECASE)
# no top-level domain is named so (IANA's root zone, 2026)
_FILE_SUFFIXES = frozenset(
    "c h cpp hpp cxx hxx hh cuh inl ipp js mjs cjs ts tsx jsx json jsonl yaml yml toml txt ini cfg conf java kt kts go rb"
    " lua zig swift pyx pxd pyi ipynb proto gguf jinja j2 html htm css xml sql rst csv tsv tpl metal pth onnx".split())
# source-file suffixes that are also top-level domains: kept only with a file's context
_TLD_SUFFIXES = frozenset("py rs cc cu sh pl md so pt cl mm".split())

_FIELD = re.compile(r"([a-z]+):(\d+)", re.IGNORECASE)
_FIELD_WORDS = frozenset(
    "length len minute minutes min second seconds sec hour hours day days ms line lines col column row limit size"
    " count max total used tokens token index offset pos position step steps epoch batch rank layer width height dim"
    " seq retry retries timeout page chunk bytes chars attempt attempts level depth priority score rpm tpm quota"
    " requested remaining input output prompt completion".split())
_STATUS_WORDS = frozenset(("code", "status"))
# The word before a `name:port` that says a connection was tried to it (aiohttp's `Cannot connect to host index:9200
# ssl:default`, Go's `dial tcp batch:8000: connect:`, curl's `connect to`): then a field word or a file's name is a
# service (review35b: a service named `index`, `quota`, `batch` or a namespace named `sql` reached the client).
_CONNECTING = frozenset(
    "host tcp tcp4 tcp6 udp dial connect connecting reach reaching backend endpoint address addr peer proxy server"
    " via resolve resolving lookup".split())
# `to` after one of these (`connect to`, `proxying to`, `sent to`; not `up to tokens:4096`, a field)
_CONNECTING_TO = ("connect", "reach", "dial", "prox", "forward", "rout", "send", "sent", "request")
_PARTS = re.compile(r"(?<!\d)(?:\d{1,3}\.){0,3}$")  # (before a quad: up to three parts of its run)
_MORE = re.compile(r"(?:\.\d{1,3}(?!\d)){0,3}")  # (after it)


def harmless(m: re.Match[str]) -> bool:
    """Whether the mask's match `m` (of an address pattern, in `m.string`) is one of the module's kept shapes."""
    word, text, start, end = m.group(), m.string, m.start(), m.end()
    before = text[max(0, start - 40):start]
    if before.endswith(("//", "@")):
        return False  # a URL's authority: its host whatever it looks like
    if _QUAD.fullmatch(word):
        return _version(word, before, text[end:end + 2], text, start, end)
    if _connecting(before, text[end:end + 6]):
        return False  # (a name and a port that were connected to: a service, whatever its word)
    if (f := _FILE.fullmatch(word)) is not None:
        ext = f.group(1).lower()
        if ext in _FILE_SUFFIXES:
            return True
        # a path before it (`src/x.rs`, `C:\\x\\x.rs`; not `//x.rs`, a URL's host), or a column after its line
        path = before.endswith("\\") or (before.endswith("/") and not before.endswith(("//", ":/")))
        return ext in _TLD_SUFFIXES and (path or (text[end:end + 1] == ":" and text[end + 1:end + 2].isdigit()))
    if (f := _FIELD.fullmatch(word)) is not None:
        name, n = f.group(1).lower(), int(f.group(2))
        return name in _FIELD_WORDS or (name in _STATUS_WORDS and 100 <= n <= 599 and n != 443)
    return False


def _connecting(before: str, after: str) -> bool:
    if after.startswith((" ssl:", ": connect")):
        return True
    word = _last_word(before := before.rstrip(" ")).lower()
    if word == "to":
        return _last_word(before[:-2].rstrip(" ")).lower().startswith(_CONNECTING_TO)
    return word in _CONNECTING


def _version(word: str, before: str, after: str, text: str, start: int, end: int) -> bool:
    if after.startswith("/"):
        return False  # a path after it: an address
    if (after[:1] == "." and after[1:2].isdigit()) or (before.endswith(".") and before[-2:-1].isdigit()):
        # A fifth part: kept when no four parts in a row around it are a private address (review35b: tcpdump's and
        # BSD netstat's `10.0.0.5.8000`, an address and its port, and `1.10.0.0.5` were kept whole). Up to three
        # parts either side (the rows that overlap this match; a longer number ends a row: no address part).
        h, t = _PARTS.search(text, max(0, start - 12), start), _MORE.match(text, end, end + 12)
        parts = f"{h.group() if h else ''}{word}{t.group() if t else ''}".split(".")
        if any(len(p) > 1 and p[0] == "0" for p in parts):
            return False  # (inet_aton reads `012` as octal)
        n = [int(p) for p in parts]
        for i in range(len(n) - 3):
            a, b, c, d = n[i:i + 4]
            if a <= 255 and b <= 255 and c <= 255 and d <= 255 and _private(a, b, c, d):
                return False
        return True
    # After a requirement's operator or `release` (a verb too: CNI's `failed to release 10.244.1.5`), a private
    # address is an address (review35b: `host==10.0.0.5`, `ip != 192.168.1.7` were kept)
    if before.rstrip(" ").endswith(_OPERATORS):
        return _not_private(word)
    cue = _last_word(before.rstrip(" :=")).lower()
    if cue in _VERSION_WORDS:
        # (wire13: any quad was kept after `version`/`ver`/`rev`, `upstream rev 10.0.0.5` whole; a version that reads
        # as a private address, `version 10.0.1.6`, is masked with them, as after `==`)
        return _not_private(word)
    if before[-1:] not in (" ", "/", "-"):
        return False
    name = _last_word(before[:-1]).lower()
    if name not in _SOFTWARE and name.rstrip("-") not in _SOFTWARE:
        return False
    return _not_private(word)


def _not_private(word: str) -> bool:
    """A dotted quad that is no private or reserved address (ipaddress's `is_global`, tested on the parts: 20-40 us
    a quad through ipaddress) or one in 0.0.0.0/8, which nothing connects to."""
    parts = word.split(".")
    if any(len(p) > 1 and p[0] == "0" for p in parts):
        return False  # (inet_aton reads `012` as octal: `012.0.0.5` is 10.0.0.5; review35b)
    a, b, c, d = (int(p) for p in parts)
    if max(a, b, c, d) > 255:
        return False
    return not _private(a, b, c, d)


def _private(a: int, b: int, c: int, d: int) -> bool:
    """Whether the address of these parts (each 0-255) is private or reserved (not 0.0.0.0/8: nothing connects to it)."""
    if a == 0:
        return False
    return (a in (10, 127) or a >= 240 or (a == 100 and 64 <= b <= 127) or (a, b) in _PRIVATE_16
            or (a == 172 and 16 <= b <= 31) or (a == 198 and b in (18, 19)) or (a, b, c) in _PRIVATE_24)


_PRIVATE_16 = frozenset(((169, 254), (192, 168)))
_PRIVATE_24 = frozenset(((192, 0, 0), (192, 0, 2), (192, 88, 99), (198, 51, 100), (203, 0, 113)))


def _last_word(text: str) -> str:
    """The word `text` ends with. (Matched on the reversed text: `[\\w.+-]+$` searched from every position cost
    ~8 us a cue, 18-27 ms for 4,000 characters of four-part numbers.)"""
    w = _WORD.match(text[::-1])
    return "" if w is None else w.group()[::-1]
