"""`serve` checks the eviction policy of the Redis holding budgets (and dispatch, approvals) before serving: under an
evicting `maxmemory-policy` a counter evicted is spend forgotten (bench/team_chaos.py --scenario evict: $2.31 paid of
a $2 budget). Only `doctor` said so before session 31 (costs3): `serve` started silently on such a Redis."""

from __future__ import annotations

from tests.harness import one_model_config
from tierwise.commands.serve import redis_refusals_or_exit
from tierwise.config import load_config


def test_serve_warns_when_the_budgets_redis_evicts(tmp_path, own_redis, capsys):
    import redis

    r = own_redis(appendonly=False)
    c = redis.Redis(port=r.port)
    c.config_set("maxmemory", "100mb")
    c.config_set("maxmemory-policy", "volatile-lru")  # every budget counter has a TTL: volatile-* evicts them too
    cfg = load_config(one_model_config(tmp_path, f"""\
budgets:
  store: {{backend: redis, redis_url: "redis://:pw-of-the-budgets@127.0.0.1:{r.port}/0"}}
  limits: [{{name: day, usd: 10}}]
"""))
    c.config_set("requirepass", "pw-of-the-budgets")
    c = redis.Redis(port=r.port, password="pw-of-the-budgets")
    redis_refusals_or_exit(cfg)
    err = capsys.readouterr().err
    assert f"tierwise: warning: Redis at 127.0.0.1:{r.port} (budgets.store) evicts keys at its maxmemory " \
           "(maxmemory-policy volatile-lru)" in err, err
    assert "maxmemory-policy noeviction" in err and "pw-of-the" not in err
    c.config_set("maxmemory-policy", "noeviction")
    redis_refusals_or_exit(cfg)
    assert "evicts" not in capsys.readouterr().err
    c.config_set("maxmemory-policy", "allkeys-lru")
    c.config_set("maxmemory", "0")  # no maxmemory: nothing is evicted whatever the policy
    redis_refusals_or_exit(cfg)
    assert "evicts" not in capsys.readouterr().err
    c.close()


def _resp_server(answer: list[str]):
    """A Redis-compatible server (RESP2 over real TCP) that answers HELLO/CLIENT/SELECT with errors or OK and
    CONFIG GET with `answer`: what a proxy or a Redis look-alike might say."""
    import socket
    import threading

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)

    def serve(conn):
        buf = b""
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
                while buf.startswith(b"*"):
                    head, _, rest = buf.partition(b"\r\n")
                    n = int(head[1:])
                    parts, ok = [], True
                    for _ in range(n):
                        ln, _, rest = rest.partition(b"\r\n")
                        size = int(ln[1:])
                        if len(rest) < size + 2:
                            ok = False
                            break
                        parts.append(rest[:size].decode())
                        rest = rest[size + 2:]
                    if not ok:
                        break
                    buf = rest
                    if parts[0].upper() == "CONFIG":
                        body = "".join(f"${len(v.encode())}\r\n{v}\r\n" for v in answer)
                        conn.sendall(f"*{len(answer)}\r\n{body}".encode())
                    elif parts[0].upper() == "HELLO":
                        conn.sendall(b"-ERR unknown command 'HELLO'\r\n")
                    else:
                        conn.sendall(b"+OK\r\n")

    def accept():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return srv


def test_a_look_alike_answering_nonsense_gets_no_traceback_and_no_raw_text(tmp_path, capsys):
    """A Redis look-alike (a proxy, another server) answering `maxmemory` with something that is not a number made
    `serve` stop with a traceback (review31c); the policy it names is printed only as a plain word."""
    import asyncio

    from tierwise.commands.doctor import evicting_policy

    odd = _resp_server(["maxmemory", "lots", "maxmemory-policy", "allkeys-lru"])
    evil = _resp_server(["maxmemory", "100", "maxmemory-policy", "allkeys-lru\x1b[2J\nroot:x:0:0"])
    try:
        assert asyncio.run(evicting_policy(f"redis://127.0.0.1:{odd.getsockname()[1]}/0")) is None
        got = asyncio.run(evicting_policy(f"redis://127.0.0.1:{evil.getsockname()[1]}/0"))
        assert got is not None and "\x1b" not in got and "\n" not in got and got.startswith("allkeys-lru")
    finally:
        odd.close()
        evil.close()
