# Rego policy: format, strict check, lint, tests with coverage, bundle.
REGO_DIR := rego
BUNDLE := bundles/gateway.tar.gz
# The revision is the content: equal policy and data give an equal revision.
BUNDLE_REVISION = $(shell find $(REGO_DIR) -type f \( -name '*.rego' -o -name 'data.json' \) ! -name '*_test.rego' | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-12)
REGO_IGNORE := --ignore '*_test.rego' --ignore samples
# Partial evaluation for the decision entrypoint (the other modules stay as written):
# ~10% fewer allocations per decision in make bench-policy, same decisions on every
# sample and bench input.
REGO_OPTIMIZE := -O=1 -e gateway/decision

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
	$(OPA) build -b $(REGO_DIR) $(REGO_IGNORE) $(REGO_OPTIMIZE) --revision $(BUNDLE_REVISION) -o $(BUNDLE)
	@echo "bundle $(BUNDLE) revision $(BUNDLE_REVISION)"

# Signed bundles: an RSA key pair in bundles/keys/ (git ignores it), made once by
# `make bundle-keys`; OPA verifies with `--verification-key bundles/keys/bundle.pub`.
BUNDLE_KEYS := bundles/keys
SIGNED_BUNDLE := bundles/gateway-signed.tar.gz
# opa bench of one realistic write (Deployment apply in production, 3 containers + init)
# and one read (k8s_get), each against its own p99 target.
BENCH_POLICY_INPUT := bench/policy/deployment_apply_production.json
BENCH_POLICY_P99_TARGET_US := 1000
BENCH_POLICY_READ_INPUT := bench/policy/k8s_get_read.json
BENCH_POLICY_READ_P99_TARGET_US := 250

BENCH_TARGETS += bench-policy
.PHONY: bundle-keys bundle-signed policy-docs bench-policy bench-policy-compare

bundle-keys: $(BUNDLE_KEYS)/bundle.pem ## RSA key pair for bundle signing in bundles/keys/ (never committed)

$(BUNDLE_KEYS)/bundle.pem:
	@mkdir -p $(BUNDLE_KEYS)
	@umask 077; openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out $@ 2>/dev/null
	openssl pkey -in $@ -pubout -out $(BUNDLE_KEYS)/bundle.pub
	@echo "private key $@ (keep it secret), public key $(BUNDLE_KEYS)/bundle.pub"

bundle-signed: opa bundle-keys ## $(SIGNED_BUNDLE), signed (RS256) with bundles/keys/bundle.pem
	@mkdir -p bundles
	$(OPA) build -b $(REGO_DIR) $(REGO_IGNORE) $(REGO_OPTIMIZE) --revision $(BUNDLE_REVISION) \
		--signing-alg RS256 --signing-key $(BUNDLE_KEYS)/bundle.pem -o $(SIGNED_BUNDLE)
	@echo "signed bundle $(SIGNED_BUNDLE) revision $(BUNDLE_REVISION); verify with --verification-key $(BUNDLE_KEYS)/bundle.pub"

policy-docs: opa python-env ## regenerate docs/policies.md from the rules' METADATA and rego/data.json
	$(PY) scripts/policy_docs.py

# The baseline: the same decision with no rule at all (the combiner and OPA alone), measured
# in the same run, so the rule set's cost reads as a multiple that survives machine and load.
BENCH_POLICY_FLOOR := bundles/bench-floor.tar.gz
# OPA's Go runtime settings in the container and the native topology
# (gateway/local/deployment.py, which a test keeps equal to this): the bench measures the
# OPA users run, and once more at Go's defaults for comparison.
OPA_RUNTIME_ENV := GOGC=1000 GOMEMLIMIT=384MiB

# $(call bench_policy_case,label,input,p99 target in µs,name): the baseline, then the rule set
# as deployed, then the rule set at Go's default runtime settings.
define bench_policy_case
	@env $(OPA_RUNTIME_ENV) $(OPA) bench -b $(BENCH_POLICY_FLOOR) -i $(2) --count 3 --format json \
		'data.gateway.decision' > bundles/bench-floor-$(4).json
	@env $(OPA_RUNTIME_ENV) $(OPA) bench -b $(BUNDLE) -i $(2) --count 3 --format json 'data.gateway.decision' \
		| $(PY) bench/policy/report.py --label "$(1), $(OPA_RUNTIME_ENV)" --target-us $(3) \
			--baseline bundles/bench-floor-$(4).json
	@env -u GOGC -u GOMEMLIMIT $(OPA) bench -b $(BUNDLE) -i $(2) --count 1 --format json 'data.gateway.decision' \
		| $(PY) bench/policy/report.py --label "$(1), Go defaults" --target-us $(3)
endef

bench-policy: opa bundle ## opa bench of a production Deployment apply and a k8s_get against the full rule set vs no rules: p50/p99, allocs
	@$(OPA) build -b $(REGO_DIR) $(REGO_IGNORE) --ignore rules $(REGO_OPTIMIZE) -o $(BENCH_POLICY_FLOOR)
	$(call bench_policy_case,write (deployment apply),$(BENCH_POLICY_INPUT),$(BENCH_POLICY_P99_TARGET_US),write)
	$(call bench_policy_case,read (k8s_get),$(BENCH_POLICY_READ_INPUT),$(BENCH_POLICY_READ_P99_TARGET_US),read)

# A rule change against an earlier rule set, same inputs, alternating rounds:
# make bench-policy-compare BASE=<git revision> (default: the previous commit).
BASE ?= HEAD~1
bench-policy-compare: opa python-env ## the rule set of BASE vs the working tree's on the bench inputs: p50/p99 and their ratio
	$(PY) -m bench.policy.compare --opa $(OPA) --base $(BASE) $(BENCH_POLICY_INPUT) $(BENCH_POLICY_READ_INPUT)
