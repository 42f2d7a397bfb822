# AI Infra Lab. `make lab` runs the main job, `make test` the whole suite; both set everything up first.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST := $(BIN)/pytest
WEEK ?= week01

.PHONY: help setup system venv lab test test-unit test-integration test-molecule test-containers test-gpu \
        lint fmt dashboards images cuda clean

help:
	@echo "make lab          set up, then run the main job (lab run $(WEEK)) and render its report"
	@echo "make test         set up, then run every test (unit, integration, containers, molecule, lint)"
	@echo "make test-unit | test-integration | test-molecule | test-containers | test-gpu | lint | fmt"

setup: system venv

system:
	@scripts/setup-system.sh

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

lab: setup
	$(BIN)/lab run $(WEEK)

test: setup
	$(MAKE) lint
	$(PYTEST) -q -p no:cacheprovider

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

images: setup  # build the workload images with podman, cold then warm (IMAGES="inference --variant onnx" for one)
	$(BIN)/lab images build $(IMAGES)

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
