"""Backups off the host, against a real S3-compatible server (moto_server, started by the test on
the test network's gateway) with Debian's restic on the host: backups by the timer and by
deploys/backup.py, retention, encryption, then the host is lost and a bare one rebuilt from them
with deploys/all.py and deploys/restore.py (sqlite, the default); then PostgreSQL backed up to a
local repository and restored, on a bare host of its own."""

from __future__ import annotations

import json
import shlex
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import boto3
import pytest
import requests

from tests import fleet
from tests.conftest import https_get, run_pyinfra
from tests.e2e.conftest import APP_USER, ROOT, manage, world_readable_files_containing
from tests.e2e.sources import example_source
from tests.receiver import Receiver

pytestmark = pytest.mark.e2e

APP_SECRETS = {"DJANGO_SECRET_KEY": "local-fleet-only-4d1f0b7e2a9c46c8b7a1e6f3d5c2b8a0e9f7d6c5b4a3"}
BACKUP_SECRETS = {
    "RESTIC_PASSWORD": f"restic-{uuid.uuid4().hex}",
    "AWS_ACCESS_KEY_ID": f"AKIA{uuid.uuid4().hex[:16].upper()}",
    "AWS_SECRET_ACCESS_KEY": f"aws-{uuid.uuid4().hex}",
}
SECRETS = {**APP_SECRETS, **BACKUP_SECRETS}
CREDENTIALS = "/etc/django-deploy/backups/guestbook.json"
STATE = "/var/lib/django-deploy/backups/guestbook"
CACHE = "/var/cache/django-deploy/restic/guestbook"
BACKUP_USER = "backup-guestbook"


