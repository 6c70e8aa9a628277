#!/usr/bin/env bash
# Create .venv (idempotent) with akdg, its pinned torch and everything the DAG and tests call.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# torch first and pinned: the version the suite's figures were produced with.
.venv/bin/python -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
.venv/bin/python -m pip install --quiet --editable '.[dev]'
echo "akdg is installed in $(pwd)/.venv (activate it with: source .venv/bin/activate)"
