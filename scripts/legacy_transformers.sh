#!/usr/bin/env bash
# The transformers: adapter on the lowest transformers that setup.cfg accepts (the hf extra:
# transformers>=4.56), beside the project's own torch: transformers 4.56 with the tokenizers
# and huggingface-hub it needs are installed once with `pip install --target` into a cache
# folder (.venv-legacy-transformers) that goes first on PYTHONPATH; everything else (torch,
# numpy, safetensors, the project) comes from .venv. Then tests/legacy_transformers_check.py
# runs a tiny Qwen2-Audio through the adapter under it (no datasets: the newer
# huggingface-hub it needs would be shadowed).
#   scripts/legacy_transformers.sh            install if needed, then run the tests
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
TARGET=.venv-legacy-transformers
REQUIREMENTS="transformers==4.56.2 tokenizers==0.22.1 huggingface-hub==0.36.0"
STAMP="$TARGET/.koala-legacy"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$REQUIREMENTS" ]; then
  echo "installing $REQUIREMENTS into $TARGET"
  rm -rf "$TARGET"
  # shellcheck disable=SC2086  # the list is split on purpose
  "$PYTHON" -m pip install -q --no-deps --target "$TARGET" $REQUIREMENTS
  printf '%s' "$REQUIREMENTS" > "$STAMP"
fi
version="$(PYTHONPATH="$TARGET" "$PYTHON" -c 'import transformers; print(transformers.__version__)')"
if [ "$version" != "4.56.2" ]; then
  echo "error: transformers $version imported, not 4.56.2 from $TARGET" >&2
  exit 1
fi
HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONPATH="$TARGET:$PWD" \
  "$PYTHON" tests/legacy_transformers_check.py "$@"
