"""Maintenance mode on a live host: deploys/maintenance.py on and off, the addresses and paths
still served, and a release that puts the page up only while it migrates; the notifications of
that release and of a failed one; the audit log of it all."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import https_get, run_pyinfra
from tests.e2e.conftest import assert_in_maintenance, history, live_release, under_load
from tests.e2e.sources import RUNS_PYTHON, example_source
from tests.receiver import Receiver

pytestmark = pytest.mark.e2e

def maintenance(fleet_file, state: str, **data):
    run = run_pyinfra(fleet_file, "deploys/maintenance.py", data={"maintenance": state, **data})
    assert run.returncode == 0, run.output
    return run


def audit_entries(host) -> list[dict]:
    return [json.loads(line) for line in host.exec("cat /srv/www/guestbook/audit.jsonl").stdout.splitlines()]


def test_maintenance_mode_on_off_allowed_and_while_a_release_migrates(live_host, tmp_path):
    host, fleet_file = live_host

    # --dry: nothing changes.
    dry = run_pyinfra(fleet_file, "deploys/maintenance.py", data={"maintenance": "on"}, extra=("--dry",))
    assert dry.returncode == 0, dry.output
    assert https_get(host, "/").status_code == 200

    maintenance(fleet_file, "on")
    assert_in_maintenance(host)
    entries_before = audit_entries(host)
    assert maintenance(fleet_file, "on").changed() == []  # already on: nothing to do...
    assert audit_entries(host) == entries_before  # ... and no audit entry says it did

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
    # Its notification reaches the webhook; one that cannot be reached fails nothing.
    source = example_source(tmp_path / "v2", "v2", mood_migration=True, slow_migration=True)
    webhook = Receiver()
    notify = json.dumps([f"{webhook.url}/hooks/T0KEN-path", "http://127.0.0.1:1/hooks/GONE"])
    try:
        with under_load(host) as answers:
            released = run_pyinfra(fleet_file, "deploys/release.py",
                                   data={"django_source_dir": str(source), "release_id": "v2",
                                         "maintenance": "during_migrations", "deploy_notify_url": notify,
                                         "allow_unsafe_migrations": RUNS_PYTHON})
        failed = run_pyinfra(fleet_file, "deploys/release.py", data={
            "django_source_dir": str(example_source(tmp_path / "bad", "bad", failing_migration=True)),
            "release_id": "bad", "deploy_notify_url": notify, "allow_unsafe_migrations": RUNS_PYTHON})
    finally:
        webhook.close()
    assert released.returncode == 0, released.output
    assert failed.returncode != 0, failed.output
    assert "notification not delivered: webhook at 127.0.0.1 unreachable" in released.output
    assert "T0KEN" not in released.output + failed.output and "GONE" not in released.output
    (path, _, sent), (_, _, failure) = webhook.received
    assert path == "/hooks/T0KEN-path"
    assert {key: sent[key] for key in ("project", "action", "outcome", "release", "previous", "hosts")} == {
        "project": "guestbook", "action": "release", "outcome": "released", "release": "v2",
        "previous": history(host)[0]["id"], "hosts": ["web1"]}
    assert sent["revision"] and sent["duration_seconds"] > 0 and "released v2" in sent["text"]
    assert (failure["outcome"], failure["release"], failure["previous"]) == ("failed", "bad", "v2")
    secret = host.exec("/srv/www/guestbook/bin/with-secrets printenv DJANGO_SECRET_KEY").stdout.strip()
    assert secret not in json.dumps(webhook.received)
    assert set(answers) <= {200, 503}, [answer for answer in answers if answer not in (200, 503)][:5]
    window = [index for index, answer in enumerate(answers) if answer == 503]
    assert window, "the maintenance page never showed while migrating"
    assert answers[window[0]:window[-1] + 1] == [503] * len(window)  # one window...
    assert answers[window[-1] + 1:] and answers[-1] == 200  # ... closed before the release ended
    assert host.exec("ls /srv/www/guestbook/maintenance").stdout.split() == ["page.html"]
    assert live_release(host) == "v2"

    # Every run that changed something is in the audit log, and status.py shows it.
    entries = audit_entries(host)
    assert [(entry["deploy"], entry["detail"].split()[0], entry["outcome"]) for entry in entries[-6:]] == [
        ("maintenance", "on", "ok"), ("skeleton", "configuration", "ok"), ("skeleton", "configuration", "ok"),
        ("maintenance", "off", "ok"), ("release", "v2", "ok"), ("release", "bad", "failed")]
    assert host.exec("stat -c %a /srv/www/guestbook/audit.jsonl").stdout.strip() == "600"
    status = run_pyinfra(fleet_file, "deploys/status.py")
    assert re.search(r"\[web1\]\s+\S+Z \S+ release bad failed$", status.output, re.MULTILINE), status.output

    # migration_safety = "maintenance": a release the migration gate finds unsafe (it drops the
    # column v2 reads) goes live behind the page, up on the web host from before it migrates until
    # v3 serves: no request meets v2 on the schema without the column.
    dropping = example_source(tmp_path / "v3", "v3", mood_dropped=True)
    with under_load(host) as answers:
        behind = run_pyinfra(fleet_file, "deploys/release.py", data={
            "django_source_dir": str(dropping), "release_id": "v3", "migration_safety": "maintenance"})
    assert behind.returncode == 0, behind.output
    assert "migration_safety=maintenance: the maintenance page is up on every web host while they run" \
        in behind.output
    # The page went up before the migration and came down once v3 served (steps a safe release skips).
    assert {"Release | Maintenance page up while migrating",
            "Release | Maintenance page down: the new release serves"} <= set(behind.changed()), behind.changed()
    assert "Release | Maintenance page down: migrations done" not in behind.changed()
    assert set(answers) <= {200, 503}, [answer for answer in answers if answer not in (200, 503)][:5]
    assert answers and answers[-1] == 200 and live_release(host) == "v3"
    assert host.exec("ls /srv/www/guestbook/maintenance").stdout.split() == ["page.html"]
