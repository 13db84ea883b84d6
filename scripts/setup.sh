#!/usr/bin/env bash
# Create .venv at the repository root and install riskrl (CPU) into it.
#   torch first and pinned: verl's tensordict/torchdata leave torch unbounded and would
#   otherwise pull a multi-GB CUDA build; then everything else from requirements.lock.
#   On a GPU machine add the extra afterwards: .venv/bin/pip install -e '.[gpu]'
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} "torch==2.13.0"
.venv/bin/python -m pip install -q -c requirements.lock -e ".[dev]"
.venv/bin/python -c "import torch, verl, riskrl; print(f'riskrl ready: torch {torch.__version__}, verl {verl.__version__}')" 2>/dev/null | tail -1
