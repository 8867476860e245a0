"""The task and result records on the wire: what a caller publishes and how a worker reads it.

A task is a stream entry with fields `id` (the task id: the dedupe key), `reply` (the caller's
result stream for the task's capability and zone, which must be one of the tenant's), `p` (the payload, JSON) and `dl` (the
deadline, epoch ms). Entries come from Redis and are untrusted like any input: `parse_task`
refuses anything off this shape, and the worker dead-letters it instead of crashing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from tierwise.dispatch.keys import Keyspace

TASK_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")
MAX_FIELDS = 16


@dataclass(slots=True)
class Task:
    id: str
    reply: str
    payload: Any
    deadline_ms: int | None


class Malformed(Exception):
    def __init__(self, reason: str, task_id: str | None = None, reply: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.task_id = task_id
        self.reply = reply


def fields_of(flat: Any) -> dict[bytes, bytes]:
    """A stream entry's field list (`[k, v, k, v, ...]`) as a dict; Malformed when it is not one."""
    if isinstance(flat, dict):
        items = list(flat.items())
    elif isinstance(flat, list) and len(flat) % 2 == 0:
        items = list(zip(flat[::2], flat[1::2], strict=True))
    else:
        raise Malformed("the entry is not a list of field/value pairs")
    if len(items) > MAX_FIELDS:
        raise Malformed(f"the entry has more than {MAX_FIELDS} fields")
    out: dict[bytes, bytes] = {}
    for k, v in items:
        if not isinstance(k, bytes) or not isinstance(v, bytes):
            raise Malformed("the entry's fields are not strings")
        out[k] = v
    return out


def parse_task(flat: Any, keys: Keyspace, max_bytes: int, zone: str, capability: str, caller: str = "") -> Task:
    """`caller`: whose queue the entry came from (`""`: a shared queue of before session 37); the reply address must
    be one of its result streams."""
    f = fields_of(flat)
    raw_id = f.get(b"id", b"").decode("utf-8", "replace")
    task_id = raw_id if TASK_ID.match(raw_id) else None
    reply = f.get(b"reply", b"").decode("utf-8", "replace")
    reply_ok = reply if keys.is_results_key(reply, zone, capability, caller) else None
    if task_id is None:
        raise Malformed("the task id is missing or not 1-64 letters, digits, `_` or `-`", None, reply_ok)
    if reply_ok is None:
        raise Malformed(f"the reply address is missing or not a result stream of this tenant for {capability} in "
                        f"the {zone} zone" + (f" of caller {caller}" if caller else ""), task_id, None)
    if b"oversize" in f:  # (scripts.py `small`: the take left the entry's payload in Redis)
        raise Malformed(f"the entry is {f[b'oversize'].decode('ascii', 'replace')[:20]} bytes, more than "
                        f"max_payload_bytes ({max_bytes}) and its other fields", task_id, reply_ok)
    raw = f.get(b"p")
    if raw is None:
        raise Malformed("the payload is missing", task_id, reply_ok)
    if len(raw) > max_bytes:
        raise Malformed(f"the payload is {len(raw)} bytes, more than max_payload_bytes ({max_bytes})", task_id,
                        reply_ok)
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Malformed("the payload is not JSON", task_id, reply_ok) from None
    deadline: int | None = None
    if b"dl" in f:
        try:
            deadline = int(f[b"dl"])
        except ValueError:
            raise Malformed("the deadline is not an integer", task_id, reply_ok) from None
    return Task(task_id, reply_ok, payload, deadline)


def task_fields(task_id: str, reply: str, payload: bytes, deadline_ms: int | None = None) -> list[Any]:
    """A task's fields; without `deadline_ms` the publishing script adds `dl` from Redis's clock."""
    fields = ["id", task_id, "reply", reply, "p", payload]
    return fields if deadline_ms is None else [*fields, "dl", str(deadline_ms)]
