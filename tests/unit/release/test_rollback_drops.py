"""What migrating back would drop (templates/app/rollback-drops.py, through the commands and the
fact a rollback runs), against a real Django project on sqlite: the tables and columns a newer
release added, with the rows that hold data in them, named before anything is dropped; the
migration step refuses to drop them unless told it may."""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from deploys.djangoapp.release import rollback_steps
from deploys.djangoapp.release.rollback_steps import (DroppedData, dropped_data_command, migrate_back_command,
                                              refuse_to_drop_data_command)
from deploys.djangoapp.settings import DeployRefused
from tests.unit.sites import settings
from tests.unit.steps import Steps

SETTINGS = """SECRET_KEY = "test"
INSTALLED_APPS = ["notes"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": %r}}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
"""
INITIAL = """from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    operations = [migrations.CreateModel("Note", [
        ("id", models.AutoField(primary_key=True)), ("text", models.TextField())])]
"""
# The newer release: a column on the old table, a table of its own (with a many-to-many table),
# a column added to that new table, and a table created and deleted again (nothing of it left).
NEWER = {
    "0002_mood": """from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("notes", "0001_initial")]
    operations = [migrations.AddField("note", "mood", models.TextField(default="ok")),
                  migrations.AddField("note", "remark", models.TextField(null=True))]
""",
    "0003_tag": """from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("notes", "0002_mood")]
    operations = [
        migrations.CreateModel("Tag", [("id", models.AutoField(primary_key=True)), ("name", models.TextField()),
                                       ("notes", models.ManyToManyField("notes.Note"))]),
        migrations.CreateModel("Scratch", [("id", models.AutoField(primary_key=True))]),
        migrations.DeleteModel("Scratch"),
    ]
""",
    "0004_tag_colour": """from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("notes", "0003_tag")]
    operations = [migrations.AddField("tag", "colour", models.TextField(default="red"))]
""",
}
IRREVERSIBLE = """from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("notes", "0004_tag_colour")]
    operations = [migrations.RunPython(lambda apps, schema_editor: None)]
"""

MANAGE = f"{sys.executable} -m django"


def project(tmp_path: Path, migrations: dict[str, str]) -> dict:
    """A project whose app `notes` has `migrations`, all applied; the environment its manage
    command runs in."""
    release = tmp_path / "release"
    app = release / "notes"
    (app / "migrations").mkdir(parents=True)
    (app / "__init__.py").write_text("")
    (app / "migrations" / "__init__.py").write_text("")
    (app / "models.py").write_text("")
    for name, source in migrations.items():
        (app / "migrations" / f"{name}.py").write_text(source)
    (release / "site_settings.py").write_text(SETTINGS % str(tmp_path / "db.sqlite3"))
    env = {**os.environ, "PYTHONPATH": str(release), "DJANGO_SETTINGS_MODULE": "site_settings"}
    migrated = subprocess.run(f"{MANAGE} migrate --noinput", shell=True, env=env, capture_output=True, text=True)
    assert migrated.returncode == 0, migrated.stderr
    return env


def sql(tmp_path: Path, statement: str) -> list:
    with sqlite3.connect(tmp_path / "db.sqlite3") as connection:
        return connection.execute(statement).fetchall()


def tables(tmp_path: Path) -> list[str]:
    return sorted(name for (name,) in sql(tmp_path, "SELECT name FROM sqlite_master WHERE type = 'table' "
                                                    "AND name LIKE 'notes_%'"))


def dropped(tmp_path: Path, env: dict, steps) -> dict:
    """The fact's answer, from the command it runs."""
    fact = DroppedData()
    answer = subprocess.run(["sh", "-c", fact.command(MANAGE, steps)], env=env, capture_output=True, text=True,
                            timeout=60)
    assert answer.returncode == 0, answer.stderr
    return fact.process(answer.stdout.splitlines())


