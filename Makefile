# ibgw-harness. Every target bootstraps .venv on first use (python3 -m venv + pip), with every
# extra and the test-only packages (.[all,test]); `pip install ibgw-harness` alone is the base install.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
REPORTS := reports
# The offline HTML report's tooling (npm `allure` 3 + playwright-core), pinned by its lock file.
ALLURE_TOOLS := tools/allure
ALLURE_STAMP := $(ALLURE_TOOLS)/node_modules/.installed
PYTEST_ARGS ?=
# pytest-xdist workers for `make test` and `make report` (WORKERS=N for both; WORKERS=0: serial).
# --dist loadfile keeps each test file on one worker: module fixtures (the version matrix's
# targets and its matrix directory, test_report's nested pytest run) and module-level state
# (the matrix's pinning check reads what its own cells wrote) assume one process per file. The
# repository's conftest.py refines it (tests/support/balance.py): files of independent long tests
# (the zombie suite, the soak and interrupt tests) are shared by the workers.
# TEST_WORKERS: `make test` alone. Its default is two workers per core (at most 16): the suite
# mostly waits (soaks, fault timeouts, child processes; one run on 2 cores used 357 s of CPU in
# 500 s of wall time at one worker per core), so a second worker per core fills the waits.
# `make report` stays at one per core: its timings are evidence. Measured in issue 20's note.
WORKERS ?= auto
TEST_WORKERS ?= $(if $(filter auto,$(WORKERS)),$(shell python3 -c 'import os; print(min(16, 2 * (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)))' 2>/dev/null || echo 2),$(WORKERS))
XDIST_ARGS = $(if $(filter 0,$(WORKERS)),,-n $(WORKERS) --dist loadfile)
TEST_XDIST_ARGS = $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

.PHONY: help venv lint test test-live report report-tools mock bench soak clean

help:
	@echo "make report   all CI suites and the version matrix against the mock (~100 s on 2 cores from a fresh clone); reports/ and the pinning verdict (exit 0: only caught regressions)"
	@echo "make lint     ruff, mypy on harness/ and the import-linter layer contracts (pyproject.toml; ~30 s); make lint-fix: ruff's safe fixes"
	@echo "make test     make lint, then the harness's unit tests + the CI suites against the mock"
	@echo "make test-live  the suites against a real paper Gateway: IBGW_HOST=127.0.0.1 IBGW_PORT=4002 (or GATEWAY=HOST:PORT|docker:IMAGE), CLIENT=module:factory"
	@echo "make mock     run the mock Gateway in the foreground on 127.0.0.1:4002 (Ctrl-C stops it)"
	@echo "make bench    server CPU per handshake/ping: ibgw mock serve vs a stdlib bare server; 1,000/10,000 sessions (BENCH_ARGS=\"--minutes 10\")"
	@echo "make fuzz     FUZZ_INPUTS=100000: fuzz the mock Gateway (coverage, memory, every close logged)"
	@echo "make soak     DURATION=3600 GATEWAY=mock: the soak with its fault schedule (reports/soak/)"
	@echo "make report GATEWAY=docker   the version matrix on containers (docker-py), ending with the pinning table"
	@echo "make images   BASE_IMAGE=python:3.11-slim: the mock Gateway images and the gnzsnz-shaped stand-in"
	@echo "make client-matrix   ib_async 2.0.1/2.1.0, ibapi 10.50/9.81 (own venvs) through the version matrix"
	@echo "make screenshot   docs/report-first-screen.png from the last make report (headless chromium)"
	@echo "make venv     create .venv and install the harness (every target does this on first use)"
	@echo "make clean    remove generated reports and caches"
	@echo "PYTEST_ARGS='...' passes extra pytest options to test, test-live, report and soak"
	@echo "WORKERS=N    pytest-xdist workers for test and report (default auto: one per core; 0: serial; TEST_WORKERS=N: test only)"

venv: $(STAMP)

