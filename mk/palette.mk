# Palette: the fake Palette API on its own, and the Palette benchmark.
FAKE_PALETTE_PORT ?= 8090
PALETTE_SPEC ?= ../shared/palette/palette-apis-spec.json

BENCH_TARGETS += bench-palette
.PHONY: fake-palette bench-palette

fake-palette: python-env ## the fake Palette API on 127.0.0.1:$(FAKE_PALETTE_PORT) (key: PALETTE_API_KEY, default dev-key)
	PALETTE_API_KEY=$${PALETTE_API_KEY:-dev-key} $(PY) -m gateway.local.fake_palette \
		--port $(FAKE_PALETTE_PORT) --admin $(if $(wildcard $(PALETTE_SPEC)),--validate-spec $(PALETTE_SPEC))

bench-palette: python-env
	$(PY) -m bench.palette_tools