def test_the_tables_and_columns_a_newer_release_added_are_named_with_the_rows_in_them(tmp_path):
    env = project(tmp_path, {"0001_initial": INITIAL, **NEWER})
    sql(tmp_path, "INSERT INTO notes_note (text, mood, remark) VALUES ('a', 'ok', NULL), ('b', 'ok', 'seen'), ('c', 'ok', NULL)")
    sql(tmp_path, "INSERT INTO notes_tag (name, colour) VALUES ('x', 'red'), ('y', 'blue')")
    sql(tmp_path, "INSERT INTO notes_tag_notes (tag_id, note_id) VALUES (1, 1)")

    found = dropped(tmp_path, env, [("notes", "0001_initial")])
    assert found["irreversible"] == []
    # Newest first, as they are undone; the new table's column goes with it, and the table
    # created and deleted again is not there to drop.
    assert found["holding_data"] == [
        "table notes_tag (2 rows, notes.0003_tag)",
        "table notes_tag_notes (1 row, notes.0003_tag)",
        "column notes_note.mood (3 rows, notes.0002_mood)",
        "column notes_note.remark (1 row, notes.0002_mood)",
    ]
    assert found["empty"] == []

    # Back to 0003 only the new table's column goes; back to "zero" the first table too.
    assert dropped(tmp_path, env, [("notes", "0003_tag")])["holding_data"] == [
        "column notes_tag.colour (2 rows, notes.0004_tag_colour)"]
    assert dropped(tmp_path, env, [("notes", "zero")])["holding_data"][-1] == "table notes_note (3 rows, notes.0001_initial)"
    assert tables(tmp_path) == ["notes_note", "notes_tag", "notes_tag_notes"]  # counting changed nothing


