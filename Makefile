# ibgw-harness. Every target bootstraps .venv on first use (python3 -m venv + pip).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
REPORTS := reports
PYTEST_ARGS ?=

.PHONY: help venv test report mock bench clean

help:
	@echo "make report   all CI suites against the mock; allure results + JUnit in reports/, summary table"
	@echo "make test     the harness's unit tests + the CI suites against the mock"
	@echo "make mock     run the mock Gateway in the foreground on 127.0.0.1:4002 (Ctrl-C stops it)"
	@echo "make bench    benchmarks (not part of pass/fail)"

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e .
	@touch $@

test: $(STAMP)
	$(PY) -m pytest tests suites $(PYTEST_ARGS)

report: $(STAMP)
	@mkdir -p $(REPORTS)
	@status=0; \
	$(PY) -m pytest suites --alluredir=$(REPORTS)/allure-results --clean-alluredir \
		--junitxml=$(REPORTS)/junit.xml $(PYTEST_ARGS) || status=$$?; \
	echo; $(PY) -m harness.evidence.summary $(REPORTS)/evidence || status=1; \
	echo; echo "allure results: $(REPORTS)/allure-results   JUnit: $(REPORTS)/junit.xml   evidence: $(REPORTS)/evidence"; \
	exit $$status

mock: $(STAMP)
	$(VENV)/bin/ibgw mock serve --host 127.0.0.1 --port 4002

bench: $(STAMP)
	$(PY) benchmarks/bench_mock.py

clean:
	rm -rf $(REPORTS)/allure-results $(REPORTS)/evidence $(REPORTS)/junit.xml .pytest_cache
