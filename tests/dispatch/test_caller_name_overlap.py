"""A caller's name cannot make its printed rules reach other callers' keys (session 37, review37a).

A named caller's rules cover `q:*:<name>`. Before session 37 the tenant's task queues were `q:<zone>:<cap>:<priority>`,
shared by every caller, and an upgrade leaves them behind with their waiting tasks (nothing reads or expires them
any more). A caller named `normal` (or `high`, `low`) had its queue pattern match every such queue of that priority,
and its rules' XRANGE read the other callers' prompts there (XDEL, XADD MAXLEN 0 too). Names equal to a priority
are now refused. ACL users are made on the shared Redis and deleted after."""

from __future__ import annotations

import pytest
import redis
import redis.asyncio as aredis

from tests.dispatch.conftest import REDIS_URL
from tests.dispatch.shared_key_attempts import let_through
from tests.dispatch.test_tenancy_acl import acl_users  # noqa: F401 (the same fixture)
from tierwise.dispatch.acl import caller_rules
from tierwise.dispatch.config import DispatchConfig


@pytest.mark.asyncio
@pytest.mark.parametrize("name", ["normal", "high", "low"])
async def test_a_caller_named_like_a_priority_reads_no_other_callers_queue(acl_users, redis_prefix, name):  # noqa: F811
    admin = aredis.from_url(REDIS_URL)
    legacy = f"{redis_prefix}{{acme}}:q:any:classify:{name}"  # a queue of before session 37, its task still there
    await admin.xadd(legacy, {"id": "t1", "p": '{"messages":[{"role":"user","content":"payroll secret"}]}'})
    read: list[object] = []
    try:
        rules = caller_rules(redis_prefix, "acme", caller=name)
    except ValueError:
        rules = None  # refused: no such user can be printed
    if rules is not None:
        hostile = aredis.from_url(acl_users(rules))
        try:
            read = await hostile.xrange(legacy)
        except redis.exceptions.NoPermissionError:
            pass
        await hostile.aclose()
    await admin.aclose()
    assert read == []
    with pytest.raises(ValueError, match="priority"):
        DispatchConfig(caller=name)
    with pytest.raises(ValueError, match="priority"):
        DispatchConfig(callers=["app-a", name])


@pytest.mark.asyncio
async def test_a_caller_named_like_a_capability_touches_no_wake_list_of_before_session_37(
        acl_users, redis_prefix):  # noqa: F811
    """Before session 37 a capability's wake list was `wake:<zone>:<cap>`, shared by the tenant's callers and waited on
    by the workers of that version (an upgrade runs both for a while). A caller named `classify` had `wake:*:classify`
    in its rules: it emptied that list (the old callers' tokens: their workers slept a `block` each time) or flooded
    it (session 38, dist9)."""
    admin = aredis.from_url(REDIS_URL)
    old_wake = f"{redis_prefix}{{acme}}:wake:any:classify"
    old_queue = f"{redis_prefix}{{acme}}:q:any:classify:normal"
    await admin.lpush(old_wake, "1", "1")
    hostile = aredis.from_url(acl_users(caller_rules(redis_prefix, "acme", caller="classify")))
    attempts = {"LTRIM the old wake list": lambda: hostile.ltrim(old_wake, 1, 0),
                "LPUSH the old wake list": lambda: hostile.lpush(old_wake, *["1"] * 1000),
                "XLEN an old queue": lambda: hostile.xlen(old_queue)}
    try:
        allowed = await let_through(attempts)
        assert await admin.llen(old_wake) == 2
    finally:
        await hostile.aclose()
        await admin.aclose()
    assert allowed == []
