# Decision-path benchmark: PolicyClient.decide against the raw OPA call, same client, same input.
BENCH_TARGETS += bench-decision
.PHONY: bench-decision

bench-decision: ## decision path (action -> OPA -> validated decision): p50/p99/throughput vs raw OPA
	$(PY) -m bench.decision_path --bundle $(BUNDLE)

# The gateway end to end against the floor: an ungated server on the same MCP SDK and
# Kubernetes client (bench/plain_server.py), same reads, interleaved rounds, one table.
BENCH_TARGETS += bench-e2e
.PHONY: bench-e2e

bench-e2e: python-env kube-apiserver bundle ## gateway vs ungated MCP server: get/list at c1/c8, denied write, p50/p99/calls/s, CPU per process, per-stage
	$(PY) -m bench.e2e --bundle $(BUNDLE) $(BENCH_E2E_ARGS)

# The OPA hop of a gated read taken apart: TCP vs Unix socket, console decision log, rules.
BENCH_TARGETS += bench-opa-hop
.PHONY: bench-opa-hop

bench-opa-hop: python-env opa bundle ## OPA round trip of a read decision: TCP vs unix socket, console log, no rules; eval timers, OPA CPU
	$(PY) -m bench.opa_hop --bundle $(BUNDLE)

# Reversal journal: what it adds to an executed write, against the audit append every write already makes.
BENCH_TARGETS += bench-journal
.PHONY: bench-journal

bench-journal: python-env ## reversal journal (record, find, view) at 10,000 rows vs one audit append, SQLite and PostgreSQL: p50/p99, ratios
	$(PY) -m bench.journal_bench
