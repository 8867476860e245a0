#!/usr/bin/env bash
# Install Aider (PyPI `aider-chat`, pinned) into its own venv at .tools/aider (gitignored) and print
# the path of the `aider` executable on the last line.
#
# Why its own venv: aider-chat pins every one of its ~110 dependencies exactly (litellm, openai,
# numpy, tree-sitter, ...). In the project's venv those pins would fight tierwise's own; tierwise
# does not depend on litellm (Aider uses it internally to speak to OpenAI-compatible endpoints).
# The client tests in tests/clients/test_aider.py run this binary against the gateway.
# Idempotent: a venv that already runs the pinned version is left alone.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX="${AIDER_PREFIX:-$ROOT/.tools/aider}"
VERSION="0.86.2"
PACKAGE="aider-chat==$VERSION"
PYTHON_FOR_VENV="${PYTHON:-python3}"
BINARY="$PREFIX/bin/aider"

installed_version() {
    "$PREFIX/bin/python" -c 'import importlib.metadata as m; print(m.version("aider-chat"))' 2>/dev/null \
        || true
}

if [[ "$(installed_version)" != "$VERSION" ]]; then
    # aider-chat 0.86.2 requires Python >=3.10,<3.13.
    if ! "$PYTHON_FOR_VENV" -c 'import sys; sys.exit(not (3, 10) <= sys.version_info[:2] < (3, 13))'; then
        echo "install-aider: $PACKAGE needs Python 3.10-3.12; set PYTHON to one" >&2
        exit 1
    fi
    "$PYTHON_FOR_VENV" -m venv "$PREFIX"
    # The project's uv (scripts/test.sh installs it) resolves the same pinned set about 3x faster than pip.
    if "$ROOT/.venv/bin/python" -m uv --version >/dev/null 2>&1; then
        "$ROOT/.venv/bin/python" -m uv pip install --quiet --compile-bytecode --python "$PREFIX/bin/python" "$PACKAGE" >&2
    else
        "$PREFIX/bin/python" -m pip install --quiet --disable-pip-version-check "$PACKAGE" >&2
    fi
fi

if ! "$BINARY" --version >/dev/null 2>&1; then
    echo "install-aider: installed $PACKAGE under $PREFIX but $BINARY does not run" >&2
    exit 1
fi
echo "$BINARY"
