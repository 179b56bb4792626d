"""Backups: the variables' checks, and the shell programs that back up and restore, run with dash
against folders shaped like a project's, with a stand-in restic that records what it is asked
(the real one runs in tests/e2e/test_backups_e2e.py)."""

from __future__ import annotations

import json
import os
import shlex
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from deploys.djangoapp.services.backups import (
    CHOOSE_PROGRAM,
    MIGRATION_LOCK_FD,
    backup_now_command,
    backup_script,
    cache_dir,
    choose_backup,
    last_backup,
    restore_command,
    state_dir,
)
from deploys.djangoapp.core.context import render_template
from deploys.djangoapp.settings.environment import environment_file_content, secret_file_content
from deploys.djangoapp.services.notifications import notify_program
from deploys.djangoapp.settings import problems
from deploys.djangoapp.settings.backups import CALENDAR, S3_REPOSITORY, SFTP_REPOSITORY, SNAPSHOT_ID
from tests.unit.sites import VALID, app_folder, settings
from tests.unit.holding import wait_until_held

SECRETS = {"DJANGO_SECRET_KEY": "k" * 40}
BACKUP_SECRETS = {"RESTIC_PASSWORD": "restic-pass-9f8e7d", "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE77",
                  "AWS_SECRET_ACCESS_KEY": "aws-secret-5c4b3a"}
S3 = "s3:http://10.0.0.1:9000/backups/mysite"


def errors(**overrides) -> list[str]:
    return problems({**VALID, **overrides})[1]


def test_repositories_of_each_kind_are_accepted_and_anything_else_refused():
    for repository in (S3, "s3:https://s3.example.com/bucket", "sftp:backup@store.example.com:/srv/restic",
                       "/mnt/backup-disk/mysite/"):
        assert errors(backup_repository=repository, backup_secrets=BACKUP_SECRETS) == [], repository
    assert settings(backup_repository="/mnt/disk/", backup_secrets=BACKUP_SECRETS).backup_repository == "/mnt/disk"
    for repository in ("s3:http://user:pass@host/bucket", "s3:http://host/bucket path", "relative/dir",
                       "rclone:remote:path", "/mnt/../etc", "/mnt/disk;rm", "sftp:host:/x'y"):
        found = errors(backup_repository=repository, backup_secrets=BACKUP_SECRETS)
        assert len(found) == 1 and found[0].startswith("backup_repository: "), (repository, found)


def test_backups_are_refused_without_their_secrets_naming_the_missing_ones():
    found = errors(backup_repository=S3, backup_secrets={"RESTIC_PASSWORD": "x"})
    assert found == ["backup_secrets: backups need AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (RESTIC_PASSWORD "
                     "encrypts the backups: keep it outside the host too, no backup can be read without it)"]
    found = errors(backup_repository="/mnt/disk")
    assert len(found) == 1 and "backups need RESTIC_PASSWORD" in found[0]
    assert errors(backup_repository="/mnt/disk", backup_secrets={"RESTIC_PASSWORD": "x"}) == []
    assert errors() == []  # no repository: backups off, no secret needed


def test_the_backups_credentials_are_never_the_apps():
    """RESTIC_PASSWORD among the app's secrets is refused, with the way out; backup_secrets holds
    the backup's credentials only (the app keeps its own AWS keys, for its own storage)."""
    found = errors(backup_repository="/mnt/disk", django_environment_variables={"RESTIC_PASSWORD": "x"},
                   backup_secrets={"RESTIC_PASSWORD": "x"})
    assert found == ["django_environment_variables: RESTIC_PASSWORD goes in backup_secrets (with the repository's "
                     "AWS keys), which only the backup reads: the app, and whoever runs code in it, must not read "
                     "or delete the backups"]
    assert errors(backup_repository=S3, backup_secrets=BACKUP_SECRETS,
                  django_environment_variables={"AWS_ACCESS_KEY_ID": "the app's own"}) == []
    assert errors(backup_secrets={"DJANGO_SECRET_KEY": "x"}) == [
        "backup_secrets: DJANGO_SECRET_KEY: not a credential of the backup (it takes RESTIC_PASSWORD, "
        "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION)"]


