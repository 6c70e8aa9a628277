#!/usr/bin/env bash
# Set up, then run the whole DAG on the embedded default (scikit-learn digits, no download).
# --forceall: the committed tables are outputs too, so without it a fresh clone has nothing to do.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/snakemake --cores "${CORES:-2}" --forceall all_tables "$@"
echo "tables: results/tables/   plots: results/plots/   per-run JSON: results/runs/"
