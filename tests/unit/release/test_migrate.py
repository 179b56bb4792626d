"""A release's failed migration undone the least destructive way (migrate_command), against a
real Django project on sqlite: nothing to do when the database undid it, the migrations that ran
migrated back when some did, the snapshot restored (saying since when writes are lost) only when
a migration ran outside a transaction or could not be migrated back."""

import json
import os
import shlex
import sqlite3
import subprocess
import time
import sys
from pathlib import Path

from deploys.djangoapp.release.migrate import OPEN_TRANSACTIONS, migrate_command
from tests.unit.holding import wait_until_held

SETTINGS = """SECRET_KEY = "test"
INSTALLED_APPS = ["notes"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": %r}}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
"""
MODELS = """from django.db import models


class Note(models.Model):
    text = models.TextField()
"""
INITIAL = """from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    operations = [migrations.CreateModel("Note", [
        ("id", models.AutoField(primary_key=True)), ("text", models.TextField())])]
"""
MOOD = """from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("notes", "0001_initial")]
    operations = [migrations.AddField("note", "mood", models.TextField(default="ok"))]
"""
FAILING = """from django.db import migrations, models


def fail(apps, schema_editor):
    raise RuntimeError("this migration fails on purpose")


class Migration(migrations.Migration):
    atomic = %s
    dependencies = [("notes", %r)]
    operations = [migrations.AddField("note", "colour", models.TextField(default="red")),
                  migrations.RunPython(fail)]
"""


def project(tmp_path: Path, migrations: dict[str, str]) -> tuple[Path, dict]:
    """A release of a project whose app `notes` has `migrations` (name -> source), and the
    environment its manage command runs in."""
    release = tmp_path / "release"
    app = release / "notes"
    (app / "migrations").mkdir(parents=True, exist_ok=True)
    (app / "__init__.py").write_text("")
    (app / "migrations" / "__init__.py").write_text("")
    (app / "models.py").write_text(MODELS)
    for name in os.listdir(app / "migrations"):
        if name[0].isdigit():
            (app / "migrations" / name).unlink()
    for name, source in migrations.items():
        (app / "migrations" / f"{name}.py").write_text(source)
    (release / "site_settings.py").write_text(SETTINGS % str(tmp_path / "db.sqlite3"))
    return release, {**os.environ, "PYTHONPATH": str(release), "DJANGO_SETTINGS_MODULE": "site_settings"}


MANAGE = f"{sys.executable} -m django"


def migrate_with(tmp_path: Path, new: dict[str, str], pending: list[str], non_atomic: list[str]):
    """The live release at 0001 with a row; then the new release's migrations, a row written by
    the site after the snapshot was taken, and the migrate command as a release runs it."""
    release, env = project(tmp_path, {"0001_initial": INITIAL})
    assert subprocess.run(f"{MANAGE} migrate --noinput", shell=True, env=env, capture_output=True).returncode == 0
    database = tmp_path / "db.sqlite3"
    with sqlite3.connect(database) as connection:
        connection.execute("INSERT INTO notes_note (text) VALUES ('before')")
    live = tmp_path / "live.migrations.json"
    live.write_text(json.dumps({"notes": "0001_initial"}))
    release, env = project(tmp_path, {"0001_initial": INITIAL, **new})
    leaf = sorted(new)[-1]
    (release / ".django.json").write_text(json.dumps(
        {"pending": pending, "non_atomic": non_atomic, "migrations": {"notes": leaf}}))
    snapshot = tmp_path / "snapshot.sqlite3"
    take = (f"sqlite3 {database} \".backup '{snapshot}'\" && "
            f"sqlite3 {database} \"INSERT INTO notes_note (text) VALUES ('meanwhile')\"")
    restore = f"sqlite3 {database} \".restore '{snapshot}'\""
    command = migrate_command(str(release), MANAGE, str(snapshot), take, restore, str(live))
    result = subprocess.run(["sh", "-c", command], env=env, capture_output=True, text=True, timeout=120)
    with sqlite3.connect(database) as connection:
        rows = sorted(text for (text,) in connection.execute("SELECT text FROM notes_note"))
        columns = [row[1] for row in connection.execute("PRAGMA table_info(notes_note)")]
        applied = sorted(name for (name,) in connection.execute(
            "SELECT name FROM django_migrations WHERE app = 'notes'"))
    return result, rows, columns, applied


