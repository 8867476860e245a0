"""tierwise's native parts (metadata is in pyproject.toml), each an optional C extension:

- `_spanpack`: the span encoder's per-request writer (observability/span_encoder.py);
- `_spanids`: a traced request's ids (observability/tracecontext.py);
- `_metricspack`: the metrics' per-request update (observability/metrics.py);
- `_finished`: the observer's record of a finished request (observability/observer.py);
- `_tokenhash`: the token hashes of a prompt for the learned routers and their bucket counts for a reflective
  route's text model (routers/features.py).

`optional=True`: on a machine without a C compiler the install still succeeds and the pure-Python
code does the work (slower per request, the same bytes and values). Under CI=true a test fails if an
extension did not build (tests/observability/test_span_native.py, test_metrics_native.py).
"""

from setuptools import Extension, setup

# the same float operations, in the same order, as the Python code (identical bytes and sums)
ARGS = ["-O2", "-ffp-contract=off"]
OBS = "src/tierwise/observability/"

SOURCES = {  # module -> its C files
    "observability._spanpack": ["_spanpack.c", "_spanpack_steps.c"],
    "observability._spanids": ["_spanids.c"],
    "observability._metricspack": ["_metricspack.c"],
    "observability._finished": ["_finished.c"],
    "routers._tokenhash": ["_tokenhash.c"],
}

setup(
    ext_modules=[
        Extension(f"tierwise.{name}", [f"src/tierwise/{name.split('.')[0]}/{f}" for f in files],
                  depends=[f"{OBS}_slots.h", f"{OBS}_spanpack.h"], extra_compile_args=ARGS, optional=True)
        for name, files in SOURCES.items()
    ]
)
