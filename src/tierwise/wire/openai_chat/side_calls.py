"""The places of the tool calls of an OpenAI stream's choices past the first (`n > 1`, or a second choice a server
sends unasked), for the bytes relayed to a same-format client (wire13).

The first choice's calls are read into canonical blocks by wire/openai_chat/stream.py, which also relays each call by
its place in the answer (0, 1, 2 …, wire12) and a repeated header once (wire13). The other choices make no events, and
their calls went out with the server's own numbers: the openai SDK's stream helper indexes each choice's list of calls
by `index`, so calls numbered from 1, -1 or with gaps joined a later piece to the wrong call or raised in the caller's
code. The same reading here, per choice: an integer `index` names a call (a new id with a name at an index already
taken is another call, Ollama's all-zero numbering; a known id is its own call), no `index` continues the last call
unless a new id starts one (Gemini). A piece that repeats its call's id (and then its name) is relayed without them.
"""

from __future__ import annotations

from typing import Any

from tierwise.errors import UpstreamError

MAX_NAME = 1024  # (a longer first name is not remembered: its repeats are relayed as sent)


class SideCalls:
    """One choice's calls: the server's numbers and ids -> places (0, 1, 2 …)."""

    __slots__ = ("places", "ids", "owners", "names", "count")

    def __init__(self) -> None:
        self.places: dict[int, int] = {}  # the server's `index` -> the place of the call it names now
        self.ids: dict[str, int] = {}  # a call's id -> its place
        self.owners: dict[int, str] = {}  # a place -> the id its call started with
        self.names: dict[int, str] = {}  # a place -> its call's first name
        self.count = 0

    def _new(self, budget: list[int]) -> int:
        if budget[0] <= 0:  # (shared by every choice of the stream: the state here grows with calls only)
            raise UpstreamError("upstream streamed too many tool calls in the choices past the first")
        budget[0] -= 1
        self.count += 1
        return self.count - 1

    def place(self, tc: Any, budget: list[int]) -> bool:
        """Set `tc["index"]` to its call's place and drop a repeated id/name; whether `tc` changed."""
        if type(tc) is not dict:
            raise TypeError("a tool call that is not an object")  # (the SDK raises on it: malformed, as choice 0)
        given, tid, fn = tc.get("index"), tc.get("id"), tc.get("function")
        name = fn.get("name") if type(fn) is dict else None
        tid = tid if type(tid) is str and tid else None
        at: int | None
        if type(given) is int:
            at = self.places.get(given)
            if at is not None and tid is not None:
                known = self.ids.get(tid)
                if known is not None:
                    at = known
                elif self.owners.get(at, tid) != tid and name:
                    at = self.places[given] = self._new(budget)  # another call at a taken index
            if at is None:
                at = self.ids.get(tid) if tid is not None else None
                if at is None:  # (stored for new calls only: the map grows with calls, not pieces)
                    at = self.places[given] = self._new(budget)
        elif tid is not None and tid not in self.ids or self.count == 0:
            at = self._new(budget)
        else:
            at = self.ids.get(tid, self.count - 1) if tid is not None else self.count - 1
        changed = False
        if tid is not None:
            if self.owners.get(at) == tid:  # a repeated header: the SDK would join it to the first (`call_acall_a`)
                del tc["id"]
                changed = True
                if type(name) is str and name == self.names.get(at):
                    del fn["name"]  # type: ignore[union-attr]
            else:
                self.ids.setdefault(tid, at)
                if self.owners.setdefault(at, tid) != tid:  # (review36b) another id for the call's later piece
                    del tc["id"]  # (the SDK would join the two: `call_acall_b`)
                    changed = True
        if type(name) is str and at not in self.names and len(name) <= MAX_NAME:
            self.names[at] = name
        if given != at or type(given) is not int:
            tc["index"] = at
            changed = True
        return changed
