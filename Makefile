# vidgen — every target builds/refreshes .venv itself (fast when pyproject.toml is unchanged).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help venv demo test test-fast lint format bench bench-gpu notebooks clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-9s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)  ## create/refresh the virtual environment

demo: $(STAMP)  ## train MotionPredictor (demo.yaml) on the embedded shapes data, evaluate, write videos (CPU, minutes)
	$(BIN)/vidgen fit --config vidgen/configs/demo.yaml
	$(BIN)/vidgen test --config vidgen/configs/demo.yaml --ckpt_path runs/demo/checkpoints/last.ckpt
	@echo "demo outputs in runs/demo/: metrics.json, horizons.png, videos/, checkpoints/, config.yaml, wandb/"

test: $(STAMP)  ## run the whole test suite
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)  ## the tests not marked slow (minutes)
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)  ## ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check vidgen tests benchmarks

format: $(STAMP)  ## ruff format + autofix
	$(BIN)/ruff format vidgen tests benchmarks
	$(BIN)/ruff check --fix .

bench: $(STAMP)  ## every CPU benchmark: rewrites the results and figures the docs cite (hours)
	$(BIN)/python benchmarks/run_all.py

notebooks: $(STAMP)  ## execute the notebooks at their shipped sizes into docs/notebooks/ (outputs kept)
	$(BIN)/python notebooks/publish.py

# The GPU machine has torch and Lightning but no network and no CLI packages: no venv there, the
# repository's vidgen on PYTHONPATH. Outside a git checkout set VIDGEN_COMMIT=<sha> for the stamp.
BENCH_PYTHON ?= $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON))
bench-gpu:  ## GPU benchmarks in one run, < 8 min (ARGS=--quick: tiny, any machine); results under benchmarks/results/
	PYTHONPATH=. $(BENCH_PYTHON) benchmarks/bench_gpu.py $(ARGS)

clean:  ## remove the venv, caches and run outputs
	rm -rf $(VENV) runs wandb lightning_logs .pytest_cache .ruff_cache *.egg-info