def test_schedule_keep_and_restore_from_are_checked():
    assert errors(backup_schedule="*-*-* 03:00:00") == [] and errors(backup_schedule="*:0/5") == []
    for schedule in ("daily\nExecStart=/bin/evil", "daily\n"):
        assert errors(backup_schedule=schedule)[0].startswith("backup_schedule: ")
    for repository in (S3 + "\n", "/mnt/disk\n"):
        assert errors(backup_repository=repository, backup_secrets=BACKUP_SECRETS)[0].startswith(
            "backup_repository: ")
    assert errors(restore_from="latest\n")[0].startswith("restore_from: ")
    assert errors(backup_keep={"daily": 1}) == []
    for keep in ({"hourly": 3}, {"daily": -1}, {"daily": 0}, {}, {"daily": "7"}, [7]):
        assert errors(backup_keep=keep)[0].startswith("backup_keep: "), keep
    assert errors(restore_from="latest") == [] and errors(restore_from="1a2b3c4d") == []
    assert settings(restore_from=12345678).restore_from == "12345678"  # --data gives digits as a number
    for wanted in ("last", "1a2b", "1a2b3c4d; rm -rf /", "../x"):
        assert errors(restore_from=wanted)[0].startswith("restore_from: "), wanted
    assert errors(backup_reposit="/x") == ["backup_reposit: is not a variable of this project (a typo?)"]


def backup_settings(tmp_path: Path, **overrides):
    return settings(**{"django_deployment_root_folder": str(tmp_path / "srv"), "backup_repository": S3,
                       "django_environment_variables": SECRETS, "backup_secrets": BACKUP_SECRETS,
                       "uwsgi_user": "root", "uwsgi_group": "root",
                       "backup_keep": {"daily": 2, "monthly": 3}, **overrides})


def test_no_secret_reaches_the_script_or_the_units(tmp_path):
    s = backup_settings(tmp_path)
    shown = [backup_script(s), render_template("backups/backup.service.j2", s=s, script="/x/bin/backup",
                                               loader="/x/bin/with-backup-secrets"),
             render_template("backups/backup.timer.j2", s=s), restore_command(s, "latest", "20260101000000"),
             backup_now_command(s)]
    for text in shown:
        for secret in {**SECRETS, **BACKUP_SECRETS}.values():
            assert secret not in text
    service = shown[1]
    # The credentials reach its environment only, through the loader, which gives up root.
    assert "ExecStart=/x/bin/with-backup-secrets /x/bin/backup" in service
    assert "User=" not in service and "Type=oneshot" in service
    assert "OnCalendar=daily" in shown[2] and "Persistent=true" in shown[2]


FAKE_RESTIC = textwrap.dedent("""\
    #!/bin/sh
    # Stands in for restic: records its arguments (and what it reads), answers like it.
    log="$FAKE_RESTIC_DIR/calls"
    echo "$*" >> "$log"
    case "$1" in
      cat) [ -e "$FAKE_RESTIC_DIR/initialised" ] ;;
      init) touch "$FAKE_RESTIC_DIR/initialised" ;;
      backup)
        if [ -n "${FAKE_MIGRATION_LOCK:-}" ]; then
          # Whether a release's migrations could take the migration lock now.
          if flock -n -x "$FAKE_MIGRATION_LOCK" true; then state=free; else state=held; fi
          echo "$state during backup $*" >> "$FAKE_RESTIC_DIR/lock-states"
        fi
        case " $* " in
          *" --stdin "*) cat > "$FAKE_RESTIC_DIR/stdin-$(ls "$FAKE_RESTIC_DIR" | wc -l)" ;;
          *" $FAKE_RESTIC_FAIL "*) echo "cannot read the uploads" >&2; exit 3 ;;
        esac ;;
    esac
""")


def project(tmp_path: Path, s) -> dict:
    """The project's folders on 'the host', the state folders moved under tmp_path, and restic
    on PATH as a stand-in."""
    for path in (s.db_dir, s.media_dir, s.snapshots_dir):
        Path(path).mkdir(parents=True)
    database = sqlite3.connect(s.sqlite_path)
    database.execute("CREATE TABLE note (text TEXT)")
    database.execute("INSERT INTO note VALUES ('kept by the backup')")
    database.commit()
    database.close()
    (Path(s.media_dir) / "upload.txt").write_text("an upload")
    state, cache, tools = tmp_path / "state", tmp_path / "cache", tmp_path / "tools"
    for path in (state, cache, tools):
        path.mkdir()
    (tools / "restic").write_text(FAKE_RESTIC)
    (tools / "restic").chmod(0o755)
    return {"state": state, "cache": cache, "tools": tools}


