# AI Infra Lab. `make lab` runs the main job, `make test` the whole suite; both set everything up first.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST := $(BIN)/pytest
WEEK ?= week01
# The main job: Week 1's experiments on the embedded default (local tritonserver, Prometheus, Alertmanager, Redis,
# ONNX Runtime) at their quick sizes, written under .lab/main/ so the committed full-size results stay as they are.
# Day 1's container builds (d01) took 8 min on 2 cores by themselves in one quick run: `make lab-full` or
# `lab run d01` runs them.
MAIN ?= d02,d03,d04,d05,d06,d07
MAIN_DIR := .lab/main
# Python keeps compiled bytecode of the lab's own modules (__pycache__/, git-ignored) even where the environment
# says not to: without it every `lab` command and every runner or client process the tests start compiles ~270
# modules again (0.8 s a process on 2 cores; the installed packages were compiled by pip already).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: help setup system venv lab lab-full test test-unit test-integration test-molecule test-containers test-gpu \
        lint fmt dashboards images image-cuda-kernels cuda clean test-e2e site

help:
	@echo "make lab          set up, then run the main job ($(MAIN) at quick size) into $(MAIN_DIR)/ (budget 10 min; timing.json)"
	@echo "make lab-full     set up, then run $(WEEK) at full size into reports/results/ and render reports/"
	@echo "make test         set up, then run every test (unit, integration, containers, molecule, lint)"
	@echo "make test-unit | test-integration | test-molecule | test-containers | test-gpu | lint | fmt"
	@echo "make site         build site/: the reports, reviews, plots, diagrams and coverage as static HTML"
	@echo "make image-cuda-kernels  build the cuda-kernels image (PyPI CUDA toolchain) and copy its binaries to .lab/imagebin/"
	@echo "make test-e2e     chosen cluster experiments on the cluster in KUBECONFIG (week stack up; docs/cluster-experiments.md)"

setup: system venv

system:
	@scripts/setup-system.sh

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# tools/timed.py records the run's wall time, exit status and provenance in $(MAIN_DIR)/timing.json (the 10-minute
# budget is checked against that record; reports/checks/make-lab/ keeps one from a machine like CI's)
lab: setup
	AILAB_RESULTS_DIR=$(MAIN_DIR)/results AILAB_REPORTS_DIR=$(MAIN_DIR)/reports $(BIN)/python tools/timed.py \
	  --out $(MAIN_DIR)/timing.json --label "make lab: lab run $(MAIN) --quick" -- $(BIN)/lab run $(MAIN) --quick

lab-full: setup
	$(BIN)/lab run $(WEEK)

# --durations: the slowest tests in every log (CI's too), to keep the whole run near its ~30 min budget on 2 cores
test: setup
	$(MAKE) lint
	$(PYTEST) -q -p no:cacheprovider --durations=30

test-unit: setup
	$(PYTEST) -q -m "not integration and not molecule and not containers and not slow"

test-integration: setup
	$(PYTEST) -q -m integration

test-molecule: setup
	$(PYTEST) -q -m molecule

test-containers: setup
	$(PYTEST) -q -m containers

test-gpu: setup
	$(PYTEST) -q -m gpu

test-e2e: setup  # AILAB_E2E_EXPERIMENTS=d02.e1,d41.e3 AILAB_E2E_WEEK=1 AILAB_E2E_CONTEXT=kind-ailab to choose
	$(PYTEST) -v -p no:cacheprovider -m cluster tests/e2e/test_cluster_experiments.py

site: setup  # every report, review, plot, diagram and the coverage table as static HTML in site/ (not committed)
	$(BIN)/lab site --strict

images: setup  # build the workload images with podman, cold then warm (IMAGES="inference --variant onnx" for one)
	$(BIN)/lab images build $(IMAGES)

image-cuda-kernels: setup  # cuda-kernels image: CUDA 13.0 toolchain from PyPI wheels, all of cuda/ compiled in podman (minutes cold); binaries to .lab/imagebin/
	AILAB_BUILD_CUDA_IMAGE=1 $(PYTEST) -q -p no:cacheprovider tests/containers/test_images_cuda_kernels_build.py

lint: venv
	$(BIN)/ruff check ailab workloads tests pulumi tools
	$(BIN)/ruff format --check ailab workloads tests pulumi tools
	$(BIN)/yamllint -s ansible inventories .yamllint .ansible-lint
	PATH=$(CURDIR)/$(BIN):$$PATH ANSIBLE_ROLES_PATH=$(CURDIR)/ansible/roles $(BIN)/ansible-lint -q --profile production ansible inventories

fmt: venv
	$(BIN)/ruff format ailab workloads tests pulumi tools
	$(BIN)/ruff check --fix ailab workloads tests pulumi tools

clean:
	rm -rf .lab build cuda/build
