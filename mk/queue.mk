# Approval queue: benchmark of the SQLite queue at 100,000 rows (list pending, approve).
BENCH_TARGETS += bench-queue
.PHONY: bench-queue

bench-queue: python-env ## queue list / approve p50 and p99 with 100,000 rows (targets 10 ms / 5 ms)
	$(PY) -m bench.queue_bench
