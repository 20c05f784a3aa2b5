# Decision-path benchmark: PolicyClient.decide against the raw OPA call, same client, same input.
BENCH_TARGETS += bench-decision
.PHONY: bench-decision

bench-decision: ## decision path (action -> OPA -> validated decision): p50/p99/throughput vs raw OPA
	$(PY) -m bench.decision_path --bundle $(BUNDLE)
