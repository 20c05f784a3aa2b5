# Helm: the chart in deploy/helm/policy-gateway, linted, rendered and judged by the tests
# (tests/integration/test_helm_chart.py). helm is built from the Go module proxy like OPA.
HELM_VERSION := v4.3.2
HELM := $(TOOLS_CACHE)/helm-$(HELM_VERSION)/helm
HELM_CHART := deploy/helm/policy-gateway

export GATEWAY_HELM_BIN := $(HELM)

SETUP_DEPS += helm
.PHONY: helm helm-lint

helm:
	@scripts/build-go-tool.sh $(HELM) tools/helm helm.sh/helm/v4/cmd/helm \
		-ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$(HELM_VERSION)"

helm-lint: helm ## helm lint the chart with its default and HA values
	$(HELM) lint --strict $(HELM_CHART)
	$(HELM) lint --strict $(HELM_CHART) -f $(HELM_CHART)/values-ha.yaml
