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
# Lint first: seconds, and a failure names the file and line (settings in pyproject.toml).
.venv/bin/ruff format --check --quiet akdg baselines tests benchmarks scripts
.venv/bin/ruff check --quiet akdg baselines tests benchmarks scripts
.venv/bin/snakefmt --check Snakefile workflow/rules 2>/dev/null || .venv/bin/snakefmt --check --diff Snakefile workflow/rules
.venv/bin/python -m snakemake --lint >/dev/null || { .venv/bin/python -m snakemake --lint; exit 1; }
.venv/bin/python -m pytest "$@"