def test_a_failed_migration_the_database_undid_leaves_everything_written(tmp_path):
    result, rows, columns, applied = migrate_with(
        tmp_path, {"0002_fail": FAILING % ("True", "0001_initial")}, ["notes.0002_fail"], [])
    assert result.returncode == 1
    assert "this migration fails on purpose" in result.stderr
    assert "the database undid the one that failed: it is as it was (no snapshot restored" in result.stderr
    assert rows == ["before", "meanwhile"]
    assert columns == ["id", "text"] and applied == ["0001_initial"]


def test_migrations_that_ran_before_one_failed_are_migrated_back_keeping_what_the_site_wrote(tmp_path):
    result, rows, columns, applied = migrate_with(
        tmp_path, {"0002_mood": MOOD, "0003_fail": FAILING % ("True", "0002_mood")},
        ["notes.0002_mood", "notes.0003_fail"], [])
    assert result.returncode == 1
    assert "those that had run were migrated back to the live release's state" in result.stderr
    assert "restored" not in result.stderr.replace("no snapshot restored", "")
    assert rows == ["before", "meanwhile"]
    assert columns == ["id", "text"] and applied == ["0001_initial"]


def test_a_migration_outside_a_transaction_brings_the_snapshot_back_and_says_since_when(tmp_path):
    result, rows, columns, applied = migrate_with(
        tmp_path, {"0002_fail": FAILING % ("False", "0001_initial")}, ["notes.0002_fail"], ["notes.0002_fail"])
    assert result.returncode == 1
    assert "notes.0002_fail runs outside a transaction" in result.stderr
    assert "restored from the snapshot" in result.stderr and ", taken at 20" in result.stderr
    assert "what the site wrote since then is lost" in result.stderr
    assert rows == ["before"]  # the write after the snapshot is gone, and the run said so
    assert columns == ["id", "text"] and applied == ["0001_initial"]


def fake_manage(folder: Path, fails_on: str, error: str, pending: list[str], non_atomic: tuple = ()) -> Path:
    """A manage command standing in for Django's in `folder`: it notes each call (manage.calls,
    read by `calls`) and fails, printing `error` as PostgreSQL would, on a call that ends with
    `fails_on`; beside it, what the inspection found: these migrations pending."""
    manage = folder / "manage"
    manage.write_text('#!/bin/sh\necho "$*" >> "$0.calls"\n'
                      f'case "$*" in *{shlex.quote(fails_on)}) echo {shlex.quote(error)} >&2; exit 1;; esac\n')
    manage.chmod(0o755)
    leaves = dict(name.split(".") for name in pending)
    (folder / ".django.json").write_text(json.dumps(
        {"pending": pending, "non_atomic": list(non_atomic), "migrations": leaves}))
    return manage


def migrate_by(manage: Path, **limits) -> subprocess.CompletedProcess:
    """migrate_command of the release beside `manage` (fake_manage), the snapshot's steps doing
    nothing."""
    folder = manage.parent
    command = migrate_command(str(folder), str(manage), str(folder / "snapshot.dump"), "true", "false",
                              str(folder / "live.json"), **limits)
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=60)


def calls(manage: Path) -> list[str]:
    return Path(f"{manage}.calls").read_text().splitlines()


LOCK_TIMEOUT = "psycopg.errors.LockNotAvailable: canceling statement due to lock timeout"


def test_a_migration_stopped_by_its_lock_timeout_says_why_and_is_undone(tmp_path):
    manage = fake_manage(tmp_path, " migrate --noinput", LOCK_TIMEOUT, ["notes.0002_mood"])
    started = time.monotonic()
    result = migrate_by(manage, lock_timeout=7)
    assert result.returncode == 1
    assert "canceling statement due to lock timeout" in result.stderr
    waited = "a migration waited more than 7 s (migration_lock_timeout) for a lock another session holds"
    # Tried again twice, after 1 s and 2 s, then stopped for good and undone.
    assert f"{waited}: trying again in 1 s (1 of 2)" in result.stderr
    assert f"{waited}: trying again in 2 s (2 of 2)" in result.stderr
    assert "release again once that session ends\nit was tried 3 times" in result.stderr
    assert time.monotonic() - started >= 3
    made = calls(manage)
    assert made[:3] == ["--lock-timeout 7 migrate --noinput"] * 3  # only the forward migration is limited
    # What held the lock: the database's sessions at work, asked through the app's dbshell.
    assert "the sessions of the database that are not idle (one of them holds the lock):" in result.stderr
    assert made[3] == f"dbshell -- -AtX -c {OPEN_TRANSACTIONS}"
    assert "notes zero --noinput" in made[-1] and "--lock-timeout" not in made[-1]


