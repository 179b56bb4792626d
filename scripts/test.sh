#!/usr/bin/env bash
# Run the tests: unit tests, then end-to-end deploys onto throwaway Debian hosts.
# Arguments go to pytest, e.g. `bash scripts/test.sh -m "not e2e"` for the fast unit subset.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
