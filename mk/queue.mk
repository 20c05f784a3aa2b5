# Approval queue: benchmark of the SQLite queue at 100,000 rows (list pending, approve, and a
# signed approval through the running gateway's approvals API with real OPA).
BENCH_TARGETS += bench-queue
.PHONY: bench-queue

bench-queue: python-env ## queue list / approve / signed approve through the API, p50 and p99 at 100,000 rows (targets 10 / 5 / 20 ms)
	$(PY) -m bench.queue_bench
