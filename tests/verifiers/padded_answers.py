"""A correct `add` for a `python_code` check whose every reply carries ~1 MB of padding the checker ignores (one long
list of `{}` or one long string): the hostile answer of the checker's relay tests (tests/verifiers/test_checker.py)
and of bench/checker_relay_cost.py. It serves later calls itself, so each one gets a padded reply."""

from __future__ import annotations

_TEMPLATE = r'''
import json, os, sys
frame = sys._getframe()
while "proto" not in frame.f_locals:
    frame = frame.f_back
PROTO = frame.f_locals["proto"]
_PAD = PADDING
def add(a, b):
    while True:
        view = memoryview(b'{"value":{"i":"%d"},"pad":%s}\n' % (a + b, _PAD))
        while view:
            view = view[os.write(PROTO, view):]
        line = sys.stdin.buffer.readline()
        if not line:
            os._exit(0)
        a, b = (int(x["i"]) for x in json.loads(line)["args"])
'''

PADDINGS = {"dicts": 'b"[" + b"{}," * 320_000 + b"{}]"', "string": 'b\'"\' + b"a" * 960_000 + b\'"\''}


def padded_add(pad: str = "dicts") -> str:
    """The answer's source with the padding `pad` (a key of PADDINGS)."""
    return _TEMPLATE.replace("PADDING", PADDINGS[pad])
