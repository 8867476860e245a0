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
