# Command 1: `make run`  — set up and run the whole site with demo data (web + Celery worker + beat).
# Command 2: `make test` — install what the tests need and run the full suite (.ci/run calls exactly this).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: run test lint security bench install install-dev browser gettext messages clean
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install gettext
	@# compilemessages needs no settings (and so starts no embedded PostgreSQL)
	env -u DJANGO_SETTINGS_MODULE $(BIN)/django-admin compilemessages --ignore=.venv --ignore=.data -v 0
	@# exec: run_site is make's own child, so SIGTERM to make reaches it (and it stops when make dies)
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} exec $(BIN)/python manage.py run_site

# Browser tests drive Debian's Chromium (Playwright cannot download browsers here), with a CJK font so Chinese pages
# render (and screenshot) as text, not boxes.
browser:
	@command -v chromium >/dev/null 2>&1 || { echo "Installing Debian's chromium for the browser tests …"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }
	@fc-list 2>/dev/null | grep -qi "noto sans cjk" || { echo "Installing Debian's Noto CJK fonts for Chinese pages …"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq fonts-noto-cjk; }

# Translations (locale/*/LC_MESSAGES/django.po) are compiled to .mo by GNU gettext's msgfmt, from Debian's package
# like Chromium; the .mo files are build output (not committed).
gettext:
	@command -v msgfmt >/dev/null 2>&1 || { echo "Installing Debian's gettext for the translations …"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq gettext; }

# After changing visible strings: extract them into the catalog, then translate every new msgid in the .po.
messages: install gettext
	$(BIN)/python manage.py makemessages -l zh_Hans --no-location --ignore=.venv --ignore=.data \
	  --ignore=test-artifacts --ignore=docs --ignore=bench --ignore=agent --ignore=tests

# pytest exits 5 when it collected no tests: that is a failure here, never a silent pass.
test: install-dev browser gettext
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@# the layers of ARCHITECTURE §1 and no import cycles (contracts in pyproject.toml)
	$(BIN)/lint-imports
	@# compilemessages needs no settings (and so starts no embedded PostgreSQL)
	env -u DJANGO_SETTINGS_MODULE $(BIN)/django-admin compilemessages --ignore=.venv --ignore=.data -v 0
	$(MAKE) --no-print-directory security
	$(BIN)/python manage.py makemigrations --check --dry-run --settings=marketplace.settings.test >/dev/null
	$(BIN)/pytest $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

# bandit: no high-severity finding in our code. pip-audit: no known vulnerability in the pinned runtime
# dependencies; when the advisory service cannot be reached (offline CI: every package "could not be audited", or a
# connection error) it warns and goes on, but any vulnerability it does report fails the build.
security: install-dev
	$(BIN)/bandit -q -r accounts audit ledger listings marketplace orders settlement vouchers market oversight portal agent -lll
	@out=$$($(BIN)/pip-audit -r requirements.txt --progress-spinner off 2>&1); rc=$$?; \
	  if echo "$$out" | grep -qE "known vulnerabilit(y|ies) in"; then echo "$$out" >&2; exit 1; fi; \
	  if echo "$$out" | grep -qE "could not be audited|ConnectionError|NameResolutionError|Max retries exceeded"; then \
	    echo "pip-audit: advisory database unreachable, dependencies NOT audited (non-fatal)" >&2; exit 0; fi; \
	  echo "$$out" | head -n 3; exit $$rc

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

bench: install-dev
	$(BIN)/python bench/report.py

clean:
	rm -rf $(VENV) .data .pytest_cache
