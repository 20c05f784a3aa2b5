# Deployment: the native topology (`make up` = `make run`), the MCP conformance tool, the HTTP bench.
CONFORMANCE_VERSION := 0.1.13
CONFORMANCE_DIR := .cache/conformance
CONFORMANCE_STAMP := $(CONFORMANCE_DIR)/.installed-$(CONFORMANCE_VERSION)

# tests/integration/test_conformance.py runs the tool against `gateway serve --transport http`.
export GATEWAY_CONFORMANCE_BIN := $(abspath $(CONFORMANCE_DIR))/node_modules/.bin/conformance

SETUP_DEPS += conformance-tool
BENCH_TARGETS += bench-http
.PHONY: up up-signed conformance-tool bench-http

up: setup bundle ## the docker-compose topology as native processes: OPA :8181, gateway :8000/mcp, sandbox backends
	@scripts/run.sh

conformance-tool: $(CONFORMANCE_STAMP)

$(CONFORMANCE_STAMP):
	@mkdir -p $(CONFORMANCE_DIR)
	npm install --prefix $(CONFORMANCE_DIR) --no-audit --no-fund --save-exact --loglevel=error \
		@modelcontextprotocol/conformance@$(CONFORMANCE_VERSION)
	@touch $@

up-signed: setup bundle-signed ## make up with the signed bundle, verified with bundles/keys/bundle.pub
	@BUNDLE_FILE=$(SIGNED_BUNDLE) BUNDLE_VERIFICATION_KEY=$(BUNDLE_KEYS)/bundle.pub scripts/run.sh

bench-http: ## HTTP transport (bearer token, host guard, streamable HTTP) vs in-memory: p50/p99/calls/s
	$(PY) -m bench.http_transport --bundle $(BUNDLE)
