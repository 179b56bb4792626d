#!/usr/bin/env bash
# Run the tests: unit tests and end-to-end deploys onto throwaway Debian hosts; then the line and
# branch coverage of deploys/ over the whole run (the pyinfra runs the e2e tests start included),
# with the lines no test reached.
# Arguments go to pytest, e.g. `bash scripts/test.sh -m "not e2e"` for the fast unit subset.
# Tests run in TEST_WORKERS processes (pytest-xdist; default 2): an e2e test spends most of its
# time waiting on its hosts, so two keep a 2-core machine busy. TEST_WORKERS=0: one process.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
rm -f .coverage .coverage.*
log=$(mktemp)
status=0
.venv/bin/python -m coverage run -m pytest -n "${TEST_WORKERS:-2}" --dist load "$@" 2>&1 | tee "$log" || status=${PIPESTATUS[0]}
echo
echo "Coverage of deploys/djangoapp over this run:"
.venv/bin/python -m coverage combine -q || true
.venv/bin/python -m coverage report --include='deploys/djangoapp/*' || true
# pytest's own closing line last, so that it still closes the output.
echo
tail -n 1 "$log"
rm -f "$log"
exit "$status"
