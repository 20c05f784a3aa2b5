# Policy gateway: every target a newcomer needs. `make test` and `make run` do their own set-up.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Tools are built once per machine, outside the clone, keyed by their pinned go.sum.
TOOLS_CACHE ?= $(HOME)/.cache/policy-gateway

OPA_VERSION := v1.22.2
REGAL_VERSION := v0.35.1
OPA := $(TOOLS_CACHE)/opa-$(OPA_VERSION)/opa
REGAL := $(TOOLS_CACHE)/regal-$(REGAL_VERSION)/regal

# Rego coverage gate: never lower it.
REGO_COVERAGE_THRESHOLD := 95

export GATEWAY_OPA_BIN := $(OPA)
export PATH := $(abspath $(VENV))/bin:$(PATH)

# Area makefiles append to these.
SETUP_DEPS := system-packages python-env opa regal
TEST_DEPS :=
BENCH_TARGETS :=

include mk/*.mk

.PHONY: help setup system-packages python-env opa regal test lint-py lint-imports typecheck pytest run bench clean

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

setup: $(SETUP_DEPS) ## virtualenv, OPA, Regal and test servers (idempotent: a second run rebuilds nothing)

python-env: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

opa:
	@scripts/build-go-tool.sh $(OPA) tools/opa github.com/open-policy-agent/opa \
		-ldflags "-s -w -X github.com/open-policy-agent/opa/v1/version.Version=$(OPA_VERSION:v%=%)"

regal:
	@scripts/build-go-tool.sh $(REGAL) tools/regal github.com/styrainc/regal \
		-ldflags "-s -w -X github.com/styrainc/regal/pkg/version.Version=$(REGAL_VERSION)"

test: setup $(TEST_DEPS) lint-py lint-imports typecheck pytest ## every gate: Rego fmt/check/lint/coverage, ruff, import layers, mypy, pytest

lint-py:
	$(VENV)/bin/ruff check gateway tests bench
	$(VENV)/bin/ruff format --check gateway tests bench

# The import contracts in pyproject.toml ([tool.importlinter]): layers, and which modules
# may use the wire libraries.
lint-imports:
	$(VENV)/bin/lint-imports --no-cache

typecheck:
	$(VENV)/bin/mypy

pytest:
	$(PY) -m pytest -q

run: setup bundle ## start the local topology (OPA serving the built bundle, then the gateway)
	@scripts/run.sh

bench: setup bundle $(BENCH_TARGETS) ## benchmarks: p50/p99 and throughput against baselines

clean: ## remove build output (the tool cache stays)
	rm -rf bundles/*.tar.gz var .pytest_cache .mypy_cache .ruff_cache

system-packages:
	@scripts/system-packages.sh
