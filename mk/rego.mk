# Rego policy: format, strict check, lint, tests with coverage, bundle.
REGO_DIR := rego
BUNDLE := bundles/gateway.tar.gz
# The revision is the content: equal policy and data give an equal revision.
BUNDLE_REVISION = $(shell find $(REGO_DIR) -type f \( -name '*.rego' -o -name 'data.json' \) ! -name '*_test.rego' | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-12)
REGO_IGNORE := --ignore '*_test.rego' --ignore samples

TEST_DEPS += rego-check
.PHONY: rego-check bundle

rego-check: opa regal ## opa fmt, opa check --strict, regal lint, opa test --coverage
	$(OPA) fmt --fail --list $(REGO_DIR)
	$(OPA) check --strict --ignore samples $(REGO_DIR)
	$(REGAL) lint --format pretty $(REGO_DIR)
	$(OPA) test --ignore samples --coverage --threshold $(REGO_COVERAGE_THRESHOLD) $(REGO_DIR) > /dev/null \
		|| { $(OPA) test --ignore samples -v $(REGO_DIR) | tail -40; exit 1; }
	@$(OPA) test --ignore samples --coverage $(REGO_DIR) | $(PY) -c 'import json,sys; print("rego coverage: %.2f%%" % json.load(sys.stdin)["coverage"])'

bundle: opa ## build bundles/gateway.tar.gz with a content-derived revision
	@mkdir -p bundles
	$(OPA) build -b $(REGO_DIR) $(REGO_IGNORE) --revision $(BUNDLE_REVISION) -o $(BUNDLE)
	@echo "bundle $(BUNDLE) revision $(BUNDLE_REVISION)"
