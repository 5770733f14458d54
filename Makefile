# Offline workflow: every target creates .venv itself (python3 -m venv) and installs the
# project with its test extra; nothing is installed globally.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# checkov scans the synthesized manifests (tests/test_pod_security.py) from a virtual environment
# of its own: its dependencies clash with the project's.
CHECKOV_VENV := .venv-checkov
CHECKOV_VERSION := 3.3.30
STACK ?= dev
# Every stack file in stacks/: a new stack is synthesized, checked and golden-filed too.
STACKS := $(patsubst stacks/Pulumi.%.yaml,%,$(wildcard stacks/Pulumi.*.yaml))

.DEFAULT_GOAL := help
.PHONY: help synth synth-all checkov-venv test lint conformance golden simulate bench schema clean

help: ## Show the targets
	@echo "make synth STACK=<dev|staging|prod>  synthesize a stack offline into build/<stack>/"
	@echo "make synth-all                       synthesize every stack"
	@echo "make test                            lint, type-check and run the test suite (conformance, golden files included)"
	@echo "make lint                            ruff and mypy only"
	@echo "make golden                          rewrite tests/golden/ from synth output (review the diff)"
	@echo "make conformance                     synthesize every stack, check build/ against upstream contracts"
	@echo "make simulate STACK=prod SERVICE=chat-8b [TRACE=\"a.csv b.jsonl\"] [SEEDS=0,1,2] [ROUTING=random,least-queue,prefix-aware]  replay a trace through the scaling loop (--tune)"
	@echo "make bench                           simulator and synth (200 model services) speed and memory figures"
	@echo "make schema                          regenerate stacks/schema.json from the config models"
	@echo "make clean                           remove build/, .venv/ and .venv-checkov/"

$(VENV)/.installed: pyproject.toml requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

synth: $(VENV)/.installed
	$(PY) -m synth $(STACK)

synth-all: $(VENV)/.installed
	@for s in $(STACKS); do $(PY) -m synth $$s || exit $$?; done

$(CHECKOV_VENV)/.installed:
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet checkov==$(CHECKOV_VERSION)
	touch $@

checkov-venv: $(CHECKOV_VENV)/.installed ## checkov in its own virtual environment

test: $(VENV)/.installed $(CHECKOV_VENV)/.installed lint
	$(PY) -m pytest -q

lint: $(VENV)/.installed ## ruff (style, complexity <= 12) and mypy, as part of make test
	$(PY) -m ruff check .
	$(PY) -m mypy

conformance: synth-all
	$(PY) -m synth dev --program examples/extra-model --out build/example-extra-model
	$(PY) -m tests.conformance $(addprefix build/,$(STACKS)) build/example-extra-model

golden: $(VENV)/.installed
	@for s in $(STACKS); do $(PY) -m synth $$s --out tests/golden/$$s > /dev/null; rc=$$?; [ $$rc -le 1 ] || exit $$rc; done
	$(PY) -m synth dev --program examples/extra-model --out tests/golden/example-extra-model > /dev/null
	git status --short tests/golden

TRACE ?= tests/upstream/traces/AzureLLMInferenceTrace_code.csv
simulate: $(VENV)/.installed
	$(PY) -m simulator --stack $(STACK) $(if $(SERVICE),--service $(SERVICE)) $(foreach t,$(TRACE),--trace $(t)) $(if $(SEEDS),--seeds $(SEEDS)) $(if $(ROUTING),--routing $(ROUTING)) --tune

bench: $(VENV)/.installed
	$(PY) -m simulator.bench
	$(PY) -m synth.bench --services 200

schema: $(VENV)/.installed
	@# Into a temporary file first: a failed generation leaves stacks/schema.json as it was.
	$(PY) -m components.schema > stacks/schema.json.tmp || { rm -f stacks/schema.json.tmp; exit 1; }
	mv stacks/schema.json.tmp stacks/schema.json

clean:
	rm -rf build $(VENV) $(CHECKOV_VENV)
