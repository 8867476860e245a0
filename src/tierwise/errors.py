"""The one exception hierarchy of tierwise.

Every error a client can see is a `TierwiseError` with an HTTP status and a kind; the wire
codecs map it to the error schema of the API the client spoke. Messages must never contain
secrets (upstream keys, client keys): build them from names, not from values. Every message is
also passed through the secret scrubber here, because upstream text ends up in messages (an
upstream's error body, a fallback's "every target failed (target: error; ...)") and from them in trace
reasons and the ledger.
"""

from __future__ import annotations

from tierwise.secret_scrub import scrub


class TierwiseError(Exception):
    """Base class. `kind` is a neutral name each codec maps to its API's error type."""

    status: int = 500
    kind: str = "api_error"
    # Anthropic's `error.details` (a machine-readable `error_code` its SDKs act on); other APIs have no place for it.
    details: dict[str, object] | None = None

    def __init__(self, message: str, *, status: int | None = None, kind: str | None = None) -> None:
        message = scrub(message)
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if kind is not None:
            self.kind = kind


class ConfigError(TierwiseError):
    """A bad tierwise.yaml (or ensemble file): names the file, the key path and the problem."""

    status = 500
    kind = "api_error"

    def __init__(self, message: str, *, file: str | None = None, path: str | None = None) -> None:
        where = ""
        if file:
            where = f"{file}: "
        if path:
            where += f"{path}: "
        super().__init__(where + message)
        self.file = file
        self.path = path


class InvalidRequest(TierwiseError):
    status = 400
    kind = "invalid_request_error"


class ThreadUnsupported(InvalidRequest):
    """An Anthropic message thread (`thread`): the gateway keeps none, since each turn is routed on its own and its
    guards read the whole conversation. The SDKs answer this code by sending the full history without `thread`."""

    details = {"error_code": "thread_unsupported_request"}


class AuthenticationError(TierwiseError):
    status = 401
    kind = "authentication_error"


class PermissionDenied(TierwiseError):
    status = 403
    kind = "permission_error"


class NotFound(TierwiseError):
    status = 404
    kind = "not_found_error"


class RequestTooLarge(TierwiseError):
    status = 413
    kind = "request_too_large"


class RateLimited(TierwiseError):
    status = 429
    kind = "rate_limit_error"


class BudgetExceeded(TierwiseError):
    """A spent budget (tierwise.budgets), not a rate limit: its own kind, so the ledger and
    `tierwise requests` say which it was. Each API's clients still get that API's own word for it
    (OpenAI `insufficient_quota`; Anthropic, which has no quota type, `rate_limit_error`)."""

    status = 429
    kind = "budget_exceeded"


class UpstreamError(TierwiseError):
    """An upstream failed. `retryable` tells fallback whether another try or deployment may help."""

    status = 502
    kind = "api_error"

    def __init__(
        self,
        message: str,
        *,
        status: int = 502,
        upstream_status: int | None = None,
        retryable: bool = True,
        retry_after: float | None = None,
        kind: str | None = None,
        error_class: str | None = None,
    ) -> None:
        super().__init__(message, status=status, kind=kind)
        self.upstream_status = upstream_status
        self.retryable = retryable
        self.retry_after = retry_after
        # What the failure means (providers/error_classes.py); None: judged from the status.
        self.error_class = error_class
        # The upstream had the whole request and was answering when the call failed (a read timeout, a 200 body
        # cut, too large or not JSON): it bills the answer nobody could read (providers/deployment.py).
        self.answering = False
        # No connection could be made (refused, no route, unknown host): nothing listens there now, so a route
        # with another target moves on at once instead of retrying it (policies/fallback.py).
        self.connect_failed = False
        # No pooled connection to the upstream came free within `timeouts.pool`: the gateway's own saturation (its
        # calls in flight, whoever made them), not the upstream's failure: no count toward its breaker.
        self.pool_full = False


class ContextOverflow(UpstreamError):
    """The request does not fit a model's context window: the upstream said so, or the model's
    configured `context_window` showed it before the call (`skipped`). `tokens` is the prompt's
    size (`estimated` when the gateway counted it), `output` the max_tokens counted against the
    window (None when the prompt alone is too long), `limit` the window. Each codec renders it in
    its API's own words for context overflow, so clients compact and retry."""

    def __init__(self, message: str, *, tokens: int | None = None, limit: int | None = None,
                 output: int | None = None, upstream_status: int | None = None, estimated: bool = False,
                 skipped: bool = False) -> None:
        super().__init__(message, status=400, upstream_status=upstream_status, retryable=False,
                         kind="context_length_exceeded", error_class="context_overflow")
        self.tokens = tokens
        self.limit = limit
        self.output = output
        self.estimated = estimated
        self.skipped = skipped


class UnsupportedInput(UpstreamError):
    """A model's config says it cannot take what the request carries (images with `vision: false`):
    it is skipped without a call, and a route moves on to its next target."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=400, retryable=False, kind="invalid_request_error",
                         error_class="unsupported_input")


class UpstreamTimeout(UpstreamError):
    def __init__(self, message: str) -> None:
        super().__init__(message, status=504, retryable=True, kind="timeout_error")


class CircuitOpen(UpstreamError):
    """A deployment's breaker is open: it was not even tried. `cause`: the class of the failure that opened it
    (providers/error_classes.py), when this process saw it: `auth` or `not_found` is a configuration fault that the
    cooldown will not cure, so clients are told not to retry (server/limits.py)."""

    cause: str | None = None

    def __init__(self, message: str, *, retry_after: float | None = None, cause: str | None = None) -> None:
        if cause in ("auth", "not_found"):
            # The config's fault: the answer any route gives for it (policies/fallback.py), whichever policy meets
            # the open breaker (a cascade's or a specialist's said 503 `overloaded_error`); no Retry-After.
            super().__init__(message, retryable=False, error_class=cause)
        else:
            super().__init__(message, status=503, retryable=False, retry_after=retry_after, kind="overloaded_error")
        self.cause = cause


class RateLimitHold(CircuitOpen):
    """A deployment's upstream answered 429 and the Retry-After it gave has not passed: not tried (breaker.py)."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        UpstreamError.__init__(self, message, status=429, retryable=False, retry_after=retry_after,
                               kind="rate_limit_error", error_class="rate_limit")


class Overloaded(UpstreamError):
    """Every deployment of a route is unavailable (breakers open, all attempts failed)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message, status=503, retryable=False, retry_after=retry_after, kind="overloaded_error")


class Internal(TierwiseError):
    """A failure of the gateway itself (a bug, a broken ledger): the client gets a 500 in its API's schema."""

    status = 500
    kind = "api_error"
