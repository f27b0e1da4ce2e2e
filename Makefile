# The two commands of the Quick start, and the helpers behind them.
#   make dev   serve the API on http://127.0.0.1:5000/api/v1 (SQLite, no Redis needed)
#   make test  lock check, ruff, black, pyright and the whole test suite, as CI runs it
# Both install what they need first (pdm, .venv, the locked dependencies) and are safe to re-run.

PYTHON ?= python3
PDM_VERSION := 2.29.3
TOOLS := .tools
PDM := $(TOOLS)/bin/pdm
VENV := .venv
export PDM_CHECK_UPDATE := false

.DEFAULT_GOAL := help
.PHONY: help install dev serve test stack-test lint fmt bench client changelog clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(PDM):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check "pdm[locked]==$(PDM_VERSION)"

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.synced: pyproject.toml pdm.lock | $(PDM) $(VENV)/bin/python
	$(PDM) lock --check
	$(PDM) sync --clean --group :all
	@touch $@

install: $(VENV)/.synced ## Install pdm and the locked dependencies into .venv

dev: install ## Serve the API with the reloader on http://127.0.0.1:5000/api/v1
	$(PDM) run dev

serve: install ## Serve the API with gunicorn and gunicorn.conf.py
	$(PDM) run serve

lint: install ## ruff, black --check, pyright (strict on app/)
	$(PDM) run lint

test: lint ## Everything CI runs: the lock check, the linters and the test suite with coverage
	$(PDM) run test

stack-test: install ## Build the images, run the compose stack, test it through nginx, tear it down (needs Docker)
	$(PDM) run stack-test

fmt: install ## Fix what ruff can, then format with black
	$(PDM) run fmt

bench: install ## Run the benchmarks in bench/ (cache needs Redis; search needs MariaDB)
	$(PDM) run bench-json
	$(PDM) run bench-cache
	$(PDM) run bench-search

client: ## Generate the TypeScript client of /api/v1 into client/generated (needs Node 20.19+)
	cd client && npm ci --no-audit --no-fund && npm run generate && npm run build

changelog: install ## Regenerate CHANGELOG.md from the conventional commits (commitizen)
	$(VENV)/bin/cz changelog

clean: ## Remove the environments and caches (not instance/)
	rm -rf $(TOOLS) $(VENV) .pytest_cache .ruff_cache .coverage htmlcov site client/node_modules client/generated client/dist
