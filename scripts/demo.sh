#!/usr/bin/env bash
# Deploy the example app to a throwaway local Debian host and print its URL (`down` removes it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m tests.fleet "${1:-demo}"
