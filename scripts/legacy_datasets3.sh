#!/usr/bin/env bash
# The legacy path: load_dataset("koala_bench.py", name, data_dir=..., trust_remote_code=True)
# on datasets 3.6, in a second, light virtual environment (.venv-legacy: datasets 3.6,
# soundfile decoding, no torch). Creates the environment once; re-runs only check.
#   scripts/legacy_datasets3.sh            create if needed, then run tests/legacy_check.py
# The repository is put on the environment's path with a .pth file (no install step, so the
# work tree is not written to).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV=.venv-legacy
REQUIREMENTS="datasets==3.6.* soundfile>=0.12 soxr>=0.3 pyyaml>=6.0 numpy>=1.24 rapidfuzz>=3.0"
STAMP="$VENV/.koala-legacy"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$REQUIREMENTS" ]; then
  echo "creating $VENV ($REQUIREMENTS)"
  test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
  # shellcheck disable=SC2086  # the list is split on purpose
  "$VENV/bin/python" -m pip install -q $REQUIREMENTS
  site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  printf '%s\n' "$PWD" > "$site/koala_bench_repo.pth"
  if "$VENV/bin/python" -c 'import torch' 2>/dev/null; then
    echo "error: torch is importable in $VENV; the legacy check must run without it" >&2
    exit 1
  fi
  printf '%s' "$REQUIREMENTS" > "$STAMP"
fi
HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1 HF_MODULES_CACHE="$PWD/$VENV/hf_modules" "$VENV/bin/python" tests/legacy_check.py "$@"
