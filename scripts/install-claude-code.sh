#!/usr/bin/env bash
# Install the Claude Code CLI into .tools/claude-code (gitignored) and print the path of a runnable binary.
#
# Why: the client tests in tests/clients run the real CLI against the gateway. npm 11 may skip the
# package's postinstall step, in which case the `bin/claude` shim is not wired to the native binary; we
# then fall back to the platform package's native executable.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX="${CLAUDE_CODE_PREFIX:-$ROOT/.tools/claude-code}"
PACKAGE="@anthropic-ai/claude-code"

if ! command -v npm >/dev/null 2>&1; then
  echo "install-claude-code: npm is not installed (need Node.js 18+)" >&2
  exit 1
fi

PKG_DIR="$PREFIX/node_modules/$PACKAGE"
if [[ ! -f "$PKG_DIR/package.json" ]]; then
  mkdir -p "$PREFIX"
  npm install --prefix "$PREFIX" --no-audit --no-fund --loglevel=error "$PACKAGE" >&2
fi

runs() { [[ -x "$1" ]] && "$1" --version >/dev/null 2>&1; }

arch="$(uname -m)"
case "$arch" in
  x86_64|amd64) arch=x64 ;;
  aarch64|arm64) arch=arm64 ;;
esac
os="$(uname -s | tr '[:upper:]' '[:lower:]')"

candidates=(
  "$PREFIX/node_modules/.bin/claude"
  "$PKG_DIR/bin/claude"
  "$PREFIX/node_modules/$PACKAGE-$os-$arch/claude"
  "$PREFIX/node_modules/$PACKAGE-$os-$arch-musl/claude"
)
for candidate in "${candidates[@]}"; do
  if runs "$candidate"; then
    echo "$candidate"
    exit 0
  fi
done

echo "install-claude-code: installed $PACKAGE under $PREFIX but found no runnable claude binary" >&2
exit 1
