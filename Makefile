# One place for what humans and CI run. `make help` lists the targets.
PY ?= python3

.PHONY: help install gen gen-check buf-lint buf-breaking idl-baseline lint fmt typecheck imports test check

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

install:  ## install caddis with everything the tests need (editable)
	$(PY) -m pip install -e ".[dev]"

gen:  ## regenerate the Python code from protos/ (buf format + lint first)
	$(PY) scripts/gen_protos.py

gen-check:  ## regenerate and fail on any difference from what is committed
	$(PY) scripts/gen_protos.py --check

buf-lint:  ## buf lint over protos/
	cd protos && buf lint

buf-breaking:  ## fail on IDL changes that break generated clients (against the committed baseline)
	cd protos && buf breaking --against breaking-baseline.binpb

idl-baseline:  ## record today's IDL as the baseline of buf-breaking (at a release)
	cd protos && buf build -o breaking-baseline.binpb

lint:  ## ruff lint and format check
	ruff check .
	ruff format --check .

fmt:  ## apply ruff's formatting and safe fixes
	ruff format .
	ruff check --fix .

typecheck:  ## mypy (strict) on hand-written code
	mypy

imports:  ## import-linter contracts (the dependency direction of DESIGN.md)
	lint-imports

test:  ## the test suite
	$(PY) -m pytest -n 2 -q

check: gen-check buf-lint buf-breaking lint typecheck imports test  ## everything CI runs
