# Approval queue: benchmark of the queue at 100,000 rows on SQLite and PostgreSQL (list pending, approve, and a
# signed approval through the running gateway's approvals API with real OPA).
BENCH_TARGETS += bench-queue
.PHONY: bench-queue

bench-queue: python-env ## queue list / approve / signed approve through the API at 100,000 rows, SQLite beside PostgreSQL (p99 targets 10 / 5 / 20 ms)
	$(PY) -m bench.queue_bench
