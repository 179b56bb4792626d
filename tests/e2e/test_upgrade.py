"""Taking the next version of the kit (README, "Taking a new version"): a host the previous version
deployed converges on the next version's all.py, serving all the while and keeping its rows, and a
second run changes nothing; releases and rollbacks go on from there. The next version logs in as
the shipped inventories do: as the deploy user, through sudo."""

from __future__ import annotations

import pytest

from tests import fleet
from tests.conftest import PREVIOUS_VERSION, https_get, kit_at, run_pyinfra
from tests.e2e.conftest import DEPLOY_USER, deploy_user_data, manage, under_load
from tests.e2e.sources import example_source

pytestmark = pytest.mark.e2e

# A project with more of the kit at work than the example's defaults: PostgreSQL (its role,
# pg_hba.conf block and listen address), Redis and a Celery worker with beat.
PROJECT = {"database": "postgresql", "celery": True, "celery_beat": True, "django_environment_variables": {
    "DJANGO_SECRET_KEY": "upgrade-test-key-5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f",
    "DJANGO_DB_PASSWORD": "upgrade-test-password", "REDIS_PASSWORD": "upgrade-test-redis-password"}}


@pytest.mark.long(minutes=4)
def test_a_host_of_the_previous_version_converges_on_the_next(start_hosts, fleet_key, tmp_path):
    (host,), as_root = start_hosts("web1", data=PROJECT)
    deploy_user = deploy_user_data(fleet_key)
    previous = run_pyinfra(as_root, "deploys/all.py", data=deploy_user,
                           kit=kit_at(PREVIOUS_VERSION, tmp_path / "previous"))
    assert previous.returncode == 0, previous.output
    host.data = {**host.data, "ssh_user": DEPLOY_USER, "_sudo": True}
    fleet_file = fleet.write_fleet_file(tmp_path / "deployer.json", fleet_key, [host])
    manage(host, "add_note", "'written under the previous version'")

    with under_load(host) as answers:
        upgraded = run_pyinfra(fleet_file, "deploys/all.py", data=deploy_user)
    assert upgraded.returncode == 0, upgraded.output
    assert answers and set(answers) == {200}, answers
    again = run_pyinfra(fleet_file, "deploys/all.py", data=deploy_user)
    assert again.returncode == 0 and again.changed() == [], again.output
    assert "written under the previous version" in https_get(host, "/").text

    # Releases and a rollback from there, under load.
    v2 = {"django_source_dir": example_source(tmp_path / "v2", "v2"), "release_id": "v2"}
    with under_load(host) as answers:
        released = run_pyinfra(fleet_file, "deploys/release.py", data=v2)
        assert released.returncode == 0, released.output
        assert https_get(host, "/").headers["X-Release-Id"] == "v2"
        rolled_back = run_pyinfra(fleet_file, "deploys/rollback.py")
        assert rolled_back.returncode == 0, rolled_back.output
    assert answers and set(answers) == {200}, answers
    page = https_get(host, "/")
    assert page.headers["X-Release-Id"] != "v2" and "written under the previous version" in page.text
    assert host.exec("systemctl is-active celery-guestbook celery-beat-guestbook redis-server postgresql"
                     ).stdout.split() == ["active"] * 4
