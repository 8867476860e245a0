"""`server.limits` in tierwise.yaml: what one client (or many) can make the gateway hold — connection and header
bounds, the trusted proxies that name a request's client, body bytes in flight, JSON shape, `n`, and the streams open
per client. Enforced by `server/limits.py`, `server/stream_cap.py` and the connection guard."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ServerLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    """Bounds on what one client (or many) can make the gateway hold (issue 15)."""

    header_timeout: float = Field(10.0, gt=0, le=3600, description="seconds a connection may take to send a "
                                  "request's header block; slower connections are closed with 408")
    max_header_bytes: int = Field(64 * 1024, ge=4096, le=16 * 1024 * 1024, description="bytes of a request's "
                                  "line and header block; a longer one is answered 431 and the connection closed")
    max_header_count: int = Field(256, ge=32, le=100_000, description="header fields of a request (its chunked "
                                  "body's trailer fields included); more are answered 431 and the connection closed")
    body_timeout: float = Field(60.0, gt=0, le=3600, description="seconds a request may take to send its body "
                                "after its headers; slower ones are cut off")
    write_timeout: float = Field(60.0, gt=0, le=3600, description="seconds a client may leave the answer "
                                 "unread once its socket is full; then the connection is closed and the "
                                 "upstream call (and its pooled connection) released")
    max_connections: int = Field(4096, ge=8, description="open client connections; at the limit the oldest "
                                 "connection that is not running a request is closed (also kept below the "
                                 "process's open-file limit)")
    network_prefix_v4: int = Field(32, ge=8, le=32, description="at the connection cap, the IPv4 network counted "
                                   "as one: 32 (default) each address; 24 groups a /24, so one host spread over "
                                   "its addresses is one client, but so is an office or a carrier's NAT pool there")
    network_prefix_v6: int = Field(48, ge=16, le=64, description="the same for IPv6 (a client is at least its /64): "
                                   "48 (default) counts a /48, what one site or customer is usually given")
    trusted_proxies: list[str] = Field([], max_length=256, description="reverse proxies (addresses or networks, "
                                       "e.g. 127.0.0.1, 10.0.0.0/8) whose connections carry each request's client "
                                       "address in `forwarded_header`; empty (default): no header is read, every "
                                       "connection is its peer's")
    forwarded_header: Literal["x-forwarded-for", "forwarded"] = Field(
        "x-forwarded-for", description="the one header the trusted proxies set: X-Forwarded-For or RFC 7239 "
        "Forwarded (the other one is passed through from the client unread)")
    max_body_bytes_in_flight: int = Field(256 * 1024 * 1024, ge=1024, description="request-body bytes held "
                                          "across all requests at once (with two client keys or more, one key at most half); "
                                          "beyond it new requests get 503 + Retry-After")
    max_json_depth: int = Field(64, ge=4, le=200, description="nesting depth of a JSON request body (the "
                                "upstream encoder fails past about 250)")
    max_json_containers: int = Field(100_000, ge=1000, description="JSON objects and arrays in a request body "
                                     "(each costs the gateway's event loop a few microseconds to read and translate)")
    max_n: int = Field(8, ge=1, le=128, description="largest `n` (choices per request) a client may ask for; "
                       "each choice can be a separate paid upstream call")
    max_streams_per_client: int = Field(64, ge=1, description="streamed answers one client (address; IPv6 /64; behind "
                                        "trusted_proxies the forwarded one) may have open at once, and as many its "
                                        "network (network_prefix_v4/_v6: an IPv6 /48); more get 429")
    max_requests_per_client: int = Field(64, ge=1, description="chat, Messages and Responses requests (streamed or "
                                         "not; `n` counts n) one client may have in flight, counted as "
                                         "max_streams_per_client is; a quarter of a provider's default pool, so one "
                                         "address cannot hold it all; more get 429")

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        from tierwise.server.forwarded import network_problem

        for n in v:
            if (problem := network_problem(n)) is not None:
                raise ValueError(problem)
        return v
