# Every target bootstraps what it needs: a fresh machine only has Python 3.13 (pyenv), git, make and PyPI.
SHELL := /bin/bash
export PYENV_VERSION ?= 3.13.0
PYTHON ?= python3.13
VENV := .venv
TOOLS := .tools
# uv, pinned with its hashes in requirements-uv.lock, lives in a small virtualenv of its own: it installs .venv
# from uv.lock and .tools from requirements-tools.lock, and never downloads an interpreter (pyenv's is the one).
BOOT := .uv
UV := $(BOOT)/bin/uv
export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never
export UV_NO_PROGRESS := 1
PY := $(VENV)/bin/python
RUN := $(PY)
SAM := $(TOOLS)/bin/sam
CFNLINT := $(TOOLS)/bin/cfn-lint
SEED ?=
SCHEDULES ?= 500
# `make lock UPGRADE=1` moves every pin to the newest release the declarations allow; plain `make lock` keeps
# the pins that still fit and only resolves what changed.
UPGRADE ?=

LAYER_REQUIREMENTS := layers/kinotrakt/requirements.txt
# The layer's requirements: the runtime dependencies only (no cli extra, no dev group, not the project itself),
# every transitive pin with the hashes of all its artefacts, as `sam build` installs them.
EXPORT_LAYER := { echo "\# Exported from uv.lock by make lock ([project].dependencies; boto3 comes from the Lambda runtime). Do not edit."; \
	$(UV) export --frozen --no-dev --no-emit-project --format requirements-txt --no-header -q; }

.PHONY: install lock locked chromium test lint types validate unit build demo sandbox bench bench-readme chaos invoke deploy clean

$(BOOT)/.installed: requirements-uv.lock
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (pyenv: PYENV_VERSION=3.13.0)"; exit 1; }
	rm -rf $(BOOT)
	$(PYTHON) -m venv $(BOOT)
	$(BOOT)/bin/python -m pip install -q --disable-pip-version-check --require-hashes --no-deps -r requirements-uv.lock
	touch $@

# The project itself is installed editable: the layer's package, the CLI (console script `kinotrakt`, with its
# cli extra) and devkit, with the dev group. hatchling builds it inside .venv (no build isolation), so every
# artefact that goes in comes from the lock: the first sync installs the dependencies, the second the project.
$(VENV)/.installed: uv.lock pyproject.toml | $(BOOT)/.installed
	$(UV) sync --frozen --no-install-project -q
	$(UV) sync --frozen
	touch $@

# SAM CLI + cfn-lint in their own virtualenv: SAM pins its own boto3.
$(TOOLS)/.installed: requirements-tools.lock | $(BOOT)/.installed
	rm -rf $(TOOLS)
	$(UV) venv -q $(TOOLS)
	$(UV) pip sync -q --require-hashes --python $(TOOLS)/bin/python requirements-tools.lock
	touch $@

install: $(VENV)/.installed $(TOOLS)/.installed

# Re-resolve uv.lock from pyproject.toml, export the layer's requirements from it, re-compile the tools' and
# uv's own hashed locks (each compiled next to the old one, which it starts from, and moved over it only when it
# changed, so make reinstalls nothing for an unchanged lock). Commit all four files together.
COMPILE := $(UV) pip compile -q --universal --python-version 3.13 --generate-hashes \
	--custom-compile-command "make lock" $(if $(UPGRADE),--upgrade,)
replace_if_changed = if cmp -s $(1).new $(1); then rm $(1).new; else mv $(1).new $(1); fi
lock: $(BOOT)/.installed
	$(UV) lock $(if $(UPGRADE),--upgrade,)
	$(EXPORT_LAYER) > $(LAYER_REQUIREMENTS).new && $(call replace_if_changed,$(LAYER_REQUIREMENTS))
	cp requirements-tools.lock requirements-tools.lock.new
	$(COMPILE) requirements-tools.in -o requirements-tools.lock.new && $(call replace_if_changed,requirements-tools.lock)
	cp requirements-uv.lock requirements-uv.lock.new
	$(COMPILE) requirements-uv.in -o requirements-uv.lock.new && $(call replace_if_changed,requirements-uv.lock)

# The lock still matches pyproject.toml, and the layer's requirements are exactly what the lock exports.
locked: $(BOOT)/.installed
	$(UV) lock --check
	@diff -u $(LAYER_REQUIREMENTS) <($(EXPORT_LAYER)) >/dev/null || { \
		diff -u $(LAYER_REQUIREMENTS) <($(EXPORT_LAYER)) | head -40; \
		echo "$(LAYER_REQUIREMENTS) is not what uv.lock exports: run make lock and commit the result"; exit 1; }

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

# Line coverage of the layer's package, the handlers and the CLI ([tool.coverage] in pyproject.toml): the files
# not fully covered and the total are printed, and the run fails under the floor.
unit: $(VENV)/.installed chromium
	$(PY) -m pytest -n 2 --cov --cov-report=term tests

# Everything, one command: lint, types, template checks, all test suites.
test: locked lint types validate unit

build: $(TOOLS)/.installed
	$(SAM) build --template template.yaml

demo: $(VENV)/.installed
	$(RUN) -m devkit.demo

# The bench writes build/bench.json, then the README's Performance table from it (bench/readme.py).
bench: $(VENV)/.installed
	$(RUN) -m bench
	$(RUN) -m bench.readme

bench-readme: $(VENV)/.installed
	$(RUN) -m bench.readme

chaos: $(VENV)/.installed
	$(RUN) -m chaos --schedules $(SCHEDULES) $(if $(SEED),--seed $(SEED),)

# A local cloud until Ctrl-C (moto + fake Kinopub + fake Trakt, README "Try it offline"). HOST=0.0.0.0 lets Docker's
# Lambda containers reach it on Linux; PORT=0 takes free ports.
# (Plain assignments: a HOST or PORT exported by the shell does not count, only `make sandbox HOST=...`.)
HOST = 127.0.0.1
PORT = 8510
sandbox: $(VENV)/.installed
	$(RUN) -m devkit.sandbox_server --host $(HOST) --port $(PORT)

# The sync function (FUNCTION=AuthFunction for the login) against a running `make sandbox`, or a deployed stack with
# STACK=<name> [REGION=...]: in the Lambda image (sam local invoke, needs Docker), or LOCAL=process without Docker.
LOCAL = docker
STACK =
REGION =
FUNCTION =
EVENT =
INVOKE_ARGS = --local $(LOCAL) $(if $(STACK),--stack $(STACK)) $(if $(REGION),--region $(REGION)) \
	$(if $(FUNCTION),--function $(FUNCTION)) $(if $(EVENT),--event $(EVENT))
invoke: $(VENV)/.installed $(if $(filter process,$(LOCAL)),,build)
	$(RUN) -m devkit.invoke $(strip $(INVOKE_ARGS))

deploy: build
	$(SAM) deploy --guided

clean:
	rm -rf .aws-sam build $(VENV) $(TOOLS) $(BOOT) .mypy_cache .ruff_cache .hypothesis .coverage
