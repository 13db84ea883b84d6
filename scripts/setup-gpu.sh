#!/usr/bin/env bash
# Create .venv at the repository root and install riskrl for GPU machines (linux x86_64,
# CPython 3.10, 3.11 or 3.12, NVIDIA driver for CUDA 12.x/13): extras `gpu` (the pipeline plus
# verl[vllm]==0.9.1, which pins torch==2.11.0 and vllm==0.24.0) and `dev`, at the versions of
# requirements-gpu-py3XX.lock for the interpreter's version. PYTHON=python3.12 picks another one.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ] || {
  echo "setup-gpu: the GPU locks are for linux x86_64, this is $(uname -s)-$(uname -m)" >&2; exit 1; }
VER=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')
LOCK=requirements-gpu-py$VER.lock
[ -f "$LOCK" ] || {
  echo "setup-gpu: no lock for Python ${VER:0:1}.${VER:1} ($LOCK); use CPython 3.10, 3.11 or 3.12 (PYTHON=python3.12)" >&2
  exit 1; }
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r "$LOCK"
.venv/bin/python -m pip install -q --no-deps -e .
.venv/bin/python -m pip check >/dev/null || .venv/bin/python -m pip check | head -5 >&2
.venv/bin/python -c "import torch, vllm, verl, riskrl; print(f'riskrl ready: torch {torch.__version__} (CUDA {torch.version.cuda}, {torch.cuda.device_count()} GPU(s)), vllm {vllm.__version__}, verl {verl.__version__}')" 2>/dev/null | tail -1
