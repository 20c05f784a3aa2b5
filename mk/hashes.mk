# RFC 8785 hashes recomputed outside Python (docs/hashes.md): the reference JCS
# implementation for Node.js, which tests/integration/test_hash_recipes.py runs the
# documented recipes with.
JCS_VERSION := 4.0.0
JCS_DIR := .cache/jcs
JCS_STAMP := $(JCS_DIR)/.installed-$(JCS_VERSION)

export GATEWAY_JCS_DIR := $(abspath $(JCS_DIR))

SETUP_DEPS += jcs-tool
.PHONY: jcs-tool

jcs-tool: $(JCS_STAMP)

$(JCS_STAMP):
	@mkdir -p $(JCS_DIR)
	npm install --prefix $(JCS_DIR) --no-audit --no-fund --save-exact --loglevel=error canonicalize@$(JCS_VERSION)
	@touch $@
