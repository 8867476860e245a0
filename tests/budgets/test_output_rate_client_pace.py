"""The measured writing speed of a model (providers/output_rate.py) is the upstream's, not a slow reader's (review37b).
A streamed answer's time ran until its client had taken the last chunk: a client reading slowly (a small receive
window, or pauses between reads) made the model look slow, and the rate it taught, kept per deployment for every
caller, counted later cut calls' unseen output at that pace. A client that read its first five long streams slowly
taught its deployment a rate of a few tokens a second (the fastest kept, x2), and every later cut call of that
model, anyone's, was billed its unseen output at that pace: an o3 call cut after 100 s counted a few hundred output
tokens where it can have written tens of thousands. Seen failing before the fix: `assert 99.5 > 200.0` (a stream
written at once, read over 4 s). The time the relay waits on its reader is now left out. Real gateway and OpenAI
double over loopback; the stream read in the gateway's own loop, its reader pausing after each chunk."""

from __future__ import annotations

import asyncio

from tests.budgets.test_unseen_output import _gateway
from tests.doubles import Reply
from tests.fakes import context, request
from tests.gateway.conftest import gateway, openai_up  # noqa: F401 (the same fixtures)

OUT = 400  # output tokens the upstream reports for a stream it writes at once
PAUSE = 2.0  # seconds the reader takes over each chunk


def test_a_slow_reader_does_not_teach_the_model_a_slow_rate(gateway, openai_up):  # noqa: F811
    g = _gateway(gateway, openai_up)
    openai_up.default = Reply(text="word " * 50, usage=(20, OUT))
    dep = g.gateway.deployments["frontier"]

    async def read_slowly() -> int:
        chunks = 0
        async for _ in await dep.stream(request("hi", max_tokens=800, stream=True), context()):
            chunks += 1
            await asyncio.sleep(PAUSE)  # the client holding the relay
        return chunks

    assert g.loop is not None
    chunks = asyncio.run_coroutine_threadsafe(read_slowly(), g.loop).result(timeout=120)
    assert chunks >= 1 and dep.rate.seen == 1
    # The stream took >= PAUSE s end to end, so its whole time reads <= OUT / PAUSE tokens a second; the upstream
    # wrote its answer at once, in well under the reader's pause.
    assert dep.rate.fastest > OUT / PAUSE, (f"learned {dep.rate.fastest:.0f} tokens/s from a stream the upstream "
                                            f"wrote at once and its reader took {chunks * PAUSE:g} s to read")
