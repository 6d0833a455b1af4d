# The two commands of the quickstart: `make demo` and `make test`. Both set up .venv first.
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= python3

.PHONY: setup demo lint test test-quick test-faults bench-data bench-throughput clean

# uv installs the dependencies in about 70 s where pip took about 4 minutes (2 cores). It compiles the
# bytecode up front as pip does: where PYTHONDONTWRITEBYTECODE is set, every job would otherwise compile
# torch afresh (10 s instead of 4 per import). uv reads its own settings, not pip's: find-links and an
# index that the environment gives pip are handed over.
$(BIN)/ladder: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv
	UV_FIND_LINKS="$${UV_FIND_LINKS:-$$PIP_FIND_LINKS}" UV_INDEX_URL="$${UV_INDEX_URL:-$$PIP_INDEX_URL}" \
		$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[test]'
	@touch $@

setup: $(BIN)/ladder

# Run the main job on the embedded corpus, on the CPU: every stage up to the evaluation of the two
# sizes pipeline.sizes ships (tiny, and mini on the order tiny's model scored).
demo: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" snakemake --cores 1 results/tiny/eval.json results/mini/eval.json
	PATH="$(CURDIR)/$(BIN):$$PATH" ladder summary

# ruff's checks (pyproject.toml names the rule set) and its formatting, as a check: `ruff format .` applies it.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Everything, as CI runs it: lint, unit tests, real Snakemake and DVC pipelines, the fault suite (~19 minutes on 2 cores with setup, two workers).
test: setup lint
	PATH="$(CURDIR)/$(BIN):$$PATH" pytest -q -n 2 --dist loadfile --no-loadscope-reorder tests

# The everyday tier: no pipeline runs (under 2 minutes on 2 cores).
test-quick: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" pytest -q tests/unit

# The fault suite alone: bad inputs, kills, locks, links, the params fuzzer at 5x its CI examples (part of `make test`).
# Here the params fuzzer runs its thorough profile: 5x CI's mutations, seeded afresh (tests/faults/test_fuzz_params.py).
test-faults: setup
	LADDER_FUZZ=thorough PATH="$(CURDIR)/$(BIN):$$PATH" pytest -q tests/faults

bench-data: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" python bench/data.py

bench-throughput: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" python bench/throughput.py

clean:
	rm -rf data/raw data/subset data/tokenizer data/shards data/curriculum results .ladder .snakemake
