#!/usr/bin/env bash
# Set up, then run the whole test suite (CPU only; about 14 minutes on 2 cores, 4.5 of them the SLURM test).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# tests/test_slurm.py starts a real single-node SLURM cluster (Debian's slurm-wlm and munge), and the
# torch.compile test needs a C++ compiler: installed here when this is a Debian machine and we are root
# (CI). Elsewhere those tests skip and say why.
missing=()
command -v slurmctld >/dev/null || missing+=(slurm-wlm munge)
command -v c++ >/dev/null || missing+=(g++)
if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get install -y -q "${missing[@]}" >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; }
fi
.venv/bin/python -m pytest "$@"
