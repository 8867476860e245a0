"""The generic async approval API the dispatcher calls for gated capabilities (no HTTP)."""

from __future__ import annotations

import asyncio

import pytest

from tests.doubles import Reply
from tests.gateway.conftest import oai
from tierwise.dispatch.approval_store import MemoryApprovalStore, RedisApprovalStore
from tierwise.dispatch.approvals import ApprovalRejected, Approvals, ClientLeft, TooManyPending
from tierwise.dispatch.approvals_config import ApprovalsConfig

from .conftest import REDIS_URL, approvals_config, needs_redis


def service(**gate) -> Approvals:
    cfg = ApprovalsConfig.model_validate({"capabilities": {"synthesise": {"timeout": "30s", "max_pending": 1, **gate}}})
    return Approvals(cfg, MemoryApprovalStore())


async def first_pending(a: Approvals) -> dict:
    while not (p := await a.pending()):
        await asyncio.sleep(0.005)
    return p[0]


def test_capability_waits_for_approval_and_can_be_rejected():
    async def go() -> None:
        a = service()
        assert await a.require_capability("classify", {"text": "x"}) is None  # not gated: no wait
        task = asyncio.ensure_future(a.require_capability("synthesise", {"doc": "quarterly numbers"}, tenant="t1"))
        p = await first_pending(a)
        assert p["kind"] == "capability" and p["tenant"] == "t1" and "quarterly numbers" in p["preview"]
        with pytest.raises(TooManyPending):  # max_pending 1
            await a.require_capability("synthesise", "another")
        await a.decide(p["id"], True, "admin:OPS", "fine")
        rec = await task
        assert rec.state == "approved" and rec.approver == "admin:OPS"
        task = asyncio.ensure_future(a.require_capability("synthesise", "again"))
        p = await first_pending(a)
        await a.decide(p["id"], False, "admin:OPS", "no")
        with pytest.raises(ApprovalRejected, match=r"rejected by admin:OPS \(no\)"):
            await task

    asyncio.run(go())


def test_a_caller_that_goes_away_or_is_cancelled_cancels_its_record():
    async def go() -> None:
        a = service()
        left = asyncio.Event()
        task = asyncio.ensure_future(a.wait("capability", "synthesise", gate=a.gate("capability", "synthesise"),
                                            gone=left.wait))
        p = await first_pending(a)
        left.set()
        with pytest.raises(ClientLeft):
            await task
        assert (await a.store.get(p["id"])).state == "cancelled" and await a.pending() == []
        task = asyncio.ensure_future(a.require_capability("synthesise", "x"))
        p = await first_pending(a)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await a.store.get(p["id"])).state == "cancelled"

    asyncio.run(go())


def test_unreachable_redis_store_is_a_clear_503(two_tier, anthropic_up):
    import openai

    anthropic_up.default = Reply(text="never")
    cfg = approvals_config()
    cfg["store"] = {"backend": "redis", "redis_url": "redis://127.0.0.1:1/0"}  # nothing listens there
    g = two_tier(approvals=cfg, server={"default_route": "main", "admin_keys_env": ["TW_ADMIN"]})
    with pytest.raises(openai.InternalServerError) as e:
        oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": "x"}])
    assert e.value.status_code == 503 and "approval store is unavailable" in e.value.message
    assert anthropic_up.requests == []  # nothing reached the upstream


@needs_redis
def test_redis_store_decides_once():
    async def go() -> None:
        import uuid

        store = RedisApprovalStore(REDIS_URL, f"tierwise-test:{uuid.uuid4().hex[:12]}:")
        a = Approvals(ApprovalsConfig.model_validate({"capabilities": {"c": {"timeout": 30}}}), store)
        try:
            task = asyncio.ensure_future(a.require_capability("c", "payload"))
            p = await first_pending(a)
            results = await asyncio.gather(a.decide(p["id"], True, "admin:A", None),
                                           a.decide(p["id"], False, "admin:B", None), return_exceptions=True)
            assert sorted(type(r).__name__ for r in results) == ["Conflict", "dict"]  # the first decision wins
            winner = next(r for r in results if isinstance(r, dict))
            if winner["state"] == "approved":
                assert (await task).approver == "admin:A"
            else:
                with pytest.raises(ApprovalRejected):
                    await task
        finally:
            keys = [k async for k in store.client.scan_iter(match=store.prefix + "*")]
            if keys:
                await store.client.delete(*keys)
            await a.close()

    asyncio.run(go())


def test_preview_is_cleaned_before_it_is_cut():
    class Privacy:  # stands for the privacy guard: replaces each whole e-mail address
        @staticmethod
        def clean_text(text: str) -> str:
            import re

            return re.sub(r"[\w.]+@[\w.]+\.\w+", "<EMAIL_ADDRESS>", text)

    a = service()
    a.privacy = Privacy()

    async def go() -> None:
        # The cut at 20 characters falls inside the address: cut first, the half left would not be recognised.
        shown = await a.preview("write to jane.doe@example.com today please", 20)
        assert shown == "write to <EMAIL_ADDR…" and "jane" not in shown
        assert await a.preview("short", 20) == "short"

    asyncio.run(go())


def test_a_request_bound_for_a_gated_capability_waits_with_its_trace():
    from tierwise.canonical import Message, Request, TextBlock
    from tierwise.policies.base import Context
    from tierwise.trace import Trace

    async def go() -> None:
        a = service()
        req = Request(model="x", messages=[Message("user", [TextBlock("summarise the merger")])])
        ctx = Context(Trace("req_1", "synth-route"), lambda n: None)  # type: ignore[arg-type,return-value]
        await a.gate_request(req, ctx, "classify", None, kind="capability")  # not gated: no wait, no step
        assert ctx.trace.steps == []
        task = asyncio.ensure_future(a.gate_request(req, ctx, "synthesise", None, kind="capability"))
        p = await first_pending(a)
        assert (p["kind"], p["subject"], p["request_id"]) == ("capability", "synthesise", "req_1")
        assert "summarise the merger" in p["preview"]
        await a.decide(p["id"], True, "admin:OPS", "go")
        await task
        assert ctx.notes["approval"]["approver"] == "admin:OPS" and ctx.trace.steps[-1].name == "approval"

    asyncio.run(go())
