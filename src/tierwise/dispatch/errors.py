"""What a dispatch can fail with. Each is an `UpstreamError` (or a client error), so a fallback
route moves on past a capability that cannot be served, and the HTTP edge maps it to the error
schema the client spoke."""

from __future__ import annotations

from tierwise.errors import InvalidRequest, Overloaded, RequestTooLarge, UpstreamError, UpstreamTimeout

__all__ = ["DispatchUnavailable", "NoWorker", "Overloaded", "RequestTooLarge", "InvalidRequest",
           "TaskFailed", "DispatchTimeout"]


class NoWorker(UpstreamError):
    """No worker that may take the task is present: refused at once rather than left to hang."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=503, retryable=False, retry_after=5.0, kind="overloaded_error")


class DispatchUnavailable(UpstreamError):
    """Redis could not be reached for the whole time the caller was prepared to wait.

    Not retryable by a fallback: the dispatcher has already retried Redis for `unavailable_wait`,
    so a fallback moves to its next target at once (the Retry-After is for the client)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=503, retryable=False, retry_after=5.0, kind="overloaded_error")


class DispatchTimeout(UpstreamTimeout):
    pass


class TaskFailed(UpstreamError):
    """The worker ran the task and it failed there (its error, as the worker reported it), or the
    task went to the dead-letter stream."""
