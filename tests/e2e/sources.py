"""Versions of the example app for release tests: a copy of example/ with changes applied."""

from __future__ import annotations

import shutil
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "example"

MOOD_FIELD = '    mood = models.CharField(max_length=20, default="fine", db_default="fine")\n'
MOOD_MIGRATION = '''from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("guestbook", "0001_initial")]
    operations = [migrations.AddField("note", "mood", models.CharField(default="fine", db_default="fine",
                                                                      max_length=20))]
'''
FAILING_MIGRATION = '''from django.db import migrations


def fail(apps, schema_editor):
    raise RuntimeError("this migration fails on purpose")


class Migration(migrations.Migration):
    dependencies = [("guestbook", "0002_note_mood")]
    operations = [migrations.RunPython(fail)]
'''
# Outside a transaction (atomic = False): the table it creates stays when the step after it fails.
HALF_DONE_MIGRATION = '''from django.db import migrations, models


def fail(apps, schema_editor):
    raise RuntimeError("this migration fails on purpose, half done")


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("guestbook", "0002_note_mood")]
    operations = [migrations.CreateModel("Half", [("id", models.AutoField(primary_key=True))]),
                  migrations.RunPython(fail)]
'''
SLOW_MIGRATION = '''import time

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("guestbook", "0002_note_mood")]
    operations = [migrations.RunPython(lambda apps, schema_editor: time.sleep(6), migrations.RunPython.noop)]
'''
IRREVERSIBLE_MIGRATION = '''from django.db import migrations


def cheer_up(apps, schema_editor):
    apps.get_model("guestbook", "Note").objects.update(mood="cheerful")


class Migration(migrations.Migration):
    dependencies = [("guestbook", "0002_note_mood")]
    operations = [migrations.RunPython(cheer_up)]  # no reverse_code: cannot be undone
'''
TAG_MODEL = """

class Tag(models.Model):
    name = models.CharField(max_length=20)
"""
TAG_MIGRATION = '''from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("guestbook", "0002_note_mood")]
    operations = [migrations.CreateModel("Tag", [("id", models.AutoField(primary_key=True)),
                                                 ("name", models.CharField(max_length=20))])]
'''


# One statement that runs three seconds (PostgreSQL): longer than a migration_statement_timeout of 1.
LONG_STATEMENT_MIGRATION = '''from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("guestbook", "0002_note_mood")]
    operations = [migrations.RunSQL("SELECT pg_sleep(3)", migrations.RunSQL.noop)]
'''
DROP_MOOD_MIGRATION = '''from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("guestbook", "0002_note_mood")]
    operations = [migrations.RemoveField("note", "mood")]
'''
# The test migrations that run Python (RunPython), which the migration gate refuses unless named
# (allow_unsafe_migrations): the tests that release them are about what follows.
RUNS_PYTHON = "guestbook.0003_fail,guestbook.0004_fail,guestbook.0003_half,guestbook.0003_slow,guestbook.0003_cheer_up"


def example_source(dest: Path, version: str = "v1", *, mood_migration: bool = False,
                   failing_migration: bool = False, irreversible_migration: bool = False,
                   slow_migration: bool = False, tag_table: bool = False, half_done_migration: bool = False,
                   mood_dropped: bool = False, long_statement: bool = False,
                   failing_health: bool = False, failing_check: bool = False,
                   required_secret: str | None = None) -> Path:
    """A copy of the example app at `dest`, its stylesheet saying `version`. tag_table: a new
    table (guestbook_tag) after the mood migration; with failing_migration, the failing one comes after
    it. half_done_migration: one outside a transaction that creates a table (guestbook_half), then fails.
    mood_dropped: the mood column, added by the mood migration, dropped again (the model without it).
    long_statement: after the mood migration, one whose statement runs three seconds (PostgreSQL)."""
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("__pycache__", "staticfiles", "*.sqlite3"))
    stylesheet = dest / "guestbook" / "static" / "guestbook" / "site.css"
    stylesheet.write_text(stylesheet.read_text().replace("guestbook stylesheet v1", f"guestbook stylesheet {version}"))
    if mood_migration or failing_migration or irreversible_migration or slow_migration or tag_table \
            or half_done_migration or long_statement:
        models = dest / "guestbook" / "models.py"
        models.write_text(models.read_text().replace("    created_at =", MOOD_FIELD + "    created_at =", 1))
        (dest / "guestbook" / "migrations" / "0002_note_mood.py").write_text(MOOD_MIGRATION)
    if long_statement:
        (dest / "guestbook" / "migrations" / "0003_long_statement.py").write_text(LONG_STATEMENT_MIGRATION)
    if tag_table:
        models = dest / "guestbook" / "models.py"
        models.write_text(models.read_text() + TAG_MODEL)
        (dest / "guestbook" / "migrations" / "0003_tag.py").write_text(TAG_MIGRATION)
    if failing_migration and tag_table:
        (dest / "guestbook" / "migrations" / "0004_fail.py").write_text(
            FAILING_MIGRATION.replace("0002_note_mood", "0003_tag"))
    elif failing_migration:
        (dest / "guestbook" / "migrations" / "0003_fail.py").write_text(FAILING_MIGRATION)
    if half_done_migration:
        (dest / "guestbook" / "migrations" / "0003_half.py").write_text(HALF_DONE_MIGRATION)
    if mood_dropped:
        (dest / "guestbook" / "migrations" / "0002_note_mood.py").write_text(MOOD_MIGRATION)
        (dest / "guestbook" / "migrations" / "0003_remove_mood.py").write_text(DROP_MOOD_MIGRATION)
    if irreversible_migration:
        (dest / "guestbook" / "migrations" / "0003_cheer_up.py").write_text(IRREVERSIBLE_MIGRATION)
    if slow_migration:  # six seconds: long enough to kill a run while it migrates
        (dest / "guestbook" / "migrations" / "0003_slow.py").write_text(SLOW_MIGRATION)
    if failing_check:
        # A relation to a model that does not exist: system check error fields.E300.
        models = dest / "guestbook" / "models.py"
        models.write_text(models.read_text().replace(
            "    created_at =", '    broken = models.ForeignKey("guestbook.Nope", on_delete=models.CASCADE)\n    created_at =', 1))
    if required_secret:
        settings = dest / "exampleapp" / "settings.py"
        settings.write_text(settings.read_text() + (
            f"\nif not setting({required_secret!r}):\n"
            f"    raise ImproperlyConfigured({required_secret!r} + ' is missing from the secrets')\n"))
    if failing_health:
        views = dest / "guestbook" / "views.py"
        views.write_text(views.read_text().replace(
            '    with connection.cursor() as cursor:\n        cursor.execute("SELECT 1")\n',
            '    return JsonResponse({"status": "broken on purpose"}, status=500)\n'))
        assert "broken on purpose" in views.read_text()
    return dest
