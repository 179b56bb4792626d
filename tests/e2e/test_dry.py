"""--dry previews: every deploy file, given changes to make, shows them (template diffs included
with --diff) and leaves the host exactly as it was."""

from __future__ import annotations

import re

import pytest

from tests.conftest import https_get, run_pyinfra
from tests.e2e.conftest import live_release
from tests.e2e.sources import example_source

pytestmark = pytest.mark.e2e

ROOT = "/srv/www/guestbook"

# What a deploy could change: files (path, size, mode, owner, mtime, link target) where the deploys
# write, the installed packages, the running services and their main processes, the database.
STATE = (
    "find /srv /etc/nginx /etc/apache2 /etc/uwsgi /etc/systemd/system /etc/django-deploy /etc/sudoers.d "
    "/var/backups /opt -xdev -printf '%p %s %m %U %G %T@ %l\\n' 2>/dev/null | sort; "
    "dpkg-query -W | sha256sum; "
    "systemctl show -p MainPID -p ActiveState nginx uwsgi-guestbook; "
    f"sha256sum {ROOT}/shared/db/guestbook.sqlite3"
)


def host_state(host) -> str:
    return host.exec(STATE).stdout


def test_every_deploy_file_dry_run_changes_nothing(live_host, tmp_path):
    host, fleet_file = live_host
    v1 = live_release(host)
    v2 = example_source(tmp_path / "v2", "v2", mood_migration=True)
    released = run_pyinfra(fleet_file, "deploys/release.py", data={"release_id": "v2", "django_source_dir": v2})
    assert released.returncode == 0, released.output
    before = host_state(host)

    v3 = example_source(tmp_path / "v3", "v3")
    previews = {
        "deploys/host_prep.py": {"application_additional_packages": '["tree"]'},
        "deploys/skeleton.py": {"uwsgi_number_workers": 3},
        "deploys/release.py": {"release_id": "v3", "django_source_dir": v3},
        "deploys/all.py": {"uwsgi_number_workers": 3, "release_id": "v3", "django_source_dir": v3},
        "deploys/rollback.py": {},
        "deploys/restart.py": {},
        "deploys/remove.py": {"confirm_remove": "guestbook"},
        "deploys/status.py": {},
        "deploys/manage.py": {"manage": "add_note 'from a dry run'"},
        "deploys/logs.py": {},
        "deploys/maintenance.py": {"maintenance": "on"},
    }
    outputs = {}
    for deploy_file, data in previews.items():
        preview = run_pyinfra(fleet_file, deploy_file, data=data, extra=("--dry", "--diff"))
        assert preview.returncode == 0, preview.output
        outputs[deploy_file] = preview.output

    # Each preview says what it would do...
    assert re.search(r"Install system packages +1 \(web1\)", outputs["deploys/host_prep.py"])
    assert re.search(r"- workers = 2\n\s+\+ workers = 3", outputs["deploys/skeleton.py"])  # the uWSGI ini's diff
    assert "release v3 (" in outputs["deploys/release.py"] and "is to replace v2" in outputs["deploys/release.py"]
    assert f"Migrate the database back to release {v1}" in outputs["deploys/rollback.py"]
    assert f"Remove {ROOT}" in outputs["deploys/remove.py"]
    assert "manage.py add_note 'from a dry run'" in outputs["deploys/manage.py"]
    assert re.search(r"Maintenance on +1 \(web1\)", outputs["deploys/maintenance.py"])
    # ...and did none of it.
    assert host_state(host) == before
    assert live_release(host) == "v2"
    assert https_get(host, "/health/").headers["X-Release-Id"] == "v2"
