from tierwise.providers.breaker import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_opens_after_n_failures_then_half_open_probe_and_close():
    clock = Clock()
    b = CircuitBreaker(failures_to_open=3, cooldown=10, clock=clock)
    for _ in range(2):
        assert b.allow()
        b.failure()
    assert b.state == "closed"
    b.failure()
    assert b.state == "open" and not b.allow()
    clock.t = 10.0
    assert b.state == "half_open"
    assert b.allow()  # one probe
    assert not b.allow()  # and only one
    b.success()
    assert b.state == "closed" and b.allow()


def test_failed_probe_reopens():
    clock = Clock()
    b = CircuitBreaker(failures_to_open=1, cooldown=5, clock=clock)
    b.failure()
    clock.t = 5
    assert b.allow()
    b.failure()
    assert b.state == "open"
    assert b.retry_in() == 5


def test_a_rate_limit_holds_for_its_retry_after_and_never_opens():
    clock = Clock()
    b = CircuitBreaker(failures_to_open=2, cooldown=30, clock=clock)
    for _ in range(10):
        b.hold(1.0)
        assert b.state == "closed" and b.held_for() == 1.0
        clock.t += 1.0
        assert b.held_for() == 0.0 and b.allow()
    b.hold(3600)  # a day's quota: held for the cooldown at most, then one call finds out
    assert b.held_for() == 30
    b.hold(None)  # no Retry-After: a shorter hold does not cut a longer one
    assert b.held_for() == 30
    clock.t += 30
    b.hold(None)
    assert b.held_for() == 1.0


def test_a_rate_limited_probe_hands_its_slot_back():
    clock = Clock()
    b = CircuitBreaker(failures_to_open=1, cooldown=5, clock=clock)
    b.failure()
    clock.t = 5
    assert b.allow() and not b.allow()
    b.hold(1.0)  # the probe met a 429: the upstream is up
    clock.t = 6
    assert b.allow()
