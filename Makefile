# The two commands of the README. Each builds .venv on first use (and again when pyproject.toml changes).
PYTHON ?= python3
VENV ?= .venv
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test bench accuracy search scoring clean

demo: $(STAMP)  ## train -> export -> verify -> bench -> two sample predictions, into smsguard-demo/
	$(VENV)/bin/smsguard demo

test: $(STAMP)  ## the whole test suite (CI runs this)
	$(VENV)/bin/python -m pytest

bench: $(STAMP)  ## the performance suite behind the README tables, into benchmarks/results/
	$(VENV)/bin/python benchmarks/performance.py

accuracy: $(STAMP)  ## the accuracy benchmark behind the README table (a few minutes), into benchmarks/results/
	$(VENV)/bin/python benchmarks/accuracy.py

search: $(STAMP)  ## the training-settings search behind the tuned preset (about 20 minutes), into benchmarks/results/
	$(VENV)/bin/python benchmarks/search.py

scoring: $(STAMP)  ## scoring 1,000,000 rows locally, with Spark and with Dask (several minutes), into benchmarks/results/
	$(VENV)/bin/python benchmarks/scoring.py

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[train,litert,onnx,fast,dev,score,spark,dask]'
	rm -f $(VENV)/.installed-*
	touch $@

clean:
	rm -rf $(VENV) smsguard-demo .pytest_cache
