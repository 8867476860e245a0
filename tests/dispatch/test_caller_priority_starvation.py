"""A caller cannot starve the others by marking its tasks `high` (session 37, review37a).

Priority is the caller's to choose. With the take script reading every caller's high queues before any caller's
normal ones, one application that published its whole backlog as `high` (and kept it full) had the workers serve
none of the other callers' normal tasks until it ran dry: the per-caller turn (dist8) held within one priority only.
A worker now goes round the callers it lists, and a caller's priority orders that caller's own tasks."""

from __future__ import annotations

import pytest

from tests.dispatch.test_callers_take_turns import served_order


@pytest.mark.asyncio
async def test_a_callers_high_priority_backlog_does_not_starve_another_callers_normal_task(
        openai_up, redis_prefix, tmp_path):
    order = await served_order(openai_up, redis_prefix, tmp_path, "hog", "high")
    assert order.index("b0") <= 2, order
