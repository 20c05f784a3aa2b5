# Kubernetes: the pinned kube-apiserver (real-API tests, the sandbox), the sandbox itself, and
# the k8s_get benchmark. etcd comes from Debian (system-packages).
KUBE_VERSION := v1.30.14
KUBE_APISERVER := $(TOOLS_CACHE)/kube-apiserver-$(KUBE_VERSION)/kube-apiserver
KUBE_LDFLAGS := -s -w -X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=30

export GATEWAY_KUBE_APISERVER_BIN := $(KUBE_APISERVER)

SETUP_DEPS += kube-apiserver
BENCH_TARGETS += bench-k8s
.PHONY: kube-apiserver sandbox bench-k8s

kube-apiserver:
	@scripts/build-go-tool.sh $(KUBE_APISERVER) tools/kube-apiserver . -ldflags "$(KUBE_LDFLAGS)"

sandbox: setup ## a local kube-apiserver + etcd with seed data (state in var/sandbox), until Ctrl-C
	$(VENV)/bin/gateway sandbox up

bench-k8s: python-env kube-apiserver bundle ## k8s_get through MCP over HTTP vs the direct client: p50/p99, calls/s
	$(PY) -m bench.k8s_get --bundle $(BUNDLE)
