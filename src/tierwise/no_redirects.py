"""urllib without redirects: every synchronous HTTP call tierwise makes goes where its URL says, and only there.

urllib's default opener follows a 3xx and re-sends every header the request was made with, `Authorization`
and the OTLP receiver's credentials included, to whatever host the `Location` names (another host, or plain
http after https). The CLI's calls to a running gateway carry an admin, viewer or client key (`tierwise
approvals`, `budgets`, `cache`, `top`, `claude`), the span exporter the receiver's headers: with this opener a
3xx is the answer itself, an `urllib.error.HTTPError` whose `code` says it was a redirect (`is_redirect`).
The async side (aiohttp) passes `allow_redirects=False` where it calls.
"""

from __future__ import annotations

import urllib.request
from typing import Any


class _Refuse(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx itself is the answer (an HTTPError)


OPENER = urllib.request.build_opener(_Refuse)


def urlopen(req: urllib.request.Request | str, timeout: float) -> Any:
    """`urllib.request.urlopen`, with a redirect raised as the HTTPError it is."""
    return OPENER.open(req, timeout=timeout)


def is_redirect(code: int) -> bool:
    return 300 <= code < 400