def test_a_plan_with_a_migration_outside_a_transaction_is_not_tried_again(tmp_path):
    # Stopped by its lock timeout, a migration with atomic = False may have done part of its work.
    manage = fake_manage(tmp_path, " migrate --noinput", LOCK_TIMEOUT, ["notes.0002_mood"],
                         non_atomic=("notes.0002_mood",))
    result = migrate_by(manage, lock_timeout=7)
    assert result.returncode == 1 and "trying again" not in result.stderr
    assert "release again once that session ends" in result.stderr and "it was tried" not in result.stderr
    assert calls(manage).count("--lock-timeout 7 migrate --noinput") == 1


def test_a_migration_statement_stopped_by_its_statement_timeout_is_not_tried_again_and_says_why(tmp_path):
    manage = fake_manage(tmp_path, " migrate --noinput",
                         "psycopg.errors.QueryCanceled: canceling statement due to statement timeout",
                         ["notes.0002_mood"])
    result = migrate_by(manage, lock_timeout=7, statement_timeout=30)
    assert result.returncode == 1 and "trying again" not in result.stderr
    assert ("a migration statement ran longer than 30 s (migration_statement_timeout) and was stopped"
            in result.stderr)
    assert "(migration_lock_timeout)" not in result.stderr
    made = calls(manage)
    assert made[0] == "--lock-timeout 7 --statement-timeout 30 migrate --noinput"
    assert made.count(made[0]) == 1
    # Undone without either limit: migrating back must not be stopped halfway.
    assert "notes zero --noinput" in made[-1] and "timeout" not in made[-1]


def test_with_migrations_kept_until_the_switch_only_those_before_them_run(tmp_path):
    # migration_safety = "switch-first": the gate wrote where each app goes before the switch.
    manage = fake_manage(tmp_path, "migrate auth 0012_b --noinput", "auth failed",
                         ["notes.0002_a", "notes.0003_drop"])
    (tmp_path / ".migrate-first").write_text("notes 0002_a\n")
    result = migrate_by(manage, lock_timeout=7)
    assert result.returncode == 0, result.stderr
    assert calls(manage) == ["--lock-timeout 7 migrate notes 0002_a --noinput"]
    # A failure on the way stops there and is undone like any other.
    Path(f"{manage}.calls").unlink()
    (tmp_path / ".migrate-first").write_text("notes 0002_a\nauth 0012_b\nblog 0002_c\n")
    result = migrate_by(manage, lock_timeout=7)
    assert result.returncode == 1 and "auth failed" in result.stderr
    made = calls(manage)
    assert made[:2] == ["--lock-timeout 7 migrate notes 0002_a --noinput",
                        "--lock-timeout 7 migrate auth 0012_b --noinput"]
    assert not any("blog" in call for call in made) and "notes zero --noinput" in made[-1]


def test_migrations_wait_for_a_backups_dump_holding_the_migration_lock_and_say_so(tmp_path):
    from deploys.djangoapp.core.lock import under_migration_lock

    lock = tmp_path / "locks" / "migration"
    lock.parent.mkdir()
    dumped = tmp_path / "dumped"  # written by the holder before it lets go
    holder = subprocess.Popen(["flock", "-s", str(lock), "sh", "-c", f"sleep 2; touch {dumped}"])
    try:
        wait_until_held(lock)
        result = subprocess.run(["sh", "-c", under_migration_lock(str(lock), "echo migrated")],
                                capture_output=True, text=True, timeout=30)
        let_go_first = dumped.exists()  # the dump had let go before the migrations ran
    finally:
        holder.wait(timeout=10)
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        "waiting for the scheduled commands or the backup's database dump that hold the migration lock to end",
        "migrated"]
    assert let_go_first
