"""Spend and rate limits: reserve the worst case at admission, settle the real cost at completion.

- config.py: the `budgets:` and `rate_limits:` sections
- plan.py: what applies to a (route, key), worked out once; windows and dimension values
- checks.py: the records a store is asked and answers, and the arithmetic both stores share
- store_memory.py / store_redis.py: one process / every replica sharing a Redis (Lua scripts)
- controller.py: the request path's seam (`admit`, `settle`) and `status` for `tierwise budgets`

Importing this package costs nothing: the Redis client is imported only by a Redis store.
"""
