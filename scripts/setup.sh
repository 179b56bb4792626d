#!/usr/bin/env bash
# Set up this machine for the demo and the tests (Debian or Ubuntu, as root): Debian's Docker
# engine, Compose (1.29; it starts the test hosts of tests/fleet/hosts.yml), debootstrap, and for
# the unit tests redis-server, acl, pass and age, the engine started, and .venv with the pinned requirements.
# Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v ssh >/dev/null || missing+=(openssh-client)
# The unit tests of the Redis users start a real Redis (tests/unit/host/test_db_host.py).
command -v redis-server >/dev/null || missing+=(redis-server)
# The unit test of moving an app to another user sets and reads ACLs (tests/unit/host/test_app_user.py).
command -v setfacl >/dev/null || missing+=(acl)
# The secrets tests read a real password store (pass, with gpg) and an age file made by Debian's age.
command -v pass >/dev/null || missing+=(pass)
command -v age >/dev/null || missing+=(age)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements-test.txt

# The Docker engine (there is no init system to start it on these machines).
.venv/bin/python -c "from tests import fleet; fleet.ensure_docker()"
