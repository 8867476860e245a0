#!/usr/bin/env bash
# Installs the tools the overhead benchmark compares against, each in its own environment
# under bench/.envs/ (gitignored): LiteLLM's proxy (Python venv), claude-code-router (npm) and the
# Portkey open-source gateway (npm, pinned). Idempotent: an installed tool is left alone.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p .envs
if [ ! -x .envs/litellm/bin/litellm ]; then
  python3 -m venv .envs/litellm
  .envs/litellm/bin/pip install -q 'litellm[proxy]'
fi
# The OpenTelemetry Python SDK + OTLP/HTTP exporter (bench/otel_sdk_serve.py), beside the shared venv's
# opentelemetry-api/-proto (same release), without touching that venv.
if [ ! -d .envs/otel-sdk/opentelemetry/sdk ]; then
  python3 -m pip install -q --target .envs/otel-sdk --no-deps opentelemetry-sdk==1.45.2 \
    opentelemetry-exporter-otlp-proto-http==1.45.2 opentelemetry-exporter-otlp-proto-common==1.45.2 \
    opentelemetry-exporter-otlp-common==0.66b2 opentelemetry-exporter-http-transport==0.66b2 googleapis-common-protos
fi
if [ ! -x .envs/ccr/node_modules/.bin/ccr ]; then
  mkdir -p .envs/ccr
  (cd .envs/ccr && npm install --silent --no-audit --no-fund @musistudio/claude-code-router)
fi
# Portkey's gateway, pinned. Its dependency range `@hono/node-server ^1.3.3` now resolves to
# 1.19.x, whose Response wrapper keeps the upstream fetch's immutable headers: every streamed
# answer from an OpenAI provider then fails ("Something went wrong", TypeError: immutable).
# 1.13.8, the last release before that change, streams correctly, so an override pins it.
PORTKEY_VERSION=1.15.2
HONO_NODE_SERVER=1.13.8
# (read from the file: @hono/node-server's `exports` hide its package.json from require)
pk_version() { node -p "require('fs').existsSync('$1')&&JSON.parse(require('fs').readFileSync('$1')).version||''"; }
PK=.envs/portkey/node_modules/@portkey-ai/gateway/package.json
HNS=.envs/portkey/node_modules/@hono/node-server/package.json
if [ "$(pk_version $PK)" != "$PORTKEY_VERSION" ] || \
   [ "$(pk_version $HNS)" != "$HONO_NODE_SERVER" ]; then
  rm -rf .envs/portkey
  mkdir -p .envs/portkey
  printf '{"private": true, "dependencies": {"@portkey-ai/gateway": "%s"},\n "overrides": {"@hono/node-server": "%s"}}\n' \
    "$PORTKEY_VERSION" "$HONO_NODE_SERVER" > .envs/portkey/package.json
  (cd .envs/portkey && npm install --silent --no-audit --no-fund)
fi
echo "litellm: $(.envs/litellm/bin/pip show litellm 2>/dev/null | sed -n 's/^Version: //p')"
echo "claude-code-router: $(cd .envs/ccr && node -e 'console.log(require("@musistudio/claude-code-router/package.json").version)')"
echo "portkey gateway: $(pk_version $PK) (@hono/node-server $(pk_version $HNS))"
