# Deployment: the native topology (`make up` = `make run`), the MCP conformance tool, signed bundles.
CONFORMANCE_VERSION := 0.1.13
CONFORMANCE_DIR := .cache/conformance
CONFORMANCE_STAMP := $(CONFORMANCE_DIR)/.installed-$(CONFORMANCE_VERSION)
SIGNING_DIR := deploy/keys

# tests/integration/test_conformance.py runs the tool against `gateway serve --transport http`.
export GATEWAY_CONFORMANCE_BIN := $(abspath $(CONFORMANCE_DIR))/node_modules/.bin/conformance

SETUP_DEPS += conformance-tool
BENCH_TARGETS += bench-http
.PHONY: up conformance-tool signed-bundle bench-http

up: setup bundle ## the docker-compose topology as native processes: OPA :8181, gateway :8000/mcp, sandbox backends
	@scripts/run.sh

conformance-tool: $(CONFORMANCE_STAMP)

$(CONFORMANCE_STAMP):
	@mkdir -p $(CONFORMANCE_DIR)
	npm install --prefix $(CONFORMANCE_DIR) --no-audit --no-fund --save-exact --loglevel=error \
		@modelcontextprotocol/conformance@$(CONFORMANCE_VERSION)
	@touch $@

signed-bundle: opa ## bundles/gateway.tar.gz signed with deploy/keys/bundle.key (RS256; key pair created once)
	@mkdir -p $(SIGNING_DIR) $(dir $(BUNDLE))
	@test -f $(SIGNING_DIR)/bundle.key || { umask 077; openssl genrsa -out $(SIGNING_DIR)/bundle.key 3072 2>/dev/null; }
	@openssl rsa -in $(SIGNING_DIR)/bundle.key -pubout -out $(SIGNING_DIR)/bundle.pub 2>/dev/null
	$(OPA) build -b $(REGO_DIR) $(REGO_IGNORE) --revision $(BUNDLE_REVISION) \
		--signing-key $(SIGNING_DIR)/bundle.key -o $(BUNDLE)
	@echo "signed bundle $(BUNDLE); OPA verifies it with $(SIGNING_DIR)/bundle.pub"

bench-http: ## HTTP transport (bearer token, host guard, streamable HTTP) vs in-memory: p50/p99/calls/s
	$(PY) -m bench.http_transport --bundle $(BUNDLE)
