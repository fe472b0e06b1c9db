# NanoGrid Plus developer targets. `make help` lists them.
#
# Every target that needs the virtualenv, Docker or the runtime image runs
# scripts/setup-local.sh first; it installs what is missing and does nothing otherwise.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
NANOGRID := $(VENV)/bin/nanogrid
PYTEST := $(VENV)/bin/pytest
RUNTIME_IMAGE ?= nanogrid/python:3.11
# Options passed to `nanogrid up`, for example: make up UP_ARGS='--port 18080'
UP_ARGS ?=
# Runs for `make soak`; the short soak inside `make test` uses SHORT_SOAK_RUNS (300).
SOAK_RUNS ?= 2000
# Options for bench/run.py, for example: make bench BENCH_ARGS='--no-plot'
BENCH_ARGS ?=
# Files or folders for pytest, and options added after the defaults below.
TESTS ?= tests/
PYTEST_ARGS ?=
# -ra lists every test that did not pass with its reason; --durations shows the slow ones.
PYTEST_DEFAULT_ARGS := -ra --strict-markers --durations=10

.PHONY: help setup sam-setup up test bench soak image clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "} {printf "  make %-8s %s\n", $$1, $$2}'

setup: ## Install what is missing: Debian packages, .venv, Docker engine, runtime image
	@bash scripts/setup-local.sh

sam-setup: setup ## Install SAM CLI and cfn-lint into .venv-sam and build the offline Lambda base image
	@bash scripts/install-sam.sh </dev/null

up: setup ## Run the local stack in the foreground on 127.0.0.1 (Ctrl-C stops it)
	$(NANOGRID) up $(UP_ARGS)

# pytest exits 5 when it collected no tests; that is reported as a failure, not a pass.
test: setup sam-setup ## Run the tests under tests/ (TESTS=..., PYTEST_ARGS=... to narrow)
	@set +e; $(PYTEST) $(PYTEST_DEFAULT_ARGS) $(PYTEST_ARGS) $(TESTS); code=$$?; \
	if [ $$code -eq 5 ]; then \
		echo "make test: pytest collected no tests from $(TESTS); failing so that an empty run is not taken for a pass" >&2; \
	fi; \
	exit $$code

bench: setup ## Measure fast runs and the controller's cold start against a floor (about 2 min)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	$(VENV)/bin/python bench/run.py $(BENCH_ARGS)

soak: setup ## Drive SOAK_RUNS runs (2000) through a local stack while killing a worker and restarting Redis
	SOAK_RUNS=$(SOAK_RUNS) $(VENV)/bin/python bench/soak.py --runs $(SOAK_RUNS)

image: ## Build the runtime image RUNTIME_IMAGE (nanogrid/python:3.11) with debootstrap; needs root
	bash scripts/build-runtime-image.sh $(RUNTIME_IMAGE)

clean: ## Remove local state (.nanogrid: logs, Redis data, worker cache); stops nothing
	rm -rf .nanogrid

# Later targets go here: bench, soak, sam-build, sam-deploy, ...
