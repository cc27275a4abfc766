# The two commands of the README. Each builds .venv on first use (and again when pyproject.toml changes).
PYTHON ?= python3
VENV ?= .venv
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test bench accuracy search clean

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

$(STAMP): pyproject.toml setup.py smsguard/runtime/_lstm_c.c smsguard/runtime/_lstm_c_kernel.h  # the C kernel is built by pip install
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[train,litert,onnx,fast,dev]'
	rm -f $(VENV)/.installed-*
	touch $@

clean:
	rm -rf $(VENV) smsguard-demo .pytest_cache
