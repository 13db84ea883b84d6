#!/usr/bin/env bash
# Create .venv at the repository root and install riskrl for the CPU study and the tests.
#   torch first and pinned: verl's tensordict/torchdata leave torch unbounded and would
#   otherwise pull a multi-GB CUDA build; then riskrl with its `pipeline` (study) and `dev`
#   (tests) extras, at the versions of requirements.lock (universal: CPython 3.10-3.12).
#   GPU machines use scripts/setup-gpu.sh instead (extra `gpu`, requirements-gpu-py3XX.lock).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH=2.13.0   # keep in step with CPU_TORCH in scripts/compile-lock.sh
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} "torch==$TORCH"
.venv/bin/python -m pip install -q -c requirements.lock -e ".[pipeline,dev]"
.venv/bin/python -c "import torch, verl, riskrl; print(f'riskrl ready: torch {torch.__version__}, verl {verl.__version__}')" 2>/dev/null | tail -1
