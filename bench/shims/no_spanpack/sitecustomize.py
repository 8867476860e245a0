"""On PYTHONPATH for a benchmark variant: tierwise's C span writer and id maker do not load, so the gateway writes its
spans with the pure-Python encoder (as on a machine where the extension was not built)."""

import sys


class _NoSpanpack:
    def find_spec(self, name, path=None, target=None):
        if name in ("tierwise.observability._spanpack", "tierwise.observability._spanids"):
            raise ImportError("blocked by bench/shims/no_spanpack")
        return None


sys.meta_path.insert(0, _NoSpanpack())