def run_backup(s, paths: dict, **env) -> subprocess.CompletedProcess:
    script = (backup_script(s).replace(state_dir(s), str(paths["state"]))
              .replace(cache_dir(s), str(paths["cache"])).replace(notify_program(s), str(paths["tools"] / "notify")))
    # bin/with-backup-secrets hands the script the migration lock, open on MIGRATION_LOCK_FD.
    handed = f"exec {MIGRATION_LOCK_FD}>>{shlex.quote(str(paths['tools'] / 'migration.lock'))}\n"
    return subprocess.run(["sh", "-c", handed + script], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PATH": f"{paths['tools']}:{os.environ['PATH']}",
                               "FAKE_RESTIC_DIR": str(paths["tools"]), "FAKE_RESTIC_FAIL": "none", **env})


def calls(paths: dict) -> list[str]:
    return (paths["tools"] / "calls").read_text().splitlines()


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_backup_holds_the_migration_lock_shared_while_it_dumps_the_database_only(tmp_path, database):
    s = backup_settings(tmp_path, database=database,
                        django_environment_variables={**SECRETS, "DJANGO_DB_PASSWORD": "db-pass-1b2c3d"})
    paths = project(tmp_path, s)
    Path(s.secrets_loader).parent.mkdir(parents=True, exist_ok=True)
    Path(s.secrets_loader).write_text('#!/bin/sh\nexec "$@"\n')
    Path(s.secrets_loader).chmod(0o755)
    (paths["tools"] / "pg_dump").write_text("#!/bin/sh\necho dump\n")
    (paths["tools"] / "pg_dump").chmod(0o755)
    lock = paths["tools"] / "migration.lock"
    done = run_backup(s, paths, FAKE_MIGRATION_LOCK=str(lock))
    assert done.returncode == 0, done.stderr
    states = (paths["tools"] / "lock-states").read_text().splitlines()
    assert [line.split(" during ")[0] for line in states] == ["held", "free"], states
    assert "--stdin" in states[0] and s.media_dir in states[1]

    # A release migrating holds it exclusively: the backup waits for it, saying so, then goes on.
    (paths["tools"] / "lock-states").unlink()
    released = tmp_path / "migrated"  # written by the holder before it lets go
    holder = subprocess.Popen(["flock", "-x", str(lock), "sh", "-c", f"sleep 2; touch {released}"])
    try:
        wait_until_held(lock)
        done = run_backup(s, paths, FAKE_MIGRATION_LOCK=str(lock))
        let_go_first = released.exists()  # it had let go before the backup could end
    finally:
        holder.wait(timeout=10)
    assert done.returncode == 0, done.stderr
    assert "waiting for the migrations that hold the migration lock" in done.stderr
    assert let_go_first


def test_a_backup_sends_the_database_and_uploads_tagged_with_its_run_then_prunes(tmp_path):
    s = backup_settings(tmp_path)
    paths = project(tmp_path, s)
    done = run_backup(s, paths)
    assert done.returncode == 0, done.stderr
    made = calls(paths)
    assert made[0] == "cat config" and made[1] == "init"
    database, media, forget = made[2:]
    run = database.split(",")[-1].split()[0]
    assert run.startswith("run-")
    assert database == f"backup --quiet --host mysite --tag django-deploy,database,{run} --stdin --stdin-filename mysite.sqlite3"
    assert media == f"backup --quiet --host mysite --tag django-deploy,media,{run} {s.media_dir}"
    assert forget == "forget --quiet --tag django-deploy --group-by host,paths --keep-daily 2 --keep-monthly 3 --prune"
    # What restic read is a sqlite database with the rows (sqlite's online backup).
    copy = next(paths["tools"].glob("stdin-*"))
    assert sqlite3.connect(copy).execute("SELECT text FROM note").fetchall() == [("kept by the backup",)]
    assert list(paths["state"].iterdir()) == [paths["state"] / "last-backup"]  # the copy is gone
    assert (paths["state"] / "last-backup").read_text().split()[1:] == [run, "ok"]
    # A second backup: the repository is there, no init.
    assert run_backup(s, paths).returncode == 0 and "init" not in calls(paths)[5:]


def test_a_backup_to_an_append_only_repository_adds_and_forgets_nothing(tmp_path):
    """backup_prune off: the backup only adds (an append-only repository refuses the rest)."""
    s = backup_settings(tmp_path, backup_prune=False)
    paths = project(tmp_path, s)
    assert run_backup(s, paths).returncode == 0
    assert [call.split()[0] for call in calls(paths)] == ["cat", "init", "backup", "backup"]


