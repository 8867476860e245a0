#!/usr/bin/env bash
# Installs the tools the overhead benchmark compares against, each in its own environment
# under bench/.envs/ (gitignored): LiteLLM's proxy (Python venv) and claude-code-router (npm).
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p .envs
if [ ! -x .envs/litellm/bin/litellm ]; then
  python3 -m venv .envs/litellm
  .envs/litellm/bin/pip install -q 'litellm[proxy]'
fi
if [ ! -x .envs/ccr/node_modules/.bin/ccr ]; then
  mkdir -p .envs/ccr
  (cd .envs/ccr && npm install --silent --no-audit --no-fund @musistudio/claude-code-router)
fi
echo "litellm: $(.envs/litellm/bin/pip show litellm 2>/dev/null | sed -n 's/^Version: //p')"
echo "claude-code-router: $(cd .envs/ccr && node -e 'console.log(require("@musistudio/claude-code-router/package.json").version)')"
