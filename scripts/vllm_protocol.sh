#!/usr/bin/env bash
# vLLM's own request model, for tests/test_openai_protocols.py: vLLM 0.34.0 (its Python code;
# no CUDA kernel is loaded by the protocol module) and the few small packages its
# chat-completion protocol module imports are installed once with `pip install --no-deps
# --target` into .venv-protocols/vllm. Nothing there is put on the test process's path: the
# test validates the adapter's request bodies in a subprocess whose PYTHONPATH starts with that
# folder (installed with its dependencies, vLLM would pull torch 2.14, torchvision and a
# transformers < 5.23 in place of the venv's), and finds the folder through
# $KOALA_VLLM_PROTOCOL, which `make test` sets.
# Measured here: 575 MB on disk (546 MB of it vLLM's compiled kernels, never loaded), 32 s to
# install and check without pip's cache; then nothing until the list below changes.
#   scripts/vllm_protocol.sh          install (and check that the module imports) if needed
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
TARGET=.venv-protocols/vllm
REQUIREMENTS="vllm==0.34.0 msgspec==0.23.0 pyzmq==27.3.0 cachetools==8.0.3"
REQUIREMENTS="$REQUIREMENTS prometheus_client==0.26.0 cbor2==6.3.0 py-cpuinfo==9.0.0"
REQUIREMENTS="$REQUIREMENTS uvloop==0.23.0 openai-harmony==0.0.8"
STAMP="$TARGET/.koala-protocol"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$REQUIREMENTS" ]; then
  echo "installing $REQUIREMENTS into $TARGET"
  rm -rf "$TARGET"
  # shellcheck disable=SC2086  # the list is split on purpose
  "$PYTHON" -m pip install -q --no-deps --target "$TARGET" $REQUIREMENTS
  # the protocol module imports with the venv's torch, transformers and pydantic (~10 s)
  PYTHONPATH="$TARGET" "$PYTHON" -c '
import vllm
from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
assert vllm.__version__ == "0.34.0", vllm.__version__
'
  printf '%s' "$REQUIREMENTS" > "$STAMP"
fi