def test_a_failed_backup_is_recorded_and_its_snapshots_forgotten(tmp_path):
    s = backup_settings(tmp_path)
    paths = project(tmp_path, s)
    failed = run_backup(s, paths, FAKE_RESTIC_FAIL=s.media_dir)
    assert failed.returncode == 3 and "cannot read the uploads" in failed.stderr
    made = calls(paths)
    run = made[2].split(",")[-1].split()[0]
    assert made[-1] == f"forget --quiet --tag {run}" and not any(call.startswith("forget --quiet --tag django") for call in made)
    assert (paths["state"] / "last-backup").read_text().split()[1:] == [run, "failed", "(exit", "3)"]


def test_a_backup_waits_for_a_running_deploy_and_for_another_backup(tmp_path):
    s = backup_settings(tmp_path)
    paths = project(tmp_path, s)
    Path(s.lock_dir).mkdir()
    started = time.monotonic()
    remover = subprocess.Popen(["sh", "-c", f"sleep 1.5; rmdir {s.lock_dir}"])
    assert run_backup(s, paths).returncode == 0
    assert time.monotonic() - started >= 1.5  # it did not start while the deploy held its lock
    remover.wait()
    # It never takes the deploy lock itself: a release is never held up by a backup.
    assert s.lock_dir not in backup_script(s).replace(f"[ -d {s.lock_dir} ]", "").replace(f"cat {s.lock_dir}/holder.json", "")
    # Another backup (or a restore) holds the backup lock: this one waits for it.
    released = tmp_path / "other-backup-done"  # written by the holder before it lets go
    holder = subprocess.Popen(["flock", str(paths["state"]), "sh", "-c", f"sleep 1.5; touch {released}"])
    wait_until_held(paths["state"])
    assert run_backup(s, paths).returncode == 0
    assert released.exists()  # it had let go before the backup could end
    holder.wait()


def test_a_postgresql_backup_streams_pg_dump_into_restic_and_fails_when_the_dump_does(tmp_path):
    s = backup_settings(tmp_path, database="postgresql",
                        django_environment_variables={**SECRETS, "DJANGO_DB_PASSWORD": "db-pass-1b2c3d"})
    script = backup_script(s)
    assert ("pg_dump -Fc || touch /var/lib/django-deploy/backups/mysite/dump-failed; } | restic backup --quiet "
            "--host mysite --tag django-deploy,database,\"$run\" --stdin --stdin-filename mysite.dump") in script
    paths = project(tmp_path, s)
    # bin/with-secrets and pg_dump stand-ins: the dump is what restic reads.
    Path(s.secrets_loader).parent.mkdir(parents=True, exist_ok=True)
    Path(s.secrets_loader).write_text('#!/bin/sh\nexec "$@"\n')
    Path(s.secrets_loader).chmod(0o755)
    (paths["tools"] / "pg_dump").write_text('#!/bin/sh\n[ -z "$PG_DUMP_FAILS" ] || exit 1\necho "dump of $PGDATABASE"\n')
    (paths["tools"] / "pg_dump").chmod(0o755)
    assert run_backup(s, paths, PG_DUMP_FAILS="").returncode == 0
    assert next(paths["tools"].glob("stdin-*")).read_text() == "dump of mysite\n"
    failed = run_backup(s, paths, PG_DUMP_FAILS="yes")
    assert failed.returncode == 1 and "pg_dump failed: no backup of the database" in failed.stderr
    assert calls(paths)[-1].startswith("forget --quiet --tag run-")


def snapshot(short: str, kind: str, run: str, time: str, path: str) -> dict:
    return {"id": short + "0" * 56, "short_id": short, "time": time, "paths": [path],
            "tags": ["django-deploy", kind, run]}


SNAPSHOTS = [
    snapshot("aaaa0001", "database", "run-1", "2026-01-01T03:00:00Z", "/mysite.sqlite3"),
    snapshot("aaaa0002", "media", "run-1", "2026-01-01T03:00:01Z", "/srv/www/mysite/shared/media"),
    snapshot("bbbb0001", "database", "run-2", "2026-01-02T03:00:00Z", "/mysite.sqlite3"),
    snapshot("bbbb0002", "media", "run-2", "2026-01-02T03:00:01Z", "/srv/www/mysite/shared/media"),
    # A run that failed half-way: only its database made it.
    snapshot("cccc0001", "database", "run-3", "2026-01-03T03:00:00Z", "/mysite.sqlite3"),
]


