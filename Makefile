# The README's commands: `make run`, `make test`, `make bench`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO   ?= demo-workspace
PORT   ?= 8501

.PHONY: install system-deps run demo test lint format bench clean

# Python dependencies come from the lock file (resolved from pyproject.toml by
# `make lock`); the project itself is installed editable on top.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

lock:
	$(BIN)/uv pip compile --quiet --python-version 3.11 --extra test --extra bench \
		pyproject.toml -o requirements.lock

# Programs the tests use that pip cannot install: Chromium (browser tests), poppler
# (pdftotext/pdftoppm), PostgreSQL (the scale-out server path), HarfBuzz subsetting (fonts
# in PDFs). Installed with apt-get when missing and we are root; otherwise the line printed
# says what to install.
SYSTEM_PACKAGES := chromium poppler-utils postgresql fonts-dejavu-core libharfbuzz-subset0
system-deps:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v pdftotext >/dev/null || missing="$$missing poppler-utils"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
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

TEST_WORKERS ?= 2
test: install system-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
