#!/usr/bin/env bash
# Run the benchmarks on the local test fleet; prints the table and writes bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m bench "$@"
