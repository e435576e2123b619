# The README's commands: `make run`, `make test`, `make bench`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO   ?= demo-workspace
PORT   ?= 8501

.PHONY: install system-deps run demo test test-fast lint format bench sample-reports clean lock

# Python dependencies come from lock files resolved from pyproject.toml by `make lock`:
# requirements.lock is the runtime (the image, `pip install`), requirements-dev.lock adds
# the test and bench extras (this virtualenv). The project is installed editable on top.
$(STAMP): pyproject.toml requirements-dev.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(BIN)/python requirements-dev.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# The W&B writer environments of the tests are pinned too (tests/wandb_locks/*.in).
WANDB_LOCKS := $(patsubst %.in,%.lock,$(wildcard tests/wandb_locks/*.in))
lock: install
	$(BIN)/uv pip compile --quiet --python-version 3.11 --extra test --extra bench \
		pyproject.toml -o requirements-dev.lock
	$(BIN)/uv pip compile --quiet --python-version 3.11 -c requirements-dev.lock \
		pyproject.toml -o requirements.lock
	for lock in $(WANDB_LOCKS); do \
	  $(BIN)/uv pip compile --quiet --python-version 3.11 \
	    --python-platform x86_64-manylinux_2_28 $${lock%.lock}.in -o $$lock || exit 1; \
	done

# Programs the tests use that pip cannot install: Chromium (browser tests), poppler
# (pdftotext/pdftoppm), PostgreSQL (the scale-out server path), HarfBuzz subsetting (fonts
# in PDFs). Installed with apt-get when missing and we are root; otherwise the line printed
# says what to install.
SYSTEM_PACKAGES := chromium poppler-utils postgresql fonts-dejavu-core libharfbuzz-subset0 git
system-deps:
	@missing=""; \
	if command -v dpkg-query >/dev/null; then \
	  for pkg in $(SYSTEM_PACKAGES); do \
	    dpkg-query -W -f='$${Status}' $$pkg 2>/dev/null | grep -q "ok installed" \
	      || missing="$$missing $$pkg"; \
	  done; \
	else \
	  command -v chromium >/dev/null || missing="$$missing chromium"; \
	  command -v pdftotext >/dev/null || missing="$$missing poppler-utils"; \
	  command -v git >/dev/null || missing="$$missing git"; \
	  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	fi; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing system packages for:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; \
	  else \
	    echo "Missing:$$missing. Install: sudo apt-get install $(SYSTEM_PACKAGES)"; exit 1; \
	  fi; \
	fi

demo: install
	$(BIN)/runreview demo --dir $(DEMO) --if-missing

run: demo
	$(BIN)/runreview app --port $(PORT) \
		--tracking-uri sqlite:///$(abspath $(DEMO))/mlflow.db --logdir $(abspath $(DEMO))/tensorboard

# Everything the suite keeps between runs (W&B writer virtualenvs, Hypothesis examples,
# TensorBoard parse caches) lives in TEST_CACHE: empty in a fresh clone, as in CI, and
# warm in a developer's clone. Nothing is kept in the machine's temp folder.
TEST_WORKERS ?= 2
TEST_CACHE   ?= $(CURDIR)/.test-cache
PYTEST       := RUNREVIEW_TEST_CACHE=$(TEST_CACHE) $(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup
test: install system-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(PYTEST)

# The suite without its slow groups (Chromium, PostgreSQL, W&B writers): for a quick
# check while developing; `make test` runs everything.
test-fast: install system-deps
	$(PYTEST) -m "not browser and not postgres and not wandb"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python -m benchmarks

# The demo's three reports (weekly, stakeholder, audit) as PDFs in SAMPLES, to look at.
SAMPLES ?= test-artifacts
sample-reports: install
	$(BIN)/python -m runreview.reports.samples --out $(SAMPLES)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .test-cache
