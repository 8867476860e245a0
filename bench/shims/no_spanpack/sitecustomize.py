"""On PYTHONPATH for a benchmark variant: tierwise's C span writer does not load, so the gateway writes its
spans with the pure-Python encoder (as on a machine where the extension was not built)."""

import sys


class _NoSpanpack:
    def find_spec(self, name, path=None, target=None):
        if name == "tierwise.observability._spanpack":
            raise ImportError("blocked by bench/shims/no_spanpack")
        return None


sys.meta_path.insert(0, _NoSpanpack())
