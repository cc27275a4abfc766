# The two commands of the README (demo, test), and the rest. Each builds .venv on first use (and again when pyproject.toml changes).
PYTHON ?= python3
VENV ?= .venv
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test check lint docs serve-docs wheels bench accuracy ood search scoring web mediapipe serve-web clients clients-js clients-java clean

demo: $(STAMP)  ## train -> export -> verify -> bench -> two sample predictions, into smsguard-demo/
	$(VENV)/bin/smsguard demo

test: lint $(STAMP) web/node_modules  ## lint, types, then the whole test suite (CI runs this)
	$(VENV)/bin/python -m pytest

check: lint  ## the fast tier: lint, types, layers, then every test that neither trains, exports, starts an engine nor imports TensorFlow (under 2 minutes)
	$(VENV)/bin/python -m pytest -m "not slow" -q

lint: $(STAMP)  ## ruff (rules and reasons in pyproject.toml), mypy on the package, the layers (import-linter contracts in pyproject.toml), and the docs site with --strict
	$(VENV)/bin/ruff check smsguard tests benchmarks tools docs/hooks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict  # not --quiet: it hides the warnings that --strict counts

docs: $(STAMP)  ## the documentation site into site/ (offline: open site/index.html)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

serve-docs: $(STAMP)  ## the documentation site on http://127.0.0.1:8000/, rebuilt on every change
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve --dev-addr 127.0.0.1:8000

wheels: $(STAMP)  ## the sdist and the wheel built from it, into dist/ (then checked in clean venvs: devices/wheel_lane.sh)
	SMSGUARD_NATIVE=required $(VENV)/bin/python -m build --outdir dist

bench: $(STAMP)  ## the performance suite behind the README tables, into benchmarks/results/
	$(VENV)/bin/python benchmarks/performance.py

accuracy: $(STAMP)  ## the accuracy benchmark behind the README table (a few minutes), into benchmarks/results/
	$(VENV)/bin/python benchmarks/accuracy.py

ood: $(STAMP)  ## the out-of-domain benchmark on benchmarks/ood/messages.csv (a few minutes a seed), into benchmarks/results/
	$(VENV)/bin/python benchmarks/out_of_domain.py

search: $(STAMP)  ## the training-settings search behind the tuned preset (about 20 minutes), into benchmarks/results/
	$(VENV)/bin/python benchmarks/search.py

web: web/node_modules  ## the web demo's npm packages (@mediapipe/tasks-text, and puppeteer-core for its test), from the npm registry

web/node_modules: web/package.json web/package-lock.json
	cd web && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
	touch $@

mediapipe: $(STAMP)  ## train --preset mediapipe -> export (with the MediaPipe client models) -> verify, into runs/ and bundles/mediapipe
	$(VENV)/bin/smsguard train --preset mediapipe --out runs/mediapipe --force
	$(VENV)/bin/smsguard export runs/mediapipe --out bundles/mediapipe --force
	$(VENV)/bin/smsguard verify bundles/mediapipe

serve-web: $(STAMP) web/node_modules  ## the web demo of bundles/mediapipe (or BUNDLE=DIR) on http://127.0.0.1:8000/
	$(VENV)/bin/smsguard serve-web $(or $(BUNDLE),bundles/mediapipe)

scoring: $(STAMP)  ## scoring 1,000,000 rows locally, with Spark and with Dask (several minutes), into benchmarks/results/
	$(VENV)/bin/python benchmarks/scoring.py

clients: clients-js clients-java  ## the bundle runtimes for other platforms (clients/), built with their own toolchains

clients-js:  ## the JavaScript runtime (clients/js/smsguard.mjs and its command line): nothing to build; checks Node >= 18, the syntax and the 50 KB budget
	@node -e 'const v = process.versions.node; if (Number(v.split(".")[0]) < 18) { console.error(`Node $${v}: smsguard.mjs needs Node >= 18`); process.exit(1); }'
	node --check clients/js/smsguard.mjs
	node --check clients/js/bin/smsguard-client.mjs
	node --check clients/js/personal.mjs
	@size=$$(wc -c < clients/js/smsguard.mjs); test $$size -le 51200 || { echo "clients/js/smsguard.mjs is $$size bytes, over its 50 KB budget" >&2; exit 1; }

JAVA_SOURCES := $(sort $(wildcard clients/java/src/dev/smsguard/*.java))
JAR := clients/java/build/smsguard-client.jar

clients-java: $(JAR)  ## the Java library and its command line, with the JDK alone (javac --release 8: Android's language level)

$(JAR): $(JAVA_SOURCES)
	rm -rf clients/java/build/classes
	javac --release 8 -encoding UTF-8 -Xlint:all,-options -Werror -d clients/java/build/classes $(JAVA_SOURCES)
	jar cfe $@ dev.smsguard.Main -C clients/java/build/classes .

$(STAMP): pyproject.toml setup.py smsguard/runtime/_lstm_c.c smsguard/runtime/_lstm_c_kernel.h smsguard/runtime/_lstm_c_text.h  # the C kernel is built by pip install
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[train,litert,onnx,fast,sign,mediapipe,score,spark,dask,dev,docs]'
	rm -f $(VENV)/.installed-*
	touch $@

clean:
	rm -rf $(VENV) smsguard-demo .pytest_cache web/node_modules site dist clients/java/build