def test_empty_ones_are_named_apart_and_nothing_is_refused_for_them(tmp_path):
    env = project(tmp_path, {"0001_initial": INITIAL, **NEWER})
    found = dropped(tmp_path, env, [("notes", "0001_initial")])
    assert found["holding_data"] == []
    assert found["empty"] == ["table notes_tag", "table notes_tag_notes", "column notes_note.mood",
                              "column notes_note.remark"]
    refused = subprocess.run(["sh", "-c", refuse_to_drop_data_command(MANAGE, [("notes", "0001_initial")], "site")],
                             env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 0, refused.stderr


def test_migrating_back_refuses_to_drop_rows_unless_told_it_may(tmp_path):
    env = project(tmp_path, {"0001_initial": INITIAL, **NEWER})
    sql(tmp_path, "INSERT INTO notes_note (text, mood) VALUES ('written under the newer release', 'ok')")
    sql(tmp_path, "INSERT INTO notes_tag (name, colour) VALUES ('x', 'red')")
    steps = [("notes", "0001_initial")]

    refused = subprocess.run(
        ["sh", "-c", migrate_back_command(MANAGE, steps, None, None, refuse_to_drop_data_command(MANAGE, steps, "site"))],
        env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1
    assert ("cannot roll back: migrating back drops data: table notes_tag (1 row, notes.0003_tag); "
            "column notes_note.mood (1 row, notes.0002_mood); run with --data rollback_drop_data=site "
            "to drop it") in refused.stderr
    assert tables(tmp_path) == ["notes_note", "notes_tag", "notes_tag_notes"]
    assert sql(tmp_path, "SELECT name FROM notes_tag") == [("x",)]

    confirmed = subprocess.run(["sh", "-c", migrate_back_command(MANAGE, steps, None, None, None)],
                               env=env, capture_output=True, text=True, timeout=120)
    assert confirmed.returncode == 0, confirmed.stderr
    assert tables(tmp_path) == ["notes_note"]
    assert sql(tmp_path, "SELECT text FROM notes_note") == [("written under the newer release",)]


def test_over_an_irreversible_migration_the_snapshot_decides_not_the_count(tmp_path):
    env = project(tmp_path, {"0001_initial": INITIAL, **NEWER, "0005_irreversible": IRREVERSIBLE})
    sql(tmp_path, "INSERT INTO notes_tag (name, colour) VALUES ('x', 'red')")
    found = dropped(tmp_path, env, [("notes", "0001_initial")])
    assert found["irreversible"] == ["notes.0005_irreversible"]
    refused = subprocess.run(
        ["sh", "-c", migrate_back_command(MANAGE, [("notes", "0001_initial")], None, None,
                                          refuse_to_drop_data_command(MANAGE, [("notes", "0001_initial")], "site"))],
        env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1
    assert "these migrations cannot be undone" in refused.stderr and "drops data" not in refused.stderr


def test_what_django_says_when_it_cannot_tell_reaches_the_operator_with_control_characters_shown():
    fact = DroppedData()
    assert fact.process(["Traceback ...", "ImproperlyConfigured: \x1b[2Jno", DroppedData.FAILED]) == {
        "error": "Traceback ...\nImproperlyConfigured: \\x1b[2Jno"}
    answer = {"drops": [], "irreversible": [], "holding_data": [], "empty": []}
    assert fact.process(["a warning the settings print", json.dumps(answer)]) == answer
    assert fact.process([]) == {"error": ""}  # nothing said at all: it could not tell either


def test_the_steps_go_into_the_program_as_data(tmp_path):
    command = dropped_data_command("manage", [("it's", "zero")])
    assert "print_dropped_data([[\"it's\", 'zero']])" in subprocess.run(
        ["sh", "-c", f"printf '%s' {command.split(' -c ', 1)[1]}"], capture_output=True, text=True).stdout


class Said:
    """pyinfra's logger for the deploy code: what it was told, by level."""

    def __init__(self):
        self.lines: list[tuple[str, str]] = []

    def info(self, text):
        self.lines.append(("info", text))

    def warning(self, text):
        self.lines.append(("warning", text))


def checking(monkeypatch, found: dict, **overrides):
    """check_dropped_data on web1 of mysite, DroppedData finding `found`: what it said."""
    fake = Steps(monkeypatch).host(rollback_steps, facts={DroppedData: found})
    said = Said()
    monkeypatch.setattr(rollback_steps, "logger", said)
    rollback_steps.check_dropped_data(settings(**overrides), "/m/manage", [("guestbook", "0001_initial")], "v1")
    assert fake.asked == [(DroppedData, {"manage": "/m/manage", "steps": [("guestbook", "0001_initial")]})]
    return said.lines


def test_a_rollback_that_drops_rows_is_refused_unless_confirmed_and_then_said(monkeypatch):
    found = {"irreversible": False, "holding_data": ["guestbook_tag (3 rows)", "guestbook_note.mood\x1b[31m (2 rows)"],
             "empty": ["guestbook_empty"]}
    with pytest.raises(DeployRefused) as refused:
        checking(monkeypatch, found)
    assert str(refused.value) == (
        "host web1: migrating back to release v1 drops data: guestbook_tag (3 rows); "
        "guestbook_note.mood\\x1b[31m (2 rows); run with --data rollback_drop_data=mysite to drop it; "
        "nothing was changed")
    assert checking(monkeypatch, found, rollback_drop_data="mysite") == [
        ("info", "[web1] migrating back to release v1 drops, empty: guestbook_empty"),
        ("warning", "[web1] rollback_drop_data: migrating back to release v1 drops guestbook_tag (3 rows); "
                    "guestbook_note.mood\\x1b[31m (2 rows)")]
    # Only empty ones: said, never refused; nothing at all: nothing said.
    assert checking(monkeypatch, {**found, "holding_data": []}) == [
        ("info", "[web1] migrating back to release v1 drops, empty: guestbook_empty")]
    assert checking(monkeypatch, {**found, "holding_data": [], "empty": []}) == []
    # Irreversible: the migration step decides (refuses, or restores the snapshot), not the rows.
    assert checking(monkeypatch, {**found, "irreversible": True}) == []


def test_a_rollback_is_refused_when_django_cannot_tell_what_it_drops(monkeypatch):
    with pytest.raises(DeployRefused) as refused:
        checking(monkeypatch, {"error": "Traceback: no module named x"})
    assert str(refused.value) == ("host web1: cannot tell what migrating back to release v1 drops; the live "
                                  "release's Django said:\nTraceback: no module named x\nnothing was changed")