$(STAMP): pyproject.toml
	@echo "creating $(VENV) and installing the harness (once, about 30 s)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[all,test]'
	@touch $@

# With npm present, the report tooling is installed first so the browser test
# of the HTML report runs (without npm it skips, or fails under IBGW_REQUIRE_BROWSER=1).
test: lint $(STAMP) $(if $(shell command -v npm 2>/dev/null),$(ALLURE_STAMP))
	$(PY) -m pytest tests suites --expect-regressions $(TEST_XDIST_ARGS) $(PYTEST_ARGS)

# The checks that keep the layers as documented (configuration in pyproject.toml): lint and
# import order, types on harness/, and the import-linter contracts (layer order; stdlib-only
# core, protocol and mock). Fast, so `make test` (and CI through it) runs it first.
LINT_PATHS := harness tests suites benchmarks examples conftest.py
lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# The fixes ruff can make safely for the rules pyproject.toml enables (import order, unused
# imports); never the formatter. mypy and import-linter findings are fixed by hand.
.PHONY: lint-fix
lint-fix: $(STAMP)
	$(VENV)/bin/ruff check --fix $(LINT_PATHS)

# Against a real paper Gateway: read-only through the recording proxy, paper accounts only, paced
# (harness/pytest_plugin/live.py). Without IBGW_HOST/IBGW_PORT or GATEWAY every test skips and says what to set.
# The version matrix is not run: it judges mock profiles or containers, not the Gateway you point at.
# make itself can only exit 0 or 2, so pytest's own exit code (3: a non-paper account or an unreachable
# Gateway stopped the run; 2: interrupted; 1: tests failed) is printed and kept in reports/test-live.status.
test-live: $(STAMP)
	@mkdir -p $(REPORTS); status=0; \
	$(PY) -m pytest suites -m "not soak and not matrix" --ibgw-live $(if $(GATEWAY),--gateway $(GATEWAY)) $(if $(CLIENT),--client $(CLIENT)) $(PYTEST_ARGS) || status=$$?; \
	echo $$status > $(REPORTS)/test-live.status; \
	[ $$status -eq 0 ] || echo "ibgw: pytest exited $$status (kept in $(REPORTS)/test-live.status; make reports any failure as 2)" >&2; \
	exit $$status

report-tools: $(ALLURE_STAMP)

$(ALLURE_STAMP): $(ALLURE_TOOLS)/package.json $(ALLURE_TOOLS)/package-lock.json
	cd $(ALLURE_TOOLS) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The version matrix in `make report`: the full grid (10 zombie runs per cell) on the
# in-process mock profiles, or on containers with GATEWAY=docker; then the summary, the
# pinning decision (`ibgw pin`), the HTML report (its first screen shows that decision)
# and the list of artifacts. The last line says what the run found and sets the exit code
# (harness/evidence/run_outcome.py): 0 when every failure is a Gateway regression the matrix
# caught, a build is recommended and every artifact was made; 1 otherwise. Without npm the
# HTML report is skipped with one line naming npm; every other artifact is still made.
MATRIX_TARGET = $(if $(filter docker,$(GATEWAY)),docker,mock)
report: $(STAMP)
	@mkdir -p $(REPORTS)
	@echo "make report: all CI suites and the Gateway-version matrix against the mock (about 100 seconds on 2 cores from a fresh clone)"
	@pytest_status=0; html_status=0; \
	IBGW_MATRIX_TARGET=$(MATRIX_TARGET) IBGW_MATRIX_RUNS=$${IBGW_MATRIX_RUNS:-10} \
	$(PY) -m pytest suites $(XDIST_ARGS) --alluredir=$(REPORTS)/allure-results --clean-alluredir \
		--junitxml=$(REPORTS)/junit.xml --evidence-dir=$(REPORTS)/evidence $(PYTEST_ARGS) || pytest_status=$$?; \
	echo; $(PY) -m harness.evidence.summary $(REPORTS)/evidence || pytest_status=$$(( pytest_status > 1 ? pytest_status : 1 )); \
	echo; rm -f $(REPORTS)/pinning.json $(REPORTS)/pinning.md; $(PY) -m harness.cli pin $(REPORTS)/evidence/matrix --out $(REPORTS); \
	echo; if ! command -v npm >/dev/null 2>&1; then \
		echo "HTML report skipped: npm not found (install Node.js 18+ with npm, e.g. apt-get install nodejs npm); every other artifact is in $(REPORTS)/"; \
		html_status=1; \
	else \
		{ [ -f $(ALLURE_STAMP) ] || echo "installing the HTML report's tooling (npm ci in $(ALLURE_TOOLS), once)"; } && \
		$(MAKE) --no-print-directory -s report-tools && \
		$(PY) -m harness.evidence.html_report --results $(REPORTS)/allure-results --output $(REPORTS)/html \
			--history $(REPORTS)/history.jsonl --pinning $(REPORTS)/pinning.json \
			--fault-matrix $(REPORTS)/evidence/fault_matrix.json || html_status=1; \
	fi; \
	echo; $(PY) -m harness.evidence.artifacts $(REPORTS); \
	echo; $(PY) -m harness.evidence.run_outcome $(REPORTS) --pytest-status $$pytest_status --html-status $$html_status

