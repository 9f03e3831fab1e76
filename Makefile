# The two commands a newcomer needs: `make run` (install and run the bot), `make test` (install and test).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BABEL := $(VENV)/bin/pybabel

.PHONY: install catalogs run test test-pg lint messages bench

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,postgres,redis]'
	touch $@

# aiogram refuses an uncompiled catalog, so compiling is part of the install.
catalogs: $(VENV)/.installed
	$(BABEL) -q compile -d locales -D messages

install: $(VENV)/.installed catalogs

run: install
	@test -f config.toml || (cp config.example.toml config.toml && echo "created config.toml from config.example.toml (with no token the sandbox starts: put the token in it or in TSUR_BOT__TOKEN for the real bot)")
	$(VENV)/bin/tsur-bot run

test: install
	.ci/need-chromium
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

# The same suite on PostgreSQL (and with the Redis tests): a throwaway cluster and Redis server on free local ports,
# started for the run and stopped after it (.ci/with-services; Debian's postgresql and redis-server packages).
# With a server of your own: TSUR_TEST_DATABASE_URL=postgresql+asyncpg://user@host/db make test
test-pg: install
	.ci/with-services sh -c 'TSUR_TEST_DATABASE_URL=$$TSUR_TEST_PG_URL $(PY) -m pytest -q'

# Extract the strings from the code and merge them into the catalogs (translators then fill them in).
messages: $(VENV)/.installed
	$(BABEL) -q extract -k _ -k __ -k N_ --no-location --sort-output -o locales/messages.pot bot handlers
	for lang in ru ce en; do \
	  if [ -f locales/$$lang/LC_MESSAGES/messages.po ]; then \
	    $(BABEL) -q update --no-fuzzy-matching -i locales/messages.pot -d locales -D messages -l $$lang; \
	  else \
	    $(BABEL) -q init -i locales/messages.pot -d locales -D messages -l $$lang; \
	  fi; \
	done
	$(PY) locales/fill_en.py

bench: install
	$(PY) bench/intake.py
