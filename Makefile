# The README's two commands: `make run` and `make test`. Each sets itself up on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV_STAMP := .venv/.installed

.PHONY: help setup run test lint bench lock clean

help:
	@echo "make run    set up (first time) and run yumaflow on the embedded defaults"
	@echo "make test   set up (first time) and run the linter and the whole test suite"
	@echo "make bench  run the benchmarks (prints figures)"
	@echo "make lock   regenerate requirements.txt from requirements.in"

# Re-installs only when the lock, pyproject.toml or package-lock.json changed (scripts/setup.sh keeps a stamp).
setup:
	@scripts/setup.sh

run: setup
	@source scripts/env.sh && scripts/run.sh

test: setup
	@source scripts/env.sh && ruff check .
	@source scripts/env.sh && export PREFECT_HOME="$$(mktemp -d)" && trap 'rm -rf "$$PREFECT_HOME"' EXIT && \
		python -m pytest $(PYTEST_ARGS)

lint: setup
	@source scripts/env.sh && ruff check .

bench: setup
	@source scripts/env.sh && python benchmarks/consensus.py

lock:
	uv pip compile requirements.in -o requirements.txt --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --no-annotate $${PIP_FIND_LINKS:+--find-links "$$PIP_FIND_LINKS"}

clean:
	rm -rf .venv .prefect data
