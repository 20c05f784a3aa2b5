# Palette: the fake Palette API on its own, the spec facts it checks bodies against, and the
# Palette benchmark.
FAKE_PALETTE_PORT ?= 8090
# The upstream specification, only needed to regenerate the facts (a clone has none).
PALETTE_SPEC ?= ../shared/palette/palette-apis-spec.json

BENCH_TARGETS += bench-palette
.PHONY: fake-palette palette-spec-facts bench-palette

fake-palette: python-env ## the fake Palette API on 127.0.0.1:$(FAKE_PALETTE_PORT) (key: PALETTE_API_KEY, default dev-key)
	PALETTE_API_KEY=$${PALETTE_API_KEY:-dev-key} $(PY) -m gateway.local.fake_palette \
		--port $(FAKE_PALETTE_PORT) --admin --validate-spec gateway/local/palette_spec_facts.json

palette-spec-facts: python-env ## rewrite gateway/local/palette_spec_facts.json from $(PALETTE_SPEC)
	$(PY) scripts/palette_spec_facts.py --spec $(PALETTE_SPEC)

bench-palette: python-env
	$(PY) -m bench.palette_tools
