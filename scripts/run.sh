#!/usr/bin/env bash
# `make run`: the OPA sidecar serving the built bundle on 127.0.0.1:8181.
set -euo pipefail
: "${GATEWAY_OPA_BIN:?run through make}"
exec "$GATEWAY_OPA_BIN" run --server --addr=127.0.0.1:8181 --bundle bundles/gateway.tar.gz \
  --set=decision_logs.console=true
