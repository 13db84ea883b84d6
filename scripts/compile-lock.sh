#!/usr/bin/env bash
# Regenerate requirements.lock from pyproject.toml (CPU, Python 3.11). torch is installed
# separately and pinned (scripts/setup.sh), so it is resolved here as the CPU build but not
# emitted: the lock then works with any torch 2.13.0 build.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "torch==2.13.0+cpu" > /tmp/riskrl-torch-override.txt
uv pip compile pyproject.toml --extra dev --python-version 3.11 \
  --index-url https://pypi.org/simple --extra-index-url https://download.pytorch.org/whl/cpu \
  --index-strategy unsafe-best-match --override /tmp/riskrl-torch-override.txt --no-emit-package torch \
  --custom-compile-command "scripts/compile-lock.sh" -o requirements.lock "$@"
