#!/usr/bin/env bash
# Install the OpenAI Codex CLI into .tools/codex (gitignored) and print the path of a runnable binary.
#
# Why: tests/clients/test_codex.py runs the real `codex exec` against the gateway's Responses API.
# The npm package is a small launcher (bin/codex.js) plus a native Rust build per platform, pulled in
# as an optional dependency (@openai/codex-linux-x64 etc.); `codex --version` proves both are there.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX="${CODEX_PREFIX:-$ROOT/.tools/codex}"
PACKAGE="@openai/codex"
BIN="$PREFIX/node_modules/.bin/codex"

runs() { [[ -x "$1" ]] && "$1" --version >/dev/null 2>&1; }

if runs "$BIN"; then
  echo "$BIN"
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "install-codex: npm is not installed (need Node.js 16+)" >&2
  exit 1
fi
mkdir -p "$PREFIX"
npm install --prefix "$PREFIX" --no-audit --no-fund --loglevel=error "$PACKAGE" >&2
if runs "$BIN"; then
  echo "$BIN"
  exit 0
fi
echo "install-codex: installed $PACKAGE under $PREFIX but $BIN does not run (no native build for $(uname -sm)?)" >&2
exit 1
