PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
DB_URL ?= sqlite:///$(CURDIR)/data/feedback.db
PORT ?= 8501

.PHONY: run test lint bench clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.installed-test: requirements-test.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-test.txt
	touch $@

## run: install, build the demo database if there is none, start the dashboard
run: $(VENV)/.installed
	FEEDBACK_DB_URL="$${FEEDBACK_DB_URL:-$(DB_URL)}" $(BIN)/feedback-core init
	FEEDBACK_DB_URL="$${FEEDBACK_DB_URL:-$(DB_URL)}" $(BIN)/feedback-core demo --if-empty
	FEEDBACK_DASHBOARD_WORKER=1 FEEDBACK_DB_URL="$${FEEDBACK_DB_URL:-$(DB_URL)}" \
		$(BIN)/streamlit run dashboard/app.py --server.port $(PORT) --server.address 127.0.0.1

## test: install the test requirements and run the whole suite
test: $(VENV)/.installed-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check feedback_core feedback_system dashboard tests bench
	$(BIN)/ruff format --check feedback_core feedback_system dashboard tests bench

## bench: run every benchmark in bench/
bench: $(VENV)/.installed-test
	status=0; for b in bench/record.py bench/learning.py bench/api.py bench/dashboard.py bench/ingest.py bench/scale.py; do \
		echo "== $$b"; $(BIN)/python $$b || status=1; done; exit $$status

clean-venv:
	rm -rf $(VENV)
