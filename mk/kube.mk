# Kubernetes: the pinned control plane (kube-apiserver, kube-controller-manager, kube-scheduler,
# one wrapper module and one go.sum in tools/kubernetes) and kwok (simulated nodes, its own
# wrapper module in tools/kwok) for the real-API tests and the sandbox; the sandbox itself and
# the k8s benchmarks. etcd comes from Debian (system-packages).
KUBE_VERSION := v1.30.14
KWOK_VERSION := v0.6.1
KUBE_BIN_DIR := $(TOOLS_CACHE)/kubernetes-$(KUBE_VERSION)
KUBE_APISERVER := $(KUBE_BIN_DIR)/kube-apiserver
KUBE_CONTROLLER_MANAGER := $(KUBE_BIN_DIR)/kube-controller-manager
KUBE_SCHEDULER := $(KUBE_BIN_DIR)/kube-scheduler
KWOK := $(TOOLS_CACHE)/kwok-$(KWOK_VERSION)/kwok
KUBE_LDFLAGS := -s -w -X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=30
KWOK_LDFLAGS := -s -w

export GATEWAY_KUBE_APISERVER_BIN := $(KUBE_APISERVER)
export GATEWAY_KUBE_CONTROLLER_MANAGER_BIN := $(KUBE_CONTROLLER_MANAGER)
export GATEWAY_KUBE_SCHEDULER_BIN := $(KUBE_SCHEDULER)
export GATEWAY_KWOK_BIN := $(KWOK)

SETUP_DEPS += kube-tools
BENCH_TARGETS += bench-k8s bench-k8s-get
.PHONY: kube-tools kube-apiserver kube-controller-manager kube-scheduler kwok sandbox sandbox-down bench-k8s bench-k8s-get

kube-tools: kube-apiserver kube-controller-manager kube-scheduler kwok

kube-apiserver:
	@scripts/build-go-tool.sh $(KUBE_APISERVER) tools/kubernetes ./kube-apiserver -ldflags "$(KUBE_LDFLAGS)"

kube-controller-manager:
	@scripts/build-go-tool.sh $(KUBE_CONTROLLER_MANAGER) tools/kubernetes ./kube-controller-manager \
		-ldflags "$(KUBE_LDFLAGS)"

kube-scheduler:
	@scripts/build-go-tool.sh $(KUBE_SCHEDULER) tools/kubernetes ./kube-scheduler -ldflags "$(KUBE_LDFLAGS)"

kwok:
	@scripts/build-go-tool.sh $(KWOK) tools/kwok sigs.k8s.io/kwok/cmd/kwok -ldflags "$(KWOK_LDFLAGS)"

sandbox: setup ## a living local cluster (etcd, apiserver, controllers, scheduler, kwok nodes) in var/sandbox, until Ctrl-C
	$(VENV)/bin/gateway sandbox up

sandbox-down: python-env ## stop the sandbox running in var/sandbox (every process by its pid)
	$(VENV)/bin/gateway sandbox down

bench-k8s: python-env kube-tools bundle ## k8s_list of 5,000 pods and k8s_diagnose at the large seed vs the direct client: p50/p99, RSS
	$(PY) -m bench.k8s_scale --bundle $(BUNDLE)

bench-k8s-get: python-env kube-tools bundle ## k8s_get through MCP over HTTP vs the direct client: p50/p99, calls/s
	$(PY) -m bench.k8s_get --bundle $(BUNDLE)