def test_restore_chooses_a_complete_run_latest_or_by_any_of_its_ids():
    latest = choose_backup(SNAPSHOTS, "latest")
    assert latest == ("bbbb0001" + "0" * 56, "/mysite.sqlite3", "bbbb0002" + "0" * 56, "/srv/www/mysite/shared/media")
    assert choose_backup(SNAPSHOTS, "aaaa0002")[0].startswith("aaaa0001")
    with pytest.raises(SystemExit, match=r"restore_from: cccc0001 is not a complete backup; the backups: aaaa0001 "):
        choose_backup(SNAPSHOTS, "cccc0001")
    with pytest.raises(SystemExit, match="restore_from: dddd0001 matches no backup"):
        choose_backup(SNAPSHOTS, "dddd0001")
    with pytest.raises(SystemExit, match="no complete backup"):
        choose_backup(SNAPSHOTS[4:], "latest")


def test_the_program_shipped_to_the_host_is_the_same_choice(tmp_path):
    listing = tmp_path / "snapshots.json"
    listing.write_text(json.dumps(SNAPSHOTS))
    chosen = subprocess.run([sys.executable, "-c", CHOOSE_PROGRAM, str(listing), "aaaa0001"], capture_output=True,
                            text=True, check=True)
    assert chosen.stdout.split() == ["aaaa0001" + "0" * 56, "/mysite.sqlite3", "aaaa0002" + "0" * 56,
                                     "/srv/www/mysite/shared/media"]


FAKE_RESTIC_RESTORE = textwrap.dedent("""\
    #!/bin/sh
    # Stands in for restic holding one backup: its snapshots, its database, its uploads.
    echo "$*" >> "$FAKE_RESTIC_DIR/calls"
    case "$2" in
      snapshots) cat "$FAKE_RESTIC_DIR/snapshots.json" ;;
      dump) cat "$FAKE_RESTIC_DIR/backup.sqlite3" ;;
      restore) target=$6
        case "$FORGED" in
          link) mkdir -p "$target$(dirname "$MEDIA")" && ln -s "$OUTSIDE" "$target$MEDIA" ;;
          folder-link) mkdir -p "$target" && ln -s "$OUTSIDE" "$target/srv" ;;
          *) mkdir -p "$target$MEDIA" && echo "uploaded before the disaster" > "$target$MEDIA/old.txt" ;;
        esac ;;
    esac
""")


def backup_holding(paths, snapshots: list[dict], *statements: str) -> None:
    """The fake restic (FAKE_RESTIC_RESTORE) holding one backup: these snapshots, and a database
    made by `statements`."""
    (paths["tools"] / "restic").write_text(FAKE_RESTIC_RESTORE)
    backup = sqlite3.connect(paths["tools"] / "backup.sqlite3")
    for statement in statements:
        backup.execute(statement)
    backup.commit()
    backup.close()
    (paths["tools"] / "snapshots.json").write_text(json.dumps(snapshots))


def run_restore(s, paths, wanted: str, stamp: str, **env: str) -> subprocess.CompletedProcess:
    """restore_command run against the project folder, root standing in for the backup user, the
    fake restic first on the path; `env` for the fake (MEDIA: the uploads' path by default)."""
    command = restore_command(s, wanted, stamp).replace(state_dir(s), str(paths["state"])).replace(s.backup_user,
                                                                                                   "root")
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PATH": f"{paths['tools']}:{os.environ['PATH']}",
                               "FAKE_RESTIC_DIR": str(paths["tools"]), "MEDIA": s.media_dir, **env})


