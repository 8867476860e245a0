"""uvicorn's "Invalid HTTP request received." warning, rate-limited: any client could otherwise write a log line
per bad request (used by the connection guard's protocol, server/limits.py)."""

from __future__ import annotations

import logging
import time
from typing import Any

MALFORMED_LOG_EVERY_S = 60.0  # at most one "invalid HTTP request" log line this often, with a count


class QuietParseErrors:
    """uvicorn's logger for a protocol, with its per-request warning for unparseable HTTP ("Invalid
    HTTP request received.") logged at most once every MALFORMED_LOG_EVERY_S, with how many it stood
    for: any client could otherwise write a log line per bad request. Everything else passes through."""

    MESSAGE = "Invalid HTTP request received."

    def __init__(self, logger: logging.Logger, clock=time.monotonic) -> None:
        self._logger = logger
        self._clock = clock
        self._next = 0.0
        self.held = 0  # bad requests not logged yet

    def warning(self, msg: object, *args: Any, **kw: Any) -> None:
        if msg != self.MESSAGE:
            self._logger.warning(msg, *args, **kw)
            return
        self.held += 1
        now = self._clock()
        if now >= self._next:
            self._next = now + MALFORMED_LOG_EVERY_S
            n, self.held = self.held, 0
            self._logger.warning("%d invalid HTTP request(s) received (answered 400; logged at most once "
                                 "every %gs)", n, MALFORMED_LOG_EVERY_S)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._logger, name)
