"""Maintenance mode on a live host: deploys/maintenance.py on and off, the addresses and paths
still served, and a release that puts the page up only while it migrates."""

from __future__ import annotations

import pytest

from tests.conftest import https_get, run_pyinfra
from tests.e2e.conftest import assert_in_maintenance, live_release, under_load
from tests.e2e.sources import example_source

pytestmark = pytest.mark.e2e

def maintenance(fleet_file, state: str, **data):
    run = run_pyinfra(fleet_file, "deploys/maintenance.py", data={"maintenance": state, **data})
    assert run.returncode == 0, run.output
    return run


def test_maintenance_mode_on_off_allowed_and_while_a_release_migrates(live_host, tmp_path):
    host, fleet_file = live_host

    # --dry: nothing changes.
    dry = run_pyinfra(fleet_file, "deploys/maintenance.py", data={"maintenance": "on"}, extra=("--dry",))
    assert dry.returncode == 0, dry.output
    assert https_get(host, "/").status_code == 200

    maintenance(fleet_file, "on")
    assert_in_maintenance(host)
    assert maintenance(fleet_file, "on").changed() == []  # already on: nothing to do

    # An allowed address gets the site (the test client reaches the host through the Docker gateway).
    client = host.exec("awk '$1 != \"127.0.0.1\" { address = $1 } END { print address }' "
                       "/var/log/nginx/access.log").stdout.strip()
    assert client
    allowed = run_pyinfra(fleet_file, "deploys/skeleton.py", data={"maintenance_allow": client})
    assert allowed.returncode == 0, allowed.output
    assert https_get(host, "/").status_code == 200
    restored = run_pyinfra(fleet_file, "deploys/skeleton.py")
    assert restored.returncode == 0, restored.output
    assert https_get(host, "/").status_code == 503

    maintenance(fleet_file, "off")
    assert https_get(host, "/").status_code == 200
    refused = run_pyinfra(fleet_file, "deploys/maintenance.py")
    assert refused.returncode != 0 and "maintenance: give on or off" in refused.output

    # A release with migrations (six seconds of them): the page is up while they run, and only then.
    source = example_source(tmp_path / "v2", "v2", mood_migration=True, slow_migration=True)
    with under_load(host) as answers:
        released = run_pyinfra(fleet_file, "deploys/release.py",
                               data={"django_source_dir": str(source), "release_id": "v2",
                                     "maintenance": "during_migrations"})
    assert released.returncode == 0, released.output
    assert live_release(host) == "v2"
    assert set(answers) <= {200, 503}, [answer for answer in answers if answer not in (200, 503)][:5]
    window = [index for index, answer in enumerate(answers) if answer == 503]
    assert window, "the maintenance page never showed while migrating"
    assert answers[window[0]:window[-1] + 1] == [503] * len(window)  # one window...
    assert answers[window[-1] + 1:] and answers[-1] == 200  # ... closed before the release ended
    assert host.exec("ls /srv/www/guestbook/maintenance").stdout.split() == ["page.html"]
