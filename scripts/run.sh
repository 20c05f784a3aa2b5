#!/usr/bin/env bash
# `make run` / `make up`: the docker-compose topology as native processes, in the foreground.
# OPA on 127.0.0.1:8181 serving bundles/gateway.tar.gz, a sandbox kube-apiserver and a fake
# Palette API unless a cluster / Palette is configured, and the gateway on 127.0.0.1:8000/mcp.
# State (database, tokens, logs, sandbox) lives in ./var. Ctrl-C stops everything.
set -euo pipefail
: "${GATEWAY_OPA_BIN:?run through make}"
# `make up-signed` sets both: the signed bundle and the public key OPA verifies it with.
args=()
if [[ -n "${BUNDLE_FILE:-}" ]]; then
  args+=(--bundle "$BUNDLE_FILE")
fi
if [[ -n "${BUNDLE_VERIFICATION_KEY:-}" ]]; then
  args+=(--verification-key "$BUNDLE_VERIFICATION_KEY")
fi
exec .venv/bin/python -m gateway.local.topology "${args[@]}" "$@"
