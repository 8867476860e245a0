"""Small validation helpers the codecs share: every failure is an InvalidRequest naming the field."""

from __future__ import annotations

from typing import Any

from tierwise.errors import InvalidRequest

_MISSING = object()
# Every integer a client sends is a count (tokens, choices, dimensions): bounded, so nothing past
# 64 bits reaches orjson.dumps (JSON numbers like 1e23 parse as floats that are whole numbers).
INT_MAX = 2**31 - 1


def token_count(v: Any) -> int:
    """A token count an upstream (or a worker) reports, in [0, INT_MAX]: a negative one would be a
    negative cost (a budget given its money back), one past 64 bits breaks every JSON encoder."""
    if isinstance(v, str) and v.isdigit():
        v = int(v[:12])
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v:  # v != v: NaN
        return 0
    return int(min(max(v, 0), INT_MAX))


MAX_BILLED_USD = 1000.0  # what one call's reported cost is believed at most (an upstream's `cost` of 1e308 is not)


def usd_billed(u: dict[str, Any]) -> float:
    """What an OpenAI-compatible upstream says a call cost in USD: OpenRouter's `usage.cost` (its credits are
    dollars; its fees included, such as its web plugin's $4 per 1,000 results, which no token count shows), plus
    `cost_details.upstream_inference_cost` when the call ran on the user's own provider key (`is_byok`: `cost` is
    then OpenRouter's fee alone). 0 when it says nothing usable (absent, negative, not a number)."""
    usd = _usd(u.get("cost"))
    if usd and u.get("is_byok") is True:
        det = u.get("cost_details")
        if isinstance(det, dict):
            usd += _usd(det.get("upstream_inference_cost"))
    return min(usd, MAX_BILLED_USD)


def _usd(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < float("inf"):  # (NaN is not > 0)
        return 0.0
    return min(float(v), MAX_BILLED_USD)


def need(cond: bool, path: str, what: str) -> None:
    if not cond:
        raise InvalidRequest(f"{path}: {what}")


IMAGE_URL_PATTERN = "^([hH][tT][tT][pP][sS]?://|data:)"  # the same rule, for the OpenAPI document


def image_url(url: str, path: str) -> str:
    """An image URL a client sends on: http(s) or data: only. Both APIs take nothing else, and a local
    model server may honour file: (its own disk) or another scheme for whoever sent it."""
    need(url.startswith("data:") or url[:8].lower().startswith(("https://", "http://")), path,
         "must be an http(s) URL or a data: URL")
    return url


def get_str(d: dict[str, Any], key: str, path: str, *, required: bool = False) -> str | None:
    v = d.get(key, _MISSING)
    if v is _MISSING or v is None:
        need(not required, f"{path}.{key}" if path else key, "is required")
        return None
    need(isinstance(v, str), f"{path}.{key}" if path else key, f"must be a string, not {type(v).__name__}")
    return v  # type: ignore[return-value]


def get_int(d: dict[str, Any], key: str, path: str = "", *, minimum: int | None = None,
            maximum: int | None = None) -> int | None:
    v = d.get(key)
    if v is None:
        return None
    p = f"{path}.{key}" if path else key
    if isinstance(v, float) and v.is_integer():
        # JSON Schema (and both APIs) count 5.0 as the integer 5; forwarded bodies carry the int. An
        # integer past 64 bits (10**30) reaches here as a float too: it is too large, not "not an integer".
        need(abs(v) <= INT_MAX, p, f"must be an integer from {-INT_MAX} to {INT_MAX}")
        v = d[key] = int(v)
    need(isinstance(v, int) and not isinstance(v, bool), p, f"must be an integer, not {type(v).__name__}")
    need(-INT_MAX <= v <= INT_MAX, p, f"must be at most {INT_MAX}")
    if minimum is not None:
        need(v >= minimum, p, f"must be at least {minimum}")
    if maximum is not None:
        need(v <= maximum, p, f"must be at most {maximum}")
    return v  # type: ignore[no-any-return]


def get_num(d: dict[str, Any], key: str, path: str = "", *, lo: float | None = None,
            hi: float | None = None) -> float | None:
    v = d.get(key)
    if v is None:
        return None
    p = f"{path}.{key}" if path else key
    need(isinstance(v, (int, float)) and not isinstance(v, bool), p, f"must be a number, not {type(v).__name__}")
    if lo is not None:
        need(v >= lo, p, f"must be at least {lo:g}")
    if hi is not None:
        need(v <= hi, p, f"must be at most {hi:g}")
    return float(v)


def get_bool(d: dict[str, Any], key: str, path: str = "") -> bool | None:
    v = d.get(key)
    if v is None:
        return None
    need(isinstance(v, bool), f"{path}.{key}" if path else key, f"must be true or false, not {type(v).__name__}")
    return v  # type: ignore[no-any-return]


def get_list(d: dict[str, Any], key: str, path: str = "") -> list[Any] | None:
    v = d.get(key)
    if v is None:
        return None
    need(isinstance(v, list), f"{path}.{key}" if path else key, f"must be an array, not {type(v).__name__}")
    return v  # type: ignore[no-any-return]


def get_dict(d: dict[str, Any], key: str, path: str = "") -> dict[str, Any] | None:
    v = d.get(key)
    if v is None:
        return None
    need(isinstance(v, dict), f"{path}.{key}" if path else key, f"must be an object, not {type(v).__name__}")
    return v  # type: ignore[no-any-return]


# Before review32c any number was forwarded (100,000 served), and a local server checks each one against the text it
# generates, token by token. OpenAI's own API takes 4 ("up to four stop sequences") and refuses more itself; local servers
# (llama.cpp, vLLM) take any number and clients written for them send more than 4, so the gateway's bound is looser.
MAX_STOP = 32


def stop_list(v: Any, path: str) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        return [v]
    need(isinstance(v, list) and all(isinstance(s, str) for s in v), path, "must be a string or an array of strings")
    need(len(v) <= MAX_STOP, path, f"at most {MAX_STOP} strings")
    return list(v)


# `logit_bias` (token id -> bias) went upstream with any number of entries (100,000 served before wire10), each a bias
# a local server applies at every generated token. No provider publishes a count; a ban list of a few hundred tokens
# fits this bound.
MAX_LOGIT_BIAS = 1024


def logit_bias(v: Any) -> None:
    if v is None:
        return
    need(isinstance(v, dict), "logit_bias", "must be an object mapping token ids to biases")
    need(len(v) <= MAX_LOGIT_BIAS, "logit_bias", f"at most {MAX_LOGIT_BIAS} entries")
