# Policy change without fear (docs/changing-policy.md): the shadow bundle, and the benchmark of
# replay throughput and of what recording and the shadow add to live calls.
SHADOW_BUNDLE := bundles/shadow.tar.gz
# The candidate policy the shadow OPA serves: a directory laid out like rego/.
SHADOW_POLICY ?= $(REGO_DIR)

BENCH_TARGETS += bench-replay
.PHONY: bundle-shadow bench-replay

bundle-shadow: opa ## build $(SHADOW_BUNDLE) from SHADOW_POLICY=<dir> for the shadow OPA (compose profile `shadow`)
	@mkdir -p bundles
	$(OPA) build -b $(SHADOW_POLICY) $(REGO_IGNORE) $(REGO_OPTIMIZE) --revision shadow-$(shell date -u +%Y%m%dT%H%M%SZ) -o $(SHADOW_BUNDLE)
	@echo "shadow bundle $(SHADOW_BUNDLE) from $(SHADOW_POLICY)"

bench-replay: setup bundle ## replay of 10,000 recorded actions (actions/s) and live p50/p99 with recording and the shadow on vs off
	$(PY) -m bench.replay_bench --bundle $(BUNDLE)