def test_a_restore_puts_the_backup_in_place_and_keeps_what_was_there(tmp_path):
    s = backup_settings(tmp_path)
    paths = project(tmp_path, s)
    media = [snapshot("bbbb0002", "media", "run-2", "2026-01-02T03:00:01Z", s.media_dir)]
    backup_holding(paths, SNAPSHOTS[2:3] + media, "CREATE TABLE note (text TEXT)",
                   "INSERT INTO note VALUES ('from the backup')")
    restored = run_restore(s, paths, "latest", "20260101000000")
    assert restored.returncode == 0, restored.stderr
    assert "restoring the backup bbbb0001" in restored.stdout
    assert sqlite3.connect(s.sqlite_path).execute("SELECT text FROM note").fetchall() == [("from the backup",)]
    assert [p.name for p in Path(s.media_dir).iterdir()] == ["old.txt"]
    # What was there before: the database snapshotted, the uploads moved aside; no work folder left.
    before = Path(s.snapshots_dir) / "before-restore-20260101000000.sqlite3"
    assert sqlite3.connect(before).execute("SELECT text FROM note").fetchall() == [("kept by the backup",)]
    assert (Path(s.snapshots_dir) / "before-restore-20260101000000-media" / "upload.txt").read_text() == "an upload"
    assert not list(Path(s.project_root).glob("restore-*"))
    assert all(call.split()[:2] == ["--no-cache", call.split()[1]] for call in calls(paths))
    kept = Path(s.snapshots_dir) / "before-restore-20260101000000"
    assert restored.stdout.splitlines()[-1] == (f"restored; the database and uploads before it are in {kept}.sqlite3 "
                                                f"and {kept}-media")
    # The uploads are the app's again, every file of them.
    owners = {(path.owner(), path.group()) for path in [Path(s.media_dir), *Path(s.media_dir).rglob("*")]}
    assert owners == {(s.uwsgi_user, s.uwsgi_group)}, owners
    # A backup id the repository does not have: refused, nothing changed.
    refused = run_restore(s, paths, "dddd0001", "20260101000001")
    assert refused.returncode != 0 and "restore_from: dddd0001 matches no backup" in refused.stderr
    assert sqlite3.connect(s.sqlite_path).execute("SELECT text FROM note").fetchall() == [("from the backup",)]
    assert not list(Path(s.project_root).glob("restore-*"))  # the work folder goes, failed or not


@pytest.mark.parametrize("forged", ["elsewhere", "link", "folder-link"])
def test_a_restore_takes_nothing_from_the_repository_but_this_projects_folders(tmp_path, forged):
    """What the repository holds was written by the app: a run whose uploads are another path, or
    a link, or lie behind a link, is refused before anything on the host changes. (The backup
    user stands in as root here, as the app user does.)"""
    s = backup_settings(tmp_path)
    paths = project(tmp_path, s)
    outside = tmp_path / "root-only"
    (outside / "media").mkdir(parents=True)
    (outside / "media" / "secret").write_text("root's")
    media_path = "/etc/ssl/private" if forged == "elsewhere" else s.media_dir
    backup_holding(paths, SNAPSHOTS[2:3] + [snapshot("bbbb0002", "media", "run-2", "2026-01-02T03:00:01Z", media_path)],
                   "CREATE TABLE note (text TEXT)")
    refused = run_restore(s, paths, "latest", "20260101000000", MEDIA=media_path, FORGED=forged,
                          OUTSIDE=str(outside / "media" if forged == "link" else outside))
    assert refused.returncode != 0
    told = {"elsewhere": "are not this project's", "link": "not a plain folder",
            "folder-link": "not a plain folder"}[forged]
    assert told in refused.stderr, refused.stderr
    assert (Path(s.media_dir) / "upload.txt").read_text() == "an upload" and not Path(s.media_dir).is_symlink()
    assert sqlite3.connect(s.sqlite_path).execute("SELECT text FROM note").fetchall() == [("kept by the backup",)]
    assert (outside / "media" / "secret").read_text() == "root's" and outside.stat().st_uid == 0
    assert not list(Path(s.project_root).glob("restore-*")) and not list(Path(s.shared_dir).glob(".restore-*"))


@hypothesis_settings(max_examples=40, deadline=None)
@given(repository=st.one_of(st.from_regex(S3_REPOSITORY, fullmatch=True), st.from_regex(SFTP_REPOSITORY, fullmatch=True)),
       schedule=st.from_regex(CALENDAR, fullmatch=True), wanted=st.from_regex(SNAPSHOT_ID, fullmatch=True))
def test_any_accepted_repository_schedule_and_id_arrive_as_given_and_never_run(repository, schedule, wanted):
    site, found = problems({**VALID, "backup_repository": repository, "backup_schedule": schedule,
                            "restore_from": wanted, "django_environment_variables": SECRETS})
    if found:  # refused (a path with '..', say): nothing to build
        return
    script, restore = backup_script(site), restore_command(site, site.restore_from, "20260101000000")
    for program in (script, restore):
        assert subprocess.run(["sh", "-n", "-c", program], capture_output=True).returncode == 0
    export = next(line for line in script.splitlines() if line.startswith("export RESTIC_REPOSITORY="))
    shown = subprocess.run(["sh", "-c", f'{export}; printf %s "$RESTIC_REPOSITORY"'], capture_output=True, text=True)
    assert shown.stdout == site.backup_repository
    timer = render_template("backups/backup.timer.j2", s=site)
    assert f"\nOnCalendar={schedule}\n" in timer and len(timer.splitlines()) == 11


