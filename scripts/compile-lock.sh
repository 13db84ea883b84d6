#!/usr/bin/env bash
# Regenerate every lock from pyproject.toml with uv (pip install uv; it is in the dev extra):
#   requirements.lock               CPU study + tests (extras pipeline, dev), one universal lock for
#                                   CPython 3.10-3.12 (python markers). torch is resolved at the
#                                   version scripts/setup.sh installs first (2.13.0) but not emitted,
#                                   nor the CUDA wheels only PyPI's torch build pulls in: the lock
#                                   then works with any torch 2.13.0 build (CPU wheel in setup.sh).
#   requirements-gpu-py3XX.lock     GPU machines (extras gpu, dev) for linux x86_64
#                                   (manylinux_2_28), one per CPython 3.10 / 3.11 / 3.12, torch
#                                   included (verl[vllm] pins torch==2.11.0); scripts/setup-gpu.sh.
# `scripts/compile-lock.sh --check` (CI) resolves every lock again from pyproject.toml, keeping the
# committed pins as preferences, into a temporary copy and fails if any resolve fails or any pin
# would change; it installs nothing. Other arguments are passed to every `uv pip compile`.
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-uv}
CHECK=0
if [ "${1:-}" = "--check" ]; then CHECK=1; shift; fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

CPU_TORCH=2.13.0   # keep in step with scripts/setup.sh
echo "torch==$CPU_TORCH" > "$TMP/cpu-torch-override.txt"
NO_EMIT=()
for p in torch triton cuda-bindings cuda-pathfinder cuda-toolkit nvidia-cublas nvidia-cuda-cupti \
  nvidia-cuda-nvrtc nvidia-cuda-runtime nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand \
  nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13 nvidia-nccl-cu13 nvidia-nvjitlink \
  nvidia-nvshmem-cu13 nvidia-nvtx; do
  NO_EMIT+=(--no-emit-package "$p")
done

compile() {  # compile <lock> <uv pip compile args...>
  local lock=$1 out=$1
  shift
  if [ "$CHECK" = 1 ]; then
    out="$TMP/$(basename "$lock")"
    [ -f "$lock" ] || { echo "compile-lock --check: $lock is missing; run scripts/compile-lock.sh" >&2; return 1; }
    cp "$lock" "$out"
  fi
  if ! "$UV" pip compile pyproject.toml -q --custom-compile-command "scripts/compile-lock.sh" -o "$out" "$@" \
    >"$TMP/$(basename "$lock").log" 2>&1; then
    echo "compile-lock: $lock does not resolve from pyproject.toml:" >&2
    sed 's/^/    /' "$TMP/$(basename "$lock").log" >&2
    return 1
  fi
  if [ "$CHECK" = 1 ] && ! diff -q "$lock" "$out" >/dev/null; then
    echo "compile-lock --check: $lock is out of date with pyproject.toml (run scripts/compile-lock.sh):" >&2
    diff "$lock" "$out" | grep '^[<>] [A-Za-z]' | head -20 | sed 's/^/    /' >&2
    return 1
  fi
  echo "ok: $lock"
}

pids=()
compile requirements.lock --extra pipeline --extra dev --universal --python-version 3.10 \
  --override "$TMP/cpu-torch-override.txt" "${NO_EMIT[@]}" "$@" &
pids+=($!)
for v in 3.10 3.11 3.12; do
  compile "requirements-gpu-py${v/./}.lock" --extra gpu --extra dev --python-version "$v" \
    --python-platform x86_64-manylinux_2_28 "$@" &
  pids+=($!)
done
rc=0
for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
exit $rc