# The README's screenshot of the report's first screen (headless chromium), from the
# report `make report` made: docs/report-first-screen.png.
.PHONY: screenshot
screenshot: $(STAMP) $(ALLURE_STAMP)
	@[ -f $(REPORTS)/html/index.html ] || { echo "no $(REPORTS)/html/index.html: run make report first"; exit 1; }
	cd $(ALLURE_TOOLS) && node first-screen.mjs $(abspath $(REPORTS)/html/index.html) $(abspath docs/report-first-screen.png)

mock: $(STAMP)
	$(VENV)/bin/ibgw mock serve --host 127.0.0.1 --port 4002

bench: $(STAMP)
	$(PY) -m benchmarks.run_all $(BENCH_ARGS)

# The mock under structure-aware fuzzing; CI runs a 4000-input share in tests/mock/test_fuzz_mock.py.
.PHONY: fuzz
FUZZ_INPUTS ?= 100000
fuzz: $(STAMP)
	$(PY) -m benchmarks.fuzz_mock --inputs $(FUZZ_INPUTS)

# The soak (suites/test_soak.py, marker soak): DURATION seconds against GATEWAY
# (mock, mock:PROFILE or HOST:PORT); evidence in reports/soak/<UTC time>/.
DURATION ?= 3600
# No `GATEWAY ?= mock` here: Make variables are global, and test-live must see GATEWAY unset.
soak: $(STAMP)
	IBGW_SOAK_DURATION=$(DURATION) $(PY) -m pytest suites/test_soak.py -m soak -s -p no:cacheprovider \
		--gateway $(or $(GATEWAY),mock) $(PYTEST_ARGS)

# Mock Gateway images (one per version in gateway-docker/versions.json) and the
# gnzsnz-shaped stand-in, through docker-py; needs an engine (.ci/provision-docker
# provisions one and a local base image on Debian without a registry).
BASE_IMAGE ?= python:3.11-slim
.PHONY: images
images: $(STAMP)
	$(PY) -m harness.targets.images --base-image $(BASE_IMAGE)

# The client matrix: ib_async 2.0.1 / 2.1.0, ibapi 10.50 / legacy 9.81, each in its own
# .venvs/ virtualenv, through the version matrix; ends with one pinning table.
.PHONY: client-matrix
client-matrix: $(STAMP)
	gateway-docker/client-matrix.sh

clean:
	rm -rf $(REPORTS)/allure-results $(REPORTS)/evidence $(REPORTS)/junit.xml .pytest_cache
	rm -rf $(REPORTS)/html $(REPORTS)/plots $(REPORTS)/report-screenshot*.png  # history.jsonl stays: it is the trend