FAKE_NOTIFY = textwrap.dedent("""\
    #!/bin/sh
    # Stands in for bin/notify (tested in test_notifications.py): notes what it was asked to announce.
    printf '%s|' "$@" >> "$FAKE_RESTIC_DIR/notices"
    echo >> "$FAKE_RESTIC_DIR/notices"
""")


def test_a_failed_backup_is_announced_to_the_webhooks(tmp_path):
    s = backup_settings(tmp_path, deploy_notify_url=["https://hooks.example.com/services/T0KEN"])
    paths = project(tmp_path, s)
    (paths["tools"] / "notify").write_text(FAKE_NOTIFY)
    (paths["tools"] / "notify").chmod(0o755)
    assert run_backup(s, paths).returncode == 0
    assert not (paths["tools"] / "notices").exists()  # a backup that worked: no notice

    failed = run_backup(s, paths, FAKE_RESTIC_FAIL=s.media_dir)
    assert failed.returncode == 3
    assert (paths["tools"] / "notices").read_text().splitlines() == ["backup|failed|failed (exit 3)|"]


def test_the_last_backup_line_shows_nothing_the_app_did_not_write_and_never_waits():
    """The state folder is the app's: a link there to a root file shows nothing of it, a FIFO holds
    up nothing, escape sequences are dropped."""
    with app_folder() as state:
        s = backup_settings(Path("/srv"), uwsgi_user="nobody", uwsgi_group="nogroup")
        read = (last_backup(s).replace(state_dir(s), str(state))
                .replace(f"--reuid={s.backup_user}", "--reuid=nobody").replace(f"--regid={s.backup_user}", "--regid=nogroup"))
        last = state / "last-backup"

        def shown() -> str:
            return subprocess.run(["sh", "-c", read], capture_output=True, text=True, timeout=20).stdout

        last.write_text("2026-01-01T03:00:00Z run-1 ok\n\x1b]2;owned\x07")
        assert shown() == "2026-01-01T03:00:00Z run-1 ok]2;owned"
        last.unlink()
        last.symlink_to("/etc/shadow")
        assert shown() == ""
        last.unlink()
        os.mkfifo(last)
        started = time.monotonic()
        assert shown() == "" and time.monotonic() - started < 15


def test_the_backups_credentials_reach_only_the_backup_users_processes(tmp_path):
    """bin/with-backup-secrets reads backup_secrets from root's file and runs the command as the
    backup user with them in its environment (or as root, for the restore); the app's secret
    file and environment never hold them."""
    s = backup_settings(tmp_path)
    credentials = tmp_path / "credentials.json"
    credentials.write_text(json.dumps(s.backup_secrets))
    credentials.chmod(0o600)
    loader = tmp_path / "with-backup-secrets"
    loader.write_text(render_template("backups/with-backup-secrets.py.j2", s=s, credentials=str(credentials),
                                      lock_fd=MIGRATION_LOCK_FD)
                      .replace(f"--reuid={s.backup_user}", "--reuid=nobody")
                      .replace(f"--regid={s.backup_user}", "--regid=nogroup"))
    loader.chmod(0o755)
    show = ["sh", "-c", 'echo "$(id -un) $RESTIC_PASSWORD $AWS_ACCESS_KEY_ID"']
    as_backup_user = subprocess.run([str(loader), *show], capture_output=True, text=True, check=True)
    assert as_backup_user.stdout == "nobody restic-pass-9f8e7d AKIAEXAMPLE77\n"
    # The backup user holds the migration lock it could not open itself, on the descriptor handed.
    holding = subprocess.run([str(loader), "sh", "-c", f"flock -n -s {MIGRATION_LOCK_FD} && echo held"],
                             capture_output=True, text=True)
    assert holding.stdout == "held\n", holding.stderr
    assert oct(os.stat(s.migration_lock).st_mode & 0o777) == "0o600"
    as_root = subprocess.run([str(loader), "--as-root", *show], capture_output=True, text=True, check=True)
    assert as_root.stdout == "root restic-pass-9f8e7d AKIAEXAMPLE77\n"
    assert subprocess.run(["runuser", "-u", "nobody", "--", "cat", str(credentials)], capture_output=True).returncode
    for secret in s.backup_secrets.values():
        assert secret not in secret_file_content(s.secrets) + environment_file_content(s.app_environment)


