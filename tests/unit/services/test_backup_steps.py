"""The steps backups add to a deploy (skeleton.py's backup units, their removal, status.py's
lines), recorded without a host (tests/unit/steps.py): on the host that backs up, the backup
user, its folders, its credentials, script, service and timer, restarted only when they changed;
anywhere else, or once backups are off, all of it gone but the repository."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace

import pytest

from deploys.djangoapp.services import backups
from deploys.djangoapp.core import context, units
from deploys.djangoapp.services.backups import (
    BackupStatus,
    backup_script,
    backup_status,
    backup_units,
    last_backup,
)
from deploys.djangoapp.settings import DeployRefused
from tests.unit.sites import settings
from tests.unit.steps import Steps

BACKUP_SECRETS = {"RESTIC_PASSWORD": "restic-pass-9f8e7d", "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE77",
                  "AWS_SECRET_ACCESS_KEY": "aws-secret-5c4b3a"}
STATE = "/var/lib/django-deploy/backups/mysite"
CACHE = "/var/cache/django-deploy/restic/mysite"
SERVICE = "/etc/systemd/system/backup-mysite.service"
TIMER = "/etc/systemd/system/backup-mysite.timer"


@pytest.fixture
def steps(monkeypatch) -> Steps:
    recorded = Steps(monkeypatch)
    recorded.replace(backups, "files", "python", "absent", "system_user", "no_system_user",
                     "remove_units", "hold_lock", "let_go", "notify_when_done")
    recorded.replace(units, "systemd")
    recorded.replace(backups.audit, "record")
    recorded.replace(context, "host_files")
    return recorded


def backing_up(repository: str = "/mnt/backups/mysite", **overrides):
    return settings(backup_repository=repository, backup_secrets=BACKUP_SECRETS, **overrides)


def test_the_host_that_backs_up_gets_the_user_its_folders_files_and_timer(steps):
    site = backing_up()
    backup_units(site)
    assert steps.calls() == [
        ("system_user", ""),
        ("files.directory", f"Folder {STATE} (the backup user's)"),
        ("files.directory", f"Folder {CACHE} (the backup user's)"),
        ("files.directory", "Folder /mnt/backups/mysite (the backup user's)"),
        ("absent", f"No webhooks file of an earlier deploy in {STATE}"),
        ("host_files", "Write the backup's credentials, script and service (backup-mysite)"),
        ("host_files", f"Write {TIMER}"),
        ("systemd.daemon_reload", "Reload systemd units"),
        ("systemd.service", "Start and enable backup-mysite.timer"),
        ("systemd.service", "Restart backup-mysite.timer (new schedule)"),
    ]
    user = steps.of("system_user")[0]
    assert user.args == ("backup-mysite", STATE, "the backups") and user.kwargs == {"groups": ("django-mysite",)}
    for folder, path in zip(steps.of("files.directory"), [STATE, CACHE, "/mnt/backups/mysite"]):
        assert folder.kwargs == {"name": folder.name, "path": path, "user": "backup-mysite", "group": "backup-mysite",
                                 "mode": "700", "recursive": True}
    assert steps.of("absent")[0].kwargs["paths"] == [f"{STATE}/notify"]

    written, timer = steps.of("host_files")
    credentials, loader, script, service = written.kwargs["files"]
    assert (credentials.path, credentials.mode, credentials.user, credentials.group, credentials.secret) == \
        ("/etc/django-deploy/backups/mysite.json", "600", "root", "root", True)
    assert json.loads(credentials.content) == BACKUP_SECRETS
    assert (loader.path, loader.mode, loader.secret) == ("/srv/www/mysite/bin/with-backup-secrets", "755", False)
    assert "/etc/django-deploy/backups/mysite.json" in loader.content.decode()
    assert "8" in loader.content.decode()  # the migration lock's descriptor (MIGRATION_LOCK_FD)
    assert (script.path, script.mode, script.content) == ("/srv/www/mysite/bin/backup", "755",
                                                           backup_script(site).encode())
    assert (service.path, service.mode) == (SERVICE, "644")
    assert "ExecStart=/srv/www/mysite/bin/with-backup-secrets /srv/www/mysite/bin/backup" in service.content.decode()
    (timer_file,) = timer.kwargs["files"]
    assert (timer_file.path, timer_file.mode) == (TIMER, "644")
    assert "OnCalendar=daily" in timer_file.content.decode()

    start, restart = steps.of("systemd.service")
    assert start.kwargs == {"name": start.name, "service": "backup-mysite.timer", "running": True, "enabled": True}
    assert {key: value for key, value in restart.kwargs.items() if key != "_if"} == {
        "name": restart.name, "service": "backup-mysite.timer", "restarted": True}


@pytest.mark.parametrize("changed, reloads, restarts", [
    ((), False, False),
    (("Write the backup's credentials, script and service (backup-mysite)",), True, False),
    ((f"Write {TIMER}",), True, True),
])
def test_systemd_reloads_when_a_unit_changed_and_the_timer_restarts_when_it_did(steps, changed, reloads, restarts):
    backup_units(backing_up())
    steps.changed = set(changed)
    (reload,) = steps.of("systemd.daemon_reload")
    start, restart = steps.of("systemd.service")
    assert (reload.runs(), start.runs(), restart.runs()) == (reloads, True, restarts)


def test_a_repository_off_the_host_gets_no_folder(steps):
    backup_units(backing_up("s3:http://10.0.0.1:9000/backups/mysite"))
    assert [step.kwargs["path"] for step in steps.of("files.directory")] == [STATE, CACHE]


@pytest.mark.parametrize("elsewhere", [True, False])
def test_backups_off_or_on_another_host_remove_everything_but_the_repository(steps, elsewhere):
    if elsewhere:  # backups on, but this host does not migrate: another host backs up
        site = backing_up()
        site._fleet = replace(site.fleet, migration_host="web2")
    else:
        site = settings()
    assert not site.backs_up
    backup_units(site)
    assert steps.calls() == [("remove_units", ""), ("absent", "Remove the backup script, credentials and state of mysite"),
                             ("no_system_user", "")]
    assert steps.of("remove_units")[0].args == (["backup-mysite"],)
    assert steps.of("absent")[0].kwargs["paths"] == [
        "/srv/www/mysite/bin/backup", "/srv/www/mysite/bin/with-backup-secrets",
        "/etc/django-deploy/backups/mysite.json", STATE, CACHE]
    assert steps.of("no_system_user")[0].args == ("backup-mysite", "the backups")


def test_status_lines_say_the_last_and_next_backup_or_that_none_is_set_up(steps):
    site = backing_up()
    fake = steps.host(backups, facts={BackupStatus: ["last backup: x", "next backup: y"]})
    assert backup_status(site) == ["last backup: x", "next backup: y"]
    assert fake.asked == [(BackupStatus, {"state": STATE, "timer": "backup-mysite.timer", "last": last_backup(site)})]
    fake.facts[BackupStatus] = None
    assert backup_status(site) == ["backups: not set up yet (run skeleton.py or all.py)"]
    assert backup_status(settings()) == []


def test_the_status_fact_reads_the_state_folder_and_the_timer(tmp_path):
    state = tmp_path / "state"
    fact = BackupStatus()
    command = fact.command(str(state), "backup-nothing.timer", "echo 2026-12-01 run-1 ok")
    assert subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout == ""
    state.mkdir()
    lines = subprocess.run(["sh", "-c", command], capture_output=True, text=True).stdout.splitlines()
    assert lines[0] == "last backup: 2026-12-01 run-1 ok"
    assert lines[1].startswith("next backup: ")
    assert subprocess.run(["sh", "-c", fact.command(str(state), "t.timer", "true")], capture_output=True,
                          text=True).stdout.splitlines()[0] == "last backup: none yet"
    assert fact.process(iter(["a", "b"])) == ["a", "b"]
    assert fact.process(iter([])) is None


@pytest.mark.parametrize("deploy, action", [(backups.backup_now, "take"), (backups.restore, "restore")])
def test_without_a_repository_backup_and_restore_refuse(steps, monkeypatch, deploy, action):
    steps.host(backups)
    monkeypatch.setattr(backups, "current_settings", lambda: settings())
    with pytest.raises(DeployRefused) as refused:
        deploy._inner()
    assert str(refused.value) == (f"host web1: backup_repository: not set, so there are no backups to {action}; "
                                  "nothing was changed")
    assert steps == []
