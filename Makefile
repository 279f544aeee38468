# Every target installs what it needs first: `make run` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test test-unit test-integration bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# A working farm with embedded defaults: the server plus one local render, state under ./var/.
# It listens on loopback only: AF_SERVER_BIND_ADDRESS=0.0.0.0 make run opens it to other hosts.
run: install
	AF_STORE_FOLDER=$${AF_STORE_FOLDER:-$(CURDIR)/var/store} \
	AF_SERVER_BIND_ADDRESS=$${AF_SERVER_BIND_ADDRESS:-127.0.0.1} $(BIN)/afserver --local-render

# Unit tests first (a broken one is told at once), then the integration tests TEST_JOBS at a
# time (they mostly wait on real processes), then the few that stop the machine's PostgreSQL.
TEST_JOBS ?= 3
test: install
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)
	$(BIN)/python -m pytest tests/integration -m "not serial" -n $(TEST_JOBS) $(PYTEST_ARGS)
	$(BIN)/python -m pytest tests/integration -m serial $(PYTEST_ARGS)

test-unit: install
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

test-integration: install
	$(BIN)/python -m pytest tests/integration -m "not serial" -n $(TEST_JOBS) $(PYTEST_ARGS)
	$(BIN)/python -m pytest tests/integration -m serial $(PYTEST_ARGS)

bench: install
	@for b in bench/[!_]*.py; do $(BIN)/python $$b || exit 1; done

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) var .pytest_cache