@pytest.mark.parametrize(("applied", "migrating"), [("0001_initial", "works"), ("0003_colour", "works"),
                                                   ("0001_initial", "fails")])
def test_a_restore_migrates_an_older_backup_and_refuses_one_newer_than_the_live_release(tmp_path, applied,
                                                                                         migrating):
    s = backup_settings(tmp_path)
    paths = project(tmp_path, s)
    media = [snapshot("bbbb0002", "media", "run-2", "2026-01-02T03:00:01Z", s.media_dir)]
    backup_holding(paths, SNAPSHOTS[2:3] + media, "CREATE TABLE note (text TEXT)",
                   "INSERT INTO note VALUES ('from the backup')",
                   "CREATE TABLE django_migrations (id INTEGER PRIMARY KEY, app TEXT, name TEXT, applied TEXT)",
                   *(f"INSERT INTO django_migrations (app, name, applied) VALUES ('{app}', '{name}', '2026-01-01')"
                     for app, name in [("auth", "0012_alter_user_first_name_max_length"), ("notes", "0001_initial"),
                                       ("notes", applied), ("gone", "0009_an_app_the_code_no_longer_has")]))
    # The live release knows notes up to 0002; bin/manage records what it is asked.
    live = Path(s.releases_dir) / "v2"
    live.mkdir(parents=True)
    (live / ".migrations.json").write_text(json.dumps(
        {"auth": "0012_alter_user_first_name_max_length", "notes": "0002_mood"}))
    Path(s.current_link).symlink_to(live)
    Path(s.manage_command).parent.mkdir(parents=True, exist_ok=True)
    Path(s.manage_command).write_text(f'#!/bin/sh\necho "$*" >> {paths["tools"]}/manage-calls\n'
                                      + ("exit 1\n" if migrating == "fails" else ""))
    Path(s.manage_command).chmod(0o755)
    result = run_restore(s, paths, "latest", "20260101000000")
    in_place = sqlite3.connect(s.sqlite_path).execute("SELECT text FROM note").fetchall()
    manage_calls = (paths["tools"] / "manage-calls").read_text().splitlines() if (
        paths["tools"] / "manage-calls").exists() else []
    if migrating == "fails":  # in place, and the run fails saying where the database before it is
        assert result.returncode == 1 and in_place == [("from the backup",)]
        assert ("the backup's database and uploads are in place, but migrating the database to the live release "
                "failed (above); the database before the restore is in "
                f"{s.snapshots_dir}/before-restore-20260101000000.sqlite3") in result.stderr
    elif applied == "0001_initial":  # older than the live release: in place, then migrated to it
        assert result.returncode == 0, result.stderr
        assert in_place == [("from the backup",)]
        assert manage_calls == ["migrate --noinput"]
        assert "the backup's database is migrated to the live release's migrations" in result.stdout
    else:  # it knows a migration the live code does not: refused before anything changed
        assert result.returncode != 0
        assert ("the backup's database has migrations the live release does not know (notes.0003_colour): "
                "release code that has them, then restore; nothing was changed") in result.stderr
        assert in_place == [("kept by the backup",)] and manage_calls == []
        assert (Path(s.media_dir) / "upload.txt").read_text() == "an upload"
        assert not list(Path(s.snapshots_dir).glob("before-restore-*"))


def test_the_migrations_of_a_postgresql_backup_are_read_from_pg_restores_text():
    from deploys.djangoapp.services.backups import newer_migrations

    text = ["SET client_encoding = 'UTF8';\n",
            "COPY public.django_migrations (id, app, name, applied) FROM stdin;\n",
            "1\tcontenttypes\t0001_initial\t2026-01-01 00:00:00+00\n",
            "2\tshop\t0004_orders\t2026-01-01 00:00:00+00\n",
            "\\.\n", "COPY public.other (id) FROM stdin;\n", "3\tshop\t0009_not_a_migration\n", "\\.\n"]
    assert newer_migrations("postgresql", {"contenttypes": "0002_remove", "shop": "0003_x"}, text) == [
        "shop.0004_orders"]
    assert newer_migrations("postgresql", {"contenttypes": "0002_remove", "shop": "0004_orders"}, text) == []
