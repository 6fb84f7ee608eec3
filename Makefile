# Every target bootstraps what it needs: a fresh machine only has Python 3.13 (pyenv), git, make and PyPI.
SHELL := /bin/bash
export PYENV_VERSION ?= 3.13.0
PYTHON ?= python3.13
VENV := .venv
TOOLS := .tools
PY := $(VENV)/bin/python
RUN := $(PY)
SAM := $(TOOLS)/bin/sam
CFNLINT := $(TOOLS)/bin/cfn-lint
SEED ?=
SCHEDULES ?= 500

.PHONY: install chromium test lint types validate unit integration build demo bench chaos invoke deploy clean

# The project itself is installed editable: the layer's package, the CLI (console script `kinotrakt`) and devkit.
$(VENV)/.installed: requirements-dev.lock layers/kinotrakt/requirements.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (pyenv: PYENV_VERSION=3.13.0)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.lock
	$(PY) -m pip install -q --no-deps -e .
	touch $@

$(TOOLS)/.installed: requirements-tools.lock
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q --upgrade pip
	$(TOOLS)/bin/pip install -q -r requirements-tools.lock
	touch $@

install: $(VENV)/.installed $(TOOLS)/.installed

lint: $(VENV)/.installed
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

types: $(VENV)/.installed
	$(VENV)/bin/mypy layers/kinotrakt/kinotrakt cli/kinotrakt_cli devkit functions tests bench chaos

validate: $(TOOLS)/.installed
	$(SAM) validate --lint --template template.yaml --region eu-west-1
	$(CFNLINT) template.yaml

# The browser test (tests/browser) drives Debian's headless Chromium; CI runs as root, so install it when missing.
chromium:
	@command -v chromium >/dev/null || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }

unit: $(VENV)/.installed chromium
	$(PY) -m pytest -n 2 tests

# Everything, one command: lint, types, template checks, all test suites.
test: lint types validate unit

build: $(TOOLS)/.installed
	$(SAM) build --template template.yaml

demo: $(VENV)/.installed
	$(RUN) -m devkit.demo

bench: $(VENV)/.installed
	$(RUN) -m bench

chaos: $(VENV)/.installed
	$(RUN) -m chaos --schedules $(SCHEDULES) $(if $(SEED),--seed $(SEED),)

invoke: build
	$(SAM) local invoke SyncFunction -e events/schedule.json --env-vars events/env.json

deploy: build
	$(SAM) deploy --guided

clean:
	rm -rf .aws-sam build $(VENV) $(TOOLS) .mypy_cache .ruff_cache .hypothesis
