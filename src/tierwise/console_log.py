"""What the gateway says on its console: each failed request once, each circuit-breaker change once,
and, when switched on (`server.access_log`, `tierwise serve --access-log`), one line per HTTP request.

Everything printed is scrubbed of the gateway's secrets and has control characters escaped: upstream
error text and client-chosen names must not forge log lines or drive a terminal.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tierwise.secret_scrub import scrub

failures = logging.getLogger("tierwise.requests")
breakers = logging.getLogger("tierwise.breaker")
access = logging.getLogger("tierwise.access")

MAX_TEXT = 300
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def clean(value: Any, limit: int = MAX_TEXT) -> str:
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                        else f"\\u{ord(m.group()):04x}", scrub(str(value)))
    return text if len(text) <= limit else text[:limit] + "…"


def request_failed(request_id: str, route: str, status: int, kind: str | None, message: str | None,
                   steps: str) -> None:
    """One line per failed request (called once per request, where its ledger row is made)."""
    failures.warning("request %s on route %s failed: HTTP %d %s: %s%s", request_id, clean(route), status,
                     clean(kind or "error"), clean(message or "-"), f" [steps: {clean(steps)}]" if steps else "")


def upstream_refused(model: str, upstream_model: str, provider: str, error_class: str, message: str,
                     key_env: str | None, base_url: str | None = None, ollama_like: bool = True) -> None:
    """The first time a model's upstream refuses the gateway's key or does not know the model: a configuration
    problem every later call repeats, which a fallback hides from the client (and a paid frontier target answers
    in its place), so the console says it once, with what to do."""
    if error_class == "auth" and key_env and not os.environ.get(key_env):
        # Nothing was sent: the key is not in this process's environment (exported in another shell).
        failures.warning("model %s: provider %s has no key: %s is not set where the gateway runs; calls to it fail and "
                         "routes move on to their next target until it is exported before `tierwise serve`",
                         clean(model), clean(provider), clean(key_env))
    elif error_class == "auth":
        fix = f"until {key_env} holds a key it accepts" if key_env else "until its key or account is fixed"
        failures.warning("model %s: provider %s refused the gateway's key (%s): calls to it fail and routes move on "
                         "to their next target %s (`tierwise doctor` checks it)", clean(model), clean(provider),
                         clean(message), fix)
    elif base_url and upstream_model.lower() not in message.lower():
        # A 404 that does not name the model is the server not knowing the URL (base_url without its /v1, or an
        # Anthropic one with it): no model id or `ollama pull` fixes that.
        failures.warning("model %s: provider %s answered 404 without naming %s (%s): its base_url %s is likely "
                         "wrong (OpenAI-compatible servers want the URL up to /v1, Anthropic's the host only); calls "
                         "to it fail and routes move on to their next target; `tierwise doctor` finds the right one",
                         clean(model), clean(provider), clean(repr(upstream_model)), clean(message),
                         clean(re.sub(r"//[^/@]*@", "//", base_url)))
    else:
        pull = f" or fetch it (Ollama: `ollama pull {clean(upstream_model)}`)" if ollama_like else ""
        failures.warning("model %s: provider %s does not serve %s (%s): calls to it fail and routes move on to their "
                         "next target; fix the model's `model:` id%s; `tierwise doctor` lists what the server "
                         "serves", clean(model), clean(provider), clean(repr(upstream_model)), clean(message), pull)


def shown_url(url: str) -> str:
    """A base URL as the console may print it: scheme, host, port and path; never its userinfo (`user:pw@`,
    `TOKEN@`), query (`?key=…`) or fragment, where credentials ride."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        u = urlsplit(url)
        host = u.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{host}:{u.port}" if u.port is not None else host
    except ValueError:
        return "(a base_url that does not parse)"
    return urlunsplit((u.scheme, netloc, u.path, "", ""))


def upstream_unreachable(model: str, provider: str, base_url: str, local: bool) -> None:
    """The first failed connection to a provider since it last answered: the client hears only the provider's
    name (the gateway's internal addresses are not its to know); the operator reads here where and what to do."""
    from tierwise.starter import start_hint

    fix = start_hint(base_url) if local else "check that the host is reachable from the gateway and its base_url"
    failures.warning("model %s: cannot connect to provider %s at %s: calls to it fail and routes move on to their "
                     "next target until it answers; %s (`tierwise doctor` checks it)", clean(model), clean(provider),
                     clean(shown_url(base_url)), fix)


def breaker_changed(model: str, event: str, failures_to_open: int, cooldown: float) -> None:
    if event == "open":
        breakers.warning("model %s: circuit open after %d failed calls in a row; it is skipped for %.0fs, "
                         "then tried again", clean(model), failures_to_open, cooldown)
    elif event == "open at once":
        breakers.warning("model %s: circuit open: a call timed out with its answer unread, and the budgets charge "
                         "each such call input + max_tokens; it is skipped for %.0fs, then tried again", clean(model),
                         cooldown)
    elif event == "shared open":  # another replica's breaker opened (the blackboard shares them)
        breakers.warning("model %s: circuit open on another gateway replica; skipped here too", clean(model))
    elif event == "shared closed":
        breakers.warning("model %s: circuit closed on another gateway replica; it answers here too", clean(model))
    elif event == "reopen":  # the probe after a cooldown failed: still down, already said once
        breakers.info("model %s: still failing (the probe call failed); skipped for another %.0fs",
                      clean(model), cooldown)
    else:
        breakers.warning("model %s: circuit closed; it answers again", clean(model))


Send = Callable[[dict[str, Any]], Awaitable[None]]


def enable_access_log() -> None:
    """Access lines are INFO; the console shows WARNING and up unless --log-level says otherwise."""
    access.setLevel(logging.INFO)


def access_logged(scope: dict[str, Any], send: Send) -> tuple[Send, Callable[[], None]]:
    """`send` that notes the response's status and tierwise headers, and a function that writes the line."""
    t0 = time.perf_counter()
    seen: dict[str, Any] = {"status": 0, "rid": "-", "route": "-"}

    async def noting(msg: dict[str, Any]) -> None:
        if msg["type"] == "http.response.start":
            seen["status"] = msg["status"]
            for k, v in msg.get("headers", ()):
                if k == b"x-tierwise-request-id":
                    seen["rid"] = v.decode("latin-1")
                elif k == b"x-tierwise-route":
                    seen["route"] = v.decode("latin-1")
        await send(msg)

    def write() -> None:
        client = scope.get("client") or ("-", 0)
        access.info("%s %s %s %d %.0fms request=%s route=%s", client[0], scope.get("method", "-"),
                    clean(scope.get("path", "-"), 200), seen["status"], (time.perf_counter() - t0) * 1000,
                    seen["rid"], clean(seen["route"]))

    return noting, write
