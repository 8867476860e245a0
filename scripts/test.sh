#!/usr/bin/env bash
# Install everything the test suite needs (idempotent) and run it. `.ci/run` calls this.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# uv installs the same resolution as pip several times faster (a fresh clone's dependencies: 21 s against
# 240 s; the torch wheel: 8 s against 30 s; measured on a 2-core host). pip stays the fallback wherever uv
# cannot be had or fails.
if .venv/bin/python -m uv --version >/dev/null 2>&1 \
   || .venv/bin/pip install -q --disable-pip-version-check 'uv>=0.5' >/dev/null 2>&1; then
  UV=(.venv/bin/python -m uv pip install -q --compile-bytecode --python .venv/bin/python)
else
  UV=()
fi
# The embeddings extra needs PyTorch. Take the CPU build from the local wheel directory when there
# is one (`--no-index` keeps pip from pulling the multi-GB CUDA build from the registry); without
# it the extra is left out and the embedding tests say so.
EXTRAS=test,privacy-ner
WHEELS=${PIP_FIND_LINKS:-$(.venv/bin/pip config get global.find-links 2>/dev/null || true)}
if .venv/bin/python -c 'import torch' 2>/dev/null \
   || { [ ${#UV[@]} -gt 0 ] && [ -n "$WHEELS" ] \
        && "${UV[@]}" --no-index --find-links "$WHEELS" --no-deps 'torch==2.13.0' 2>/dev/null; } \
   || .venv/bin/pip install -q --disable-pip-version-check --no-index --no-deps 'torch==2.13.0' 2>/dev/null; then
  EXTRAS=test,privacy-ner,embeddings
fi
if [ ${#UV[@]} -eq 0 ] || ! "${UV[@]}" -e ".[$EXTRAS]"; then
  .venv/bin/pip install -q --disable-pip-version-check -e ".[$EXTRAS]"
fi

# Real engines and clients the tests drive (llama.cpp's llama-server, the Claude Code and Codex CLIs,
# Aider). Each installer is idempotent and puts its tool under .tools/ (gitignored).
for tool in scripts/install-sandbox.sh scripts/install-llama-server.sh scripts/install-claude-code.sh \
            scripts/install-codex.sh scripts/install-aider.sh scripts/install-chromium.sh scripts/install-nginx.sh; do
  if [ -f "$tool" ]; then
    bash "$tool" || echo "warning: $tool failed; the tests that need it will say so" >&2
  fi
done

# A real Redis for the distributed tests: start one on loopback if none answers.
if ! (command -v redis-cli >/dev/null && redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1); then
  if ! command -v redis-server >/dev/null; then
    (apt-get update -qq && apt-get install -y -qq redis-server) >/dev/null 2>&1 || true
  fi
  if command -v redis-server >/dev/null; then
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null || true
  fi
fi

# Two workers (pytest-xdist): most of the suite waits on sockets and subprocesses, so two share a
# 2-core machine well. TIERWISE_TEST_WORKERS=0 runs it in one process; arguments given to this script
# come after, so `-n 4` there wins.
set +e
.venv/bin/python -m pytest -n "${TIERWISE_TEST_WORKERS:-2}" --dist worksteal "$@"
rc=$?
set -e
# pytest exit 5 means no tests were collected: that is a failure for CI.
exit $rc