@contextmanager
def s3_server(address: str, bucket: str):
    """moto_server listening on `address` (the hosts reach it there), with an empty bucket; it
    stops at the end of the block, and by itself after 30 minutes whatever happens."""
    with socket.socket() as probe:
        probe.bind((address, 0))
        port = probe.getsockname()[1]
    moto = str(Path(sys.executable).with_name("moto_server"))
    server = subprocess.Popen(["timeout", "1800", moto, "-H", address, "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        endpoint = f"http://{address}:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(endpoint, timeout=1)
                break
            except requests.RequestException:
                assert time.monotonic() < deadline and server.poll() is None, "moto_server did not start"
                time.sleep(0.2)
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id=SECRETS["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=SECRETS["AWS_SECRET_ACCESS_KEY"])
        s3.create_bucket(Bucket=bucket)
        yield endpoint, s3
    finally:
        server.terminate()
        server.wait(timeout=10)


def restic(host, command: str, password: str | None = None) -> subprocess.CompletedProcess:
    """restic on the host as root, with the backup's credentials (or another password)."""
    prefix = f"{ROOT}/bin/with-backup-secrets --as-root env" + (
        f" RESTIC_PASSWORD={shlex.quote(password)}" if password else "")
    repository = host.exec(f"grep -o 's3:[^ ]*' {ROOT}/bin/backup").stdout.strip()
    return host.exec(f"{prefix} RESTIC_REPOSITORY={repository} restic --no-cache {command}", check=False)


def last_backup(host) -> list[str]:
    return host.exec(f"cat {STATE}/last-backup 2>/dev/null", check=False).stdout.split()


def wait_for_backup(host, after: list[str], timeout: float = 120) -> list[str]:
    """The next backup's record (time, run, result) once one other than `after` finished."""
    deadline = time.monotonic() + timeout
    while (found := last_backup(host)) in ([], after):
        assert time.monotonic() < deadline, host.exec("journalctl -u backup-guestbook -n 30 --no-pager",
                                                      check=False).stdout
        time.sleep(1)
    return found


@pytest.mark.long(minutes=6)
def test_backups_go_off_the_host_and_rebuild_a_lost_one(start_hosts, live_image, tmp_path):
    started = time.monotonic()
    (old,), fleet_file = start_hosts("web1", image=live_image)
    with s3_server(fleet.network_gateway(old), "backups") as (endpoint, s3):
        data = {"backup_repository": f"s3:{endpoint}/backups/guestbook", "backup_keep": json.dumps({"daily": 1}),
                "django_environment_variables": json.dumps(APP_SECRETS), "backup_secrets": json.dumps(BACKUP_SECRETS)}
        outputs = []

        # Rows and an upload on the live site.
        row = f"kept off the host {uuid.uuid4().hex[:8]}"
        manage(old, "add_note", shlex.quote(row))
        old.exec(f"install -d -o {APP_USER} -g {APP_USER} {ROOT}/shared/media/notes && "
                 f"echo 'an upload' > {ROOT}/shared/media/notes/proof.txt && chown {APP_USER} {ROOT}/shared/media/notes/proof.txt")

        # Backups on: restic installed, the timer (every 20 seconds here) backs up.
        on = run_pyinfra(fleet_file, "deploys/all.py", data={**data, "backup_schedule": "*:*:0/20"})
        outputs.append(on.output)
        assert on.returncode == 0, on.output
        by_timer = wait_for_backup(old, [])
        assert by_timer[2] == "ok", by_timer
        # The backup's credentials are its own: neither the app's secret file nor its processes hold
        # them, and the app's user reads neither the credentials file nor the backup's state.
        assert old.exec(f"stat -c '%U %a' {CREDENTIALS}").stdout.strip() == "root 600"
        app_environment = old.exec("cat /proc/$(pgrep -u django-guestbook -f uwsgi | head -1)/environ | tr '\\0' '\\n'"
                                   f"; cat {ROOT}/secrets.py").stdout
        assert "SECRET_KEY" in app_environment
        for secret in BACKUP_SECRETS.values():
            assert secret not in app_environment
        for path in (CREDENTIALS, f"{STATE}/last-backup"):
            assert old.exec(f"runuser -u {APP_USER} -- cat {path}", check=False).returncode != 0, path
        again = run_pyinfra(fleet_file, "deploys/skeleton.py", data={**data, "backup_schedule": "*:*:0/20"})
        outputs.append(again.output)
        assert again.returncode == 0 and again.changed() == [], again.output

        # A backup now: deploys/backup.py.
        now = run_pyinfra(fleet_file, "deploys/backup.py", data=data)
        outputs.append(now.output)
        assert now.returncode == 0, now.output
        assert "last backup: " in now.output and last_backup(old)[1] != by_timer[1] and last_backup(old)[2] == "ok"

        # A backup and a release at the same time: both succeed (the backup waits for the deploy to end).
        before = last_backup(old)
        old.exec("systemctl start --no-block backup-guestbook.service")
        release = run_pyinfra(fleet_file, "deploys/release.py",
                              data={**data, "django_source_dir": str(example_source(tmp_path / "v2", "v2")),
                                    "release_id": "v2"})
        outputs.append(release.output)
        assert release.returncode == 0, release.output
        assert wait_for_backup(old, before)[2] == "ok"

        # Retention (keep one a day): one database and one uploads snapshot left, of the newest run.
        snapshots = json.loads(restic(old, "snapshots --json").stdout)
        assert sorted(tag for snapshot in snapshots for tag in snapshot["tags"] if tag in ("database", "media")) == [
            "database", "media"], snapshots
        # Encrypted: nothing is read without the password, and the bucket holds neither the row nor the upload.
        refused = restic(old, "snapshots", password="not-the-password")
        assert refused.returncode != 0 and "wrong password" in refused.stderr, refused.stderr
        for item in s3.list_objects_v2(Bucket="backups")["Contents"]:
            content = s3.get_object(Bucket="backups", Key=item["Key"])["Body"].read()
            assert row.encode() not in content and b"an upload" not in content

        # status.py shows the last backup and its result.
        status = run_pyinfra(fleet_file, "deploys/status.py", data=data)
        outputs.append(status.output)
        assert "last backup: " in status.output and " ok" in status.output, status.output
        for secret in SECRETS.values():
            assert world_readable_files_containing(old, secret) == [], secret

        # The host is lost. A bare one gets all.py (a daily backup), then restore.py.
        subprocess.run(["docker", "rm", "-f", old.container], check=True, capture_output=True)
        (new,), fleet_file = start_hosts("web2")
        data["backup_schedule"] = "daily"
        # A failed backup is announced to the webhooks of deploy_notify_url, from the host.
        webhook = Receiver(address=fleet.network_gateway(new))
        data["deploy_notify_url"] = json.dumps([f"{webhook.url}/hooks/T0KEN"])
        rebuilt = run_pyinfra(fleet_file, "deploys/all.py", data=data)
        outputs.append(rebuilt.output)
        assert rebuilt.returncode == 0, rebuilt.output
        assert row not in https_get(new, "/").text

        unconfirmed = run_pyinfra(fleet_file, "deploys/restore.py", data={**data, "restore_from": "latest"})
        assert unconfirmed.returncode != 0 and "--data confirm_restore=guestbook" in unconfirmed.output
        restored = run_pyinfra(fleet_file, "deploys/restore.py",
                               data={**data, "restore_from": "latest", "confirm_restore": "guestbook"})
        outputs.append(restored.output)
        assert restored.returncode == 0, restored.output
        assert row in https_get(new, "/").text
        assert https_get(new, "/media/notes/proof.txt").text == "an upload\n"
        for secret in SECRETS.values():
            assert world_readable_files_containing(new, secret) == [], secret

        # An older backup under newer code: a release adds a column, then the backup taken before
        # it comes back and is migrated to it (the new code's page would fail without the column);
        # the audit log and the webhooks hear of the restore.
        v3 = run_pyinfra(fleet_file, "deploys/release.py", data={
            **data, "django_source_dir": str(example_source(tmp_path / "v3", "v3", mood_migration=True)),
            "release_id": "v3"})
        assert v3.returncode == 0, v3.output
        older = run_pyinfra(fleet_file, "deploys/restore.py",
                            data={**data, "restore_from": "latest", "confirm_restore": "guestbook"})
        outputs.append(older.output)
        assert older.returncode == 0, older.output
        assert "the backup's database is migrated to the live release's migrations" in older.output
        page = https_get(new, "/")
        assert page.status_code == 200 and page.headers["X-Release-Id"] == "v3" and row in page.text
        columns = new.exec(f"sqlite3 {ROOT}/shared/db/guestbook.sqlite3 'PRAGMA table_info(guestbook_note)'").stdout
        assert "|mood|" in columns
        entry = json.loads(new.exec(f"tail -n 1 {ROOT}/audit.jsonl").stdout)
        assert (entry["deploy"], entry["detail"], entry["outcome"]) == (
            "restore", "backup latest under release v3", "ok"), entry
        _, _, notice = webhook.received[-1]
        assert (notice["action"], notice["outcome"], notice["release"], notice["previous"]) == (
            "restore", "restored", "latest", "v3"), webhook.received

        # A failed backup (an upload it cannot read) fails backup.py with its log, and status.py shows it.
        new.exec(f"chmod 000 {ROOT}/shared/media/notes")
        failed = run_pyinfra(fleet_file, "deploys/backup.py", data=data)
        outputs.append(failed.output)
        assert failed.returncode != 0 and "permission denied" in failed.output, failed.output
        status = run_pyinfra(fleet_file, "deploys/status.py", data=data)
        outputs.append(status.output)
        assert "failed (exit 3)" in status.output, status.output
        new.exec(f"chmod 755 {ROOT}/shared/media/notes")
        webhook.close()
        path, _, notice = webhook.received[-1]
        assert path == "/hooks/T0KEN" and (notice["action"], notice["outcome"], notice["detail"]) == (
            "backup", "failed", "failed (exit 3)"), webhook.received
        assert world_readable_files_containing(new, "T0KEN") == []

        # Backups off: the timer, units, script, state and cache go; the repository stays.
        off = run_pyinfra(fleet_file, "deploys/skeleton.py", data={"django_environment_variables": json.dumps(APP_SECRETS)})
        outputs.append(off.output)
        assert off.returncode == 0, off.output
        left = new.exec(f"ls /etc/systemd/system/backup-guestbook.* {ROOT}/bin/backup {ROOT}/bin/with-backup-secrets "
                        f"{CREDENTIALS} {STATE} {CACHE} 2>/dev/null; getent passwd backup-guestbook; "
                        "systemctl list-timers --all --no-legend | grep backup-guestbook", check=False).stdout
        assert left == ""
        assert s3.list_objects_v2(Bucket="backups")["KeyCount"] > 0

        for output in outputs:
            for secret in SECRETS.values():
                assert secret not in output

    # PostgreSQL (pg_dump streamed into restic) to a local repository (a second disk), on a db host;
    # then to an SFTP target.
    (db1,), fleet_file = start_hosts("db1")
    postgresql = {"database": "postgresql", "backup_repository": "/var/backups/restic-guestbook",
                  "django_environment_variables": json.dumps({**APP_SECRETS, "DJANGO_DB_PASSWORD": "pg-backup-9f8e"}),
                  "backup_secrets": json.dumps(BACKUP_SECRETS)}
    deployed = run_pyinfra(fleet_file, "deploys/all.py", data=postgresql)
    assert deployed.returncode == 0, deployed.output
    manage(db1, "add_note", shlex.quote("in the backup"))
    taken = run_pyinfra(fleet_file, "deploys/backup.py", data=postgresql)
    assert taken.returncode == 0 and " ok" in taken.output, taken.output
    manage(db1, "add_note", shlex.quote("written after the backup"))
    restored = run_pyinfra(fleet_file, "deploys/restore.py",
                           data={**postgresql, "restore_from": "latest", "confirm_restore": "guestbook"})
    assert restored.returncode == 0, restored.output
    page = https_get(db1, "/").text
    assert "in the backup" in page and "written after the backup" not in page
    # The database as it was before the restore is kept on the host.
    assert db1.exec(f"ls {ROOT}/snapshots/before-restore-*.dump").stdout.strip()

    # An SFTP target (an account on db1's own sshd), reached with the backup user's SSH key in its
    # home (the backup's state folder), as README says.
    db1.exec("useradd -m -s /bin/sh restic-target && install -d -o restic-target -m 700 /home/restic-target/.ssh && "
             f"install -d -o {BACKUP_USER} -g {BACKUP_USER} -m 700 {STATE}/.ssh && "
             f"runuser -u {BACKUP_USER} -- ssh-keygen -q -t ed25519 -N '' -f {STATE}/.ssh/id_ed25519 && "
             f"install -o restic-target -m 600 {STATE}/.ssh/id_ed25519.pub /home/restic-target/.ssh/authorized_keys && "
             f"ssh-keyscan 127.0.0.1 2>/dev/null > {STATE}/.ssh/known_hosts && chown {BACKUP_USER} {STATE}/.ssh/known_hosts")
    sftp = {**postgresql, "backup_repository": "sftp:restic-target@127.0.0.1:/home/restic-target/guestbook"}
    switched = run_pyinfra(fleet_file, "deploys/skeleton.py", data=sftp)
    assert switched.returncode == 0, switched.output
    over_sftp = run_pyinfra(fleet_file, "deploys/backup.py", data=sftp)
    assert over_sftp.returncode == 0 and " ok" in over_sftp.output, over_sftp.output
    assert {"config", "data", "snapshots"} <= set(db1.exec("ls /home/restic-target/guestbook").stdout.split())
    print(f"backup test: {time.monotonic() - started:.0f} s")
