"""The one native part of tierwise: the span encoder's per-request writer (metadata is in pyproject.toml).

`optional=True`: on a machine without a C compiler the install still succeeds and tracing uses the
pure-Python encoder (slower per traced request, same bytes). Under CI=true a test fails if the
extension did not build (tests/observability/test_span_native.py).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "tierwise.observability._spanpack",
            ["src/tierwise/observability/_spanpack.c"],
            # the same float operations, in the same order, as the Python encoder (identical bytes)
            extra_compile_args=["-O2", "-ffp-contract=off"],
            optional=True,
        )
    ]
)
