# Operations: the dashboard's picture in the docs, drawn from a scripted session on the
# make-run topology (Grafana cannot run here; scripts/dashboard_snapshot.py plots the same
# panels from /metrics samples). matplotlib comes from the `docs` extra, not the runtime deps.
.PHONY: dashboard-snapshot

dashboard-snapshot: python-env kube-apiserver bundle ## docs/dashboard.png from a 3-minute scripted session
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,docs]'
	$(PY) scripts/dashboard_snapshot.py --minutes 3

# What runaway counters, metrics and tracing (off, spans only, OTLP export) add to a gated
# read, as ratios to an uninstrumented gateway in the same run.
BENCH_TARGETS += bench-ops
.PHONY: bench-ops

bench-ops: python-env kube-apiserver bundle ## k8s_get through Gateway.call with/without counters, metrics, spans, OTLP: p50/p99/calls/s ratios
	$(PY) -m bench.ops_overhead --bundle $(BUNDLE)
