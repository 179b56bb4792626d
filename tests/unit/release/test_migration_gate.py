"""The migration gate on projects made by Django's own tools (startproject, startapp,
makemigrations; the operations makemigrations cannot write, in a migration it made with --empty):
each operation Django ships judged against the live release's models (templates/app/migration-gate.py,
in the project's Django), RunSQL by its statements (django-migration-linter's rules), and the
policy's refusal with its words."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
from pyinfra.api.exceptions import OperationError

from deploys.djangoapp.core import failure
from deploys.djangoapp.site import maintenance
from deploys.djangoapp.release import migration_gate
from deploys.djangoapp.core.context import TEMPLATES
from deploys.djangoapp.release.migration_gate import (
    Finding,
    GateVerdicts,
    check_migrations,
    gate_status,
    judge_statements,
    refusal,
    report,
    settle,
    switch_first_plan,
)
from deploys.djangoapp.settings import problems
from tests.unit.sites import VALID, settings
from tests.unit.steps import Steps

DJANGO_ADMIN = str(Path(sys.executable).parent / "django-admin")

LIVE_MODELS = """
from django.db import models


class Note(models.Model):
    text = models.CharField(max_length=50)
    mood = models.CharField(max_length=20)
    title = models.CharField(max_length=20)
    body = models.TextField(null=True)
    score = models.IntegerField(default=0)
    renamed = models.IntegerField(default=0)
    kept_apart = models.IntegerField(default=0)


class Gone(models.Model):
    name = models.CharField(max_length=10)


class Labelled(models.Model):
    name = models.CharField(max_length=10)

    class Meta:
        db_table = "labelled_old"
        indexes = [models.Index(fields=["name"], name="labelled_name_idx")]
        constraints = [models.UniqueConstraint(fields=["name"], name="labelled_name_unique")]


class Reader(models.Model):
    name = models.CharField(max_length=10)

    class Meta:
        indexes = [models.Index(fields=["name"], name="reader_name_idx")]
"""

NEW_MODELS = """
from django.db import models


class Note(models.Model):
    text = models.CharField(max_length=100)
    mood = models.CharField(max_length=10)
    body = models.TextField()
    score = models.IntegerField(default=0, db_column="points")
    renamed = models.IntegerField(default=0)
    kept_apart = models.IntegerField(default=0)
    extra = models.CharField(max_length=5, null=True)
    required = models.IntegerField(default=1)
    defaulted = models.IntegerField(db_default=1)
    readers = models.ManyToManyField("Reader")

    class Meta:
        indexes = [models.Index(fields=["text"], name="note_text_idx")]
        constraints = [models.CheckConstraint(condition=models.Q(renamed__gte=0), name="renamed_positive")]


class Fresh(models.Model):
    name = models.CharField(max_length=10)


class Labelled(models.Model):
    name = models.CharField(max_length=10)

    class Meta:
        db_table = "labelled_new"


class ReaderManager(models.Manager):
    use_in_migrations = True


class Reader(models.Model):
    name = models.CharField(max_length=10)
    people = ReaderManager()

    class Meta:
        ordering = ["name"]
        unique_together = [("name",)]
        indexes = [models.Index(fields=["name"], name="reader_name_index")]
"""

# Written into the migration `makemigrations --empty` made after the one above.
HAND_WRITTEN = """
    operations = [
        migrations.RenameField("note", "renamed", "renamed_to"),
        migrations.RenameModel("Fresh", "Newer"),
        migrations.SeparateDatabaseAndState(state_operations=[migrations.RemoveField("note", "kept_apart")]),
        migrations.RunSQL("UPDATE notes_note SET mood = 'fine'", migrations.RunSQL.noop),
        migrations.RunSQL('ALTER TABLE "notes_note" DROP COLUMN "kept_apart"'),
        migrations.RunPython(lambda apps, schema_editor: None),
        migrations.RunPython(migrations.RunPython.noop),
        migrations.RunSQL(migrations.RunSQL.noop),
    ]
"""

# Run in the project: the gate's verdicts on the pending migrations, as the inspection gives them
# (the database's own vendor), and as they would be on PostgreSQL.
VERDICTS = """
import json, os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
import django
django.setup()
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
exec(open(sys.argv[1]).read())
executor = MigrationExecutor(connection)
plan = [migration for migration, _ in executor.migration_plan(executor.loader.graph.leaf_nodes())]
verdicts, live = migration_verdicts(executor, plan)
postgres = MigrationGate(executor._create_project_state(with_applied_migrations=True), "postgresql")
print(json.dumps({"verdicts": verdicts, "live": live, "vendor": connection.vendor,
                  "postgresql": postgres.judge_plan(plan)}))
"""


def run(project: Path, *command: str) -> str:
    done = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def manage(project: Path, *arguments: str) -> str:
    return run(project, sys.executable, "manage.py", *arguments)


def make_project(root: Path, models: str, *migrated: str) -> Path:
    """A startproject site with an app `notes` holding `models`, migrated (or only the apps
    `migrated`): the live release."""
    root.mkdir()
    run(root, DJANGO_ADMIN, "startproject", "config", ".")
    manage(root, "startapp", "notes")
    config = root / "config" / "settings.py"
    config.write_text(config.read_text().replace("INSTALLED_APPS = [", 'INSTALLED_APPS = [\n    "notes",'))
    (root / "notes" / "models.py").write_text(models)
    manage(root, "makemigrations", "notes", "--noinput")
    for app in migrated or ("",):
        manage(root, "migrate", *([app] if app else []), "--noinput")
    return root


def empty_migration(project: Path, name: str, operations: str) -> None:
    """makemigrations --empty, its operations then written by hand."""
    manage(project, "makemigrations", "notes", "--empty", "--name", name)
    (path,) = (project / "notes" / "migrations").glob(f"*_{name}.py")
    text = path.read_text()
    body = textwrap.indent(textwrap.dedent(operations).strip("\n"), "    ")
    path.write_text(text[:text.index("    operations = [")] + body + "\n")


def verdicts_of(project: Path) -> dict:
    return json.loads(run(project, sys.executable, "-c", VERDICTS, str(TEMPLATES / "app" / "migration-gate.py")))


@pytest.fixture(scope="module")
def gated(tmp_path_factory) -> dict:
    project = make_project(tmp_path_factory.mktemp("gate") / "site", LIVE_MODELS)
    (project / "notes" / "models.py").write_text(NEW_MODELS)
    manage(project, "makemigrations", "notes", "--noinput")
    empty_migration(project, "by_hand", HAND_WRITTEN)
    return verdicts_of(project)


def by_operation(verdicts: list[dict]) -> dict[str, tuple[str, str, str | None, str | None]]:
    return {v["operation"]: (v["kind"], v["change"], v["table"], v["column"]) for v in verdicts}


def test_each_operation_makemigrations_writes_is_judged_against_the_live_models(gated):
    judged = by_operation(gated["verdicts"])
    assert judged["Create model Fresh"] == ("safe", "new-table", "notes_fresh", None)
    assert judged["Delete model Gone"] == ("unsafe", "drop-table", "notes_gone", None)
    assert judged["Rename table for labelled to labelled_new"] == ("unsafe", "rename-table", "labelled_old", None)
    assert judged["Change Meta options on reader"] == ("safe", "no-change", None, None)
    assert judged["Remove field title from note"] == ("unsafe", "drop-column", "notes_note", "title")
    assert judged["Add field extra to note"] == ("safe", "new-column", "notes_note", "extra")
    assert judged["Add field required to note"] == ("unsafe", "not-null-column", "notes_note", "required")
    assert judged["Add field defaulted to note"] == ("safe", "new-column", "notes_note", "defaulted")
    assert judged["Add field readers to note"] == ("safe", "new-table", "notes_note", None)
    assert judged["Alter field text on note"] == ("safe", "no-change", "notes_note", "text")  # wider
    assert judged["Alter field mood on note"] == ("unsafe", "type", "notes_note", "mood")  # narrower
    assert judged["Alter field body on note"] == ("unsafe", "not-null", "notes_note", "body")
    assert judged["Alter field score on note"] == ("unsafe", "rename-column", "notes_note", "score")
    assert judged["Create index note_text_idx on field(s) text of model note"] == ("safe", "index", "notes_note", None)
    assert judged["Create constraint renamed_positive on model note"] == ("safe", "index", "notes_note", None)
    assert judged["Remove index labelled_name_idx from labelled"] == ("safe", "no-change", None, None)
    assert judged["Remove constraint labelled_name_unique from model labelled"] == ("safe", "no-change", None, None)
    assert judged["Alter unique_together for reader (1 constraint(s))"] == ("safe", "index", "notes_reader", None)
    assert judged["Change managers on reader"] == ("safe", "no-change", None, None)
    # Django ships more than the gate names: judged by their SQL (an index renamed changes nothing read).
    assert judged["Rename index reader_name_idx on reader to reader_name_index"] == ("sql", "sql", None, None)
    settled = {finding.operation: finding for finding in settle(gated)}
    assert settled["Rename index reader_name_idx on reader to reader_name_index"].kind == "safe"
    # The live release's models: what the migrations applied so far describe.
    assert gated["live"]["notes_note"] == ["body", "id", "kept_apart", "mood", "renamed", "score", "text", "title"]
    assert "notes_fresh" not in gated["live"] and gated["vendor"] == "sqlite"


def test_the_operations_written_by_hand_are_judged_too(gated):
    hand = [v for v in gated["verdicts"] if v["migration"].endswith("_by_hand")]
    assert [(v["operation"], v["kind"], v["change"]) for v in hand] == [
        ("Rename field renamed on note to renamed_to", "unsafe", "rename-column"),
        ("Rename model Fresh to Newer", "safe", "unused"),  # a table the live release never had
        # SeparateDatabaseAndState with state operations only: nothing touches the database.
        ("Raw SQL operation", "sql", "sql"),
        ("Raw SQL operation", "sql", "sql"),
        ("Raw Python operation", "python", "python"),
        ("Raw Python operation", "safe", "no-change"),
        ("Raw SQL operation", "safe", "no-change"),
    ]
    assert hand[2]["statements"] == ["UPDATE notes_note SET mood = 'fine';"]
    findings = settle(gated)
    by_hand = [f for f in findings if f.migration.endswith("_by_hand")]
    assert (by_hand[2].kind, by_hand[3].kind) == ("safe", "unsafe")
    assert (by_hand[3].change, by_hand[3].table, by_hand[3].column) == ("drop-column", "notes_note", "kept_apart")


def test_on_postgresql_indexes_and_constraints_on_live_tables_lock(gated):
    judged = by_operation(gated["postgresql"])
    assert judged["Create index note_text_idx on field(s) text of model note"][0] == "locks"
    assert judged["Create constraint renamed_positive on model note"][0] == "locks"
    assert judged["Alter unique_together for reader (1 constraint(s))"][0] == "locks"
    assert judged["Add field readers to note"][0] == "safe"
    assert judged["Add field extra to note"][0] == "safe"


def test_dropping_a_column_takes_two_releases_and_the_gate_lets_the_second_through(tmp_path):
    project = make_project(tmp_path / "site", LIVE_MODELS)
    # Release 1: the code stops using `title`; the models lose it, the table keeps it.
    (project / "notes" / "models.py").write_text(LIVE_MODELS.replace(
        "    title = models.CharField(max_length=20)\n", ""))
    empty_migration(project, "title_out_of_the_models", """
        operations = [migrations.SeparateDatabaseAndState(state_operations=[migrations.RemoveField("note", "title")])]
    """)
    first = verdicts_of(project)
    assert first["verdicts"] == [] and refusal(settings(), "1", settle(first)) is None
    manage(project, "migrate", "--noinput")
    # Release 2: the column goes; the live release (release 1) does not read it.
    empty_migration(project, "drop_title", """
        operations = [migrations.RunSQL('ALTER TABLE "notes_note" DROP COLUMN "title"')]
    """)
    second = settle(verdicts_of(project))
    assert [(f.kind, f.change) for f in second] == [("safe", "sql")]
    assert refusal(settings(), "2", second) is None
    manage(project, "migrate", "--noinput")


def test_django_s_own_data_migrations_are_trusted_and_a_project_s_are_not(tmp_path):
    # Live: contenttypes and the project's notes only; auth's migrations (0011 runs Python) pending.
    project = make_project(tmp_path / "site", LIVE_MODELS, "contenttypes", "notes")
    empty_migration(project, "data", """
        operations = [migrations.RunPython(lambda apps, schema_editor: None)]
    """)
    judged = {v["migration"]: (v["kind"], v["change"]) for v in verdicts_of(project)["verdicts"]
              if v["operation"] == "Raw Python operation"}
    assert judged["auth.0011_update_proxy_permissions"] == ("safe", "django")
    assert judged["notes.0002_data"] == ("python", "python")


def test_sql_is_judged_by_what_it_does_to_what_the_live_release_reads():
    live = {"notes_note": ["id", "mood", "title"]}
    assert judge_statements("notes.0003", "Raw SQL operation", ['ALTER TABLE "notes_note" DROP COLUMN "title";'], live,
                            "postgresql") == Finding("notes.0003", "Raw SQL operation", "unsafe", "drop-column",
                                                     "notes_note", "title")
    assert judge_statements("n.1", "op", ['ALTER TABLE "notes_note" DROP COLUMN "gone";'], live,
                            "postgresql").kind == "safe"
    assert judge_statements("n.1", "op", ['DROP TABLE "notes_old";'], live, "sqlite").kind == "safe"
    assert judge_statements("n.1", "op", ['DROP TABLE "notes_note";'], live, "sqlite").change == "drop-table"
    locking = judge_statements("n.1", "op", ['CREATE INDEX "i" ON "notes_note" ("mood");'], live, "postgresql")
    assert locking == Finding("n.1", "op", "locks", "locks", "notes_note")
    assert locking.words() == "n.1: op: holds a lock on notes_note that stops its writes while it runs (PostgreSQL)"
    assert Finding("n.1", "op", "locks", "locks").words().startswith("n.1: op: holds a lock on its table ")
    assert judge_statements("n.1", "op", ['CREATE INDEX "i" ON "notes_note" ("mood");'], live, "sqlite").kind \
        == "safe"
    unknown = judge_statements("n.1", "op", ["-- could not be shown: ValueError: no"], live, "sqlite")
    assert (unknown.kind, unknown.change, unknown.column) == ("python", "unknown-sql",
                                                              "could not be shown: ValueError: no")


FINDINGS = [
    Finding("notes.0002_auto", "Remove field title from note", "unsafe", "drop-column", "notes_note", "title"),
    Finding("notes.0002_auto", "Add field extra to note", "safe", "new-column", "notes_note", "extra"),
    Finding("notes.0003_data", "Raw Python operation", "python", "python"),
    Finding("notes.0004_index", "Create index i", "locks", "locks", "notes_note"),
]


def test_refuse_names_each_unsafe_operation_with_the_two_release_way_and_the_override():
    said = refusal(settings(), "v7", FINDINGS)
    assert said.splitlines() == [
        "migration_safety: the migrations of release v7 would break the live release while they run (it serves on "
        "until the switch); nothing was changed:",
        "  - notes.0002_auto: Remove field title from note: drops the column notes_note.title, which the live "
        "release reads; first release code that no longer uses it (remove the field with SeparateDatabaseAndState("
        "state_operations=[RemoveField(...)]), and null=True first if it is NOT NULL), then drop the column in a "
        "later release",
        "  - notes.0003_data: Raw Python operation: runs Python (RunPython): what it does to the live release's rows "
        "is not known; if it changes nothing the live release reads, name it in allow_unsafe_migrations",
        "To run them all the same, with the live release serving: "
        "--data allow_unsafe_migrations=notes.0002_auto,notes.0003_data"]


def test_named_migrations_pass_for_one_release_and_allow_passes_all():
    assert refusal(settings(allow_unsafe_migrations="notes.0002_auto"), "v7", FINDINGS).splitlines()[1] \
        .startswith("  - notes.0003_data: ")
    assert refusal(settings(allow_unsafe_migrations="notes.0002_auto, notes.0003_data"), "v7", FINDINGS) is None
    assert refusal(settings(migration_safety="allow"), "v7", FINDINGS) is None
    assert refusal(settings(), "v7", [FINDINGS[1], FINDINGS[3]]) is None  # safe, or only locking


def test_the_report_shows_what_is_not_plainly_safe_or_sums_up():
    assert report(FINDINGS) == [FINDINGS[0].words(), FINDINGS[2].words(),
                                "notes.0004_index: Create index i: holds a lock on notes_note that stops its "
                                "writes while it runs (PostgreSQL)"]
    assert report([FINDINGS[1]]) == ["the 1 pending operations are safe while the live release serves"]
    assert report([]) == ["no pending migrations"]


def test_the_variables_are_checked():
    assert settings().migration_safety == "refuse" and settings().allow_unsafe_migrations == []
    assert problems({**VALID, "migration_safety": "maybe"})[1][0].startswith("migration_safety: ")
    found = problems({**VALID, "allow_unsafe_migrations": "notes.0002; rm -rf /"})[1]
    assert found == ["allow_unsafe_migrations: each must be an app label and a migration name, e.g. "
                     "blog.0003_drop_subtitle (got 'notes.0002; rm -rf /')"]


def test_a_gate_that_could_not_judge_refuses_unless_allowed():
    findings = settle({"error": "LookupError: App 'x' doesn't have a 'Y' model."})
    assert refusal(settings(), "v2", findings).splitlines()[1] == (
        "  - the pending migrations: the migration gate: the gate could not judge them: LookupError: App 'x' "
        "doesn't have a 'Y' model.; set migration_safety=allow for this release to run them unjudged")
    assert refusal(settings(), "v2", findings).splitlines()[-1] == (
        "To run them all the same, with the live release serving: --data migration_safety=allow")
    assert refusal(settings(migration_safety="allow"), "v2", findings) is None


class AnsweringHost:
    """pyinfra's host for a python.call callback: runs `cat` of the inspection's answer."""

    print_prefix = "[web1] "

    def __init__(self, answer: dict | None):
        self.answer, self.asked = answer, []
        self.current_op_global_arguments = {"_sudo": True, "_sudo_user": "root", "_if": None}

    def run_shell_command(self, command, **arguments):
        self.asked.append((command, arguments))
        lines = [json.dumps(self.answer)] if self.answer is not None else []
        return self.answer is not None, type("Output", (), {"stdout_lines": lines})()


def test_the_callback_reads_the_answer_with_the_operations_sudo_and_stops_a_refused_release(caplog):
    caplog.set_level(logging.INFO, logger="pyinfra")
    unsafe = {"pending": ["notes.0002_x"], "gate": {"vendor": "sqlite", "live": {"notes_note": ["id", "title"]},
                                                     "verdicts": [{"migration": "notes.0002_x",
                                                                   "operation": "Remove field title from note",
                                                                   "kind": "unsafe", "change": "drop-column",
                                                                   "table": "notes_note", "column": "title"}]}}
    host = AnsweringHost(unsafe)
    with pytest.raises(OperationError) as refused:
        check_migrations(None, host, settings(), "v2", "/srv/www/mysite/releases/v2/.django.json", "v1")
    assert str(refused.value) == refusal(settings(), "v2", settle(unsafe["gate"]))
    assert host.asked == [("cat /srv/www/mysite/releases/v2/.django.json", {"_sudo": True, "_sudo_user": "root"})]
    check_migrations(None, AnsweringHost(unsafe), settings(allow_unsafe_migrations="notes.0002_x"), "v2", "/a",
                     "v1")
    assert "allow_unsafe_migrations lets notes.0002_x run while the live release serves" in caplog.text
    check_migrations(None, AnsweringHost({"pending": [], "gate": None}), settings(), "v2", "/a", "v1")
    assert "migration gate: no pending migrations" in caplog.text
    # An inspection script from before the gate: told, never passed as safe.
    with pytest.raises(OperationError) as old:
        check_migrations(None, AnsweringHost({"pending": ["notes.0002_x"]}), settings(), "v2", "/a", "v1")
    assert "predates the migration gate: run deploys/skeleton.py" in str(old.value)
    # The first release: nothing serves, nothing to judge (the answer is not even read).
    first = AnsweringHost(unsafe)
    check_migrations(None, first, settings(), "v1", "/a", None)
    assert first.asked == [] and "migration gate: no release serves yet, so none can break" in caplog.text
    with pytest.raises(OperationError) as unread:
        check_migrations(None, AnsweringHost(None), settings(), "v2", "/a", "v1")
    assert str(unread.value) == "the inspection's answer (/a) could not be read"


def test_under_maintenance_the_page_is_up_on_web_hosts_only_while_unsafe_migrations_run(monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="pyinfra")
    monkeypatch.setattr(maintenance, "UNSAFE_MIGRATIONS", set())
    monkeypatch.setattr(migration_gate, "UNSAFE_MIGRATIONS", maintenance.UNSAFE_MIGRATIONS)
    steps = Steps(monkeypatch).replace(maintenance, "server")
    site = settings(migration_safety="maintenance")
    done = []
    maintenance.maintenance_window(site, "v2", "/srv/www/mysite/releases/v2",
                                   migrate=lambda: steps.append("migrate"), switch=lambda: steps.append("switch"))
    assert [step if isinstance(step, str) else step.name for step in steps] == [
        "Maintenance page up while migrating", "migrate", "Maintenance page down: migrations done", "switch",
        "Maintenance page down: the new release serves"]
    up, _, after_migrating, _, after_switching = steps
    # The gate has not found them unsafe (yet): none of it.
    assert not up.runs() and not after_migrating.runs() and not after_switching.runs()
    unsafe = {"pending": ["notes.0002_x"], "gate": {"vendor": "sqlite", "live": {}, "verdicts": [
        {"migration": "notes.0002_x", "operation": "Raw Python operation", "kind": "python", "change": "python",
         "table": None, "column": None}]}}
    # Named for this release: it runs while the live release serves, no page.
    check_migrations(None, AnsweringHost(unsafe), settings(migration_safety="maintenance",
                                                         allow_unsafe_migrations="notes.0002_x"), "v2", "/a", "v1")
    assert not up.runs()
    check_migrations(None, AnsweringHost(unsafe), site, "v2", "/a", "v1")
    # Up from before the migrations until the new release serves: the live one breaks meanwhile.
    assert up.runs() and not after_migrating.runs() and after_switching.runs()
    assert "migration_safety=maintenance: the maintenance page is up on every web host while they run" in caplog.text
    # Asked for by the release (maintenance=during_migrations): up while migrating only.
    steps.clear()
    maintenance.maintenance_window(settings(maintenance="during_migrations"), "v3", "/r",
                                   migrate=lambda: None, switch=lambda: None)
    assert [step.runs() for step in steps] == [True, True, False]
    # Without either, none of it.
    steps.clear()
    maintenance.maintenance_window(settings(), "v2", "/r", migrate=lambda: done.append("migrate"),
                                   switch=lambda: done.append("switch"))
    assert steps == [] and done == ["migrate", "switch"]


def test_status_shows_what_the_gate_said_of_the_live_release_s_migrations(monkeypatch, tmp_path):
    gate = {"vendor": "sqlite", "live": {"notes_note": ["id", "title"]}, "verdicts": [
        {"migration": "notes.0002_x", "operation": "Remove field title from note", "kind": "unsafe",
         "change": "drop-column", "table": "notes_note", "column": "title"}]}
    answer = tmp_path / ".django.json"
    answer.write_text("System check identified some issues\n" + json.dumps({"pending": ["notes.0002_x"], "gate": gate}))
    fact = GateVerdicts()
    read = subprocess.run(["sh", "-c", fact.command(str(answer))], capture_output=True, text=True, check=True)
    assert fact.process(read.stdout.splitlines()) == gate
    assert fact.process([]) is None and fact.process(['{"gate": null}']) is None and fact.process(["[1]"]) is None
    assert fact.process(["not json"]) is None
    assert subprocess.run(["sh", "-c", fact.command(str(tmp_path / "gone"))], capture_output=True).returncode == 0

    fake = Steps(monkeypatch).host(migration_gate, facts={GateVerdicts: gate})
    site = settings(allow_unsafe_migrations="notes.0002_x")
    assert gate_status(site) == ["migration gate of the live release: " + settle(gate)[0].words()]
    assert fake.asked == [(GateVerdicts, {"django_json": "/srv/www/mysite/current/.django.json"})]
    fake.facts[GateVerdicts] = None
    assert gate_status(site) == ["migration gate of the live release: nothing judged (no migrations, or released "
                                 "before the gate)"]
    site._fleet = replace(site.fleet, migration_host="web2")  # another host migrates
    assert gate_status(site) == []


SWITCH_FIRST_LIVE = """
from django.db import models


class Spare(models.Model):
    name = models.CharField(max_length=10)


class Note(models.Model):
    text = models.CharField(max_length=50)
    title = models.CharField(max_length=20, null=True)
"""


def test_switch_first_runs_the_drops_the_new_code_works_beside_after_the_switch(tmp_path):
    project = make_project(tmp_path / "site", SWITCH_FIRST_LIVE)
    models = project / "notes" / "models.py"
    # The new release: a column added (its own migration), then the nullable title and the Spare
    # table dropped (the next one), as makemigrations writes them when the code changes twice.
    models.write_text(SWITCH_FIRST_LIVE + "    extra = models.CharField(max_length=5, null=True)\n")
    manage(project, "makemigrations", "notes", "--noinput", "--name", "extra")
    models.write_text(SWITCH_FIRST_LIVE.replace("    title = models.CharField(max_length=20, null=True)\n",
                                                "    extra = models.CharField(max_length=5, null=True)\n")
                      .replace("class Spare(models.Model):\n    name = models.CharField(max_length=10)\n", ""))
    manage(project, "makemigrations", "notes", "--noinput", "--name", "drops")
    findings = settle(verdicts_of(project))
    assert {(f.operation, f.contract) for f in findings if f.kind == "unsafe"} == {
        ("Remove field title from note", True), ("Delete model Spare", True)}
    pending = ["notes.0002_extra", "notes.0003_drops"]
    plan = switch_first_plan(findings, pending, [], set())
    assert plan == migration_gate.SwitchFirst(["notes.0002_extra"], ["notes.0003_drops"], [])
    assert plan.targets() == [("notes", "0002_extra")]
    assert refusal(settings(migration_safety="switch-first"), "v2", findings, plan) is None
    # What switch-first relies on: the new code works on the schema before the drops ...
    manage(project, "migrate", "notes", "0002_extra", "--noinput")
    manage(project, "shell", "-c", "from notes.models import Note; Note.objects.create(text='new', extra='x')")
    # ... and the drops run once it serves.
    manage(project, "migrate", "--noinput")
    assert "[X] 0003_drops" in manage(project, "showmigrations", "notes")
    # In refuse mode the same drops are refused, with switch-first named as a way out.
    refused = refusal(settings(), "v2", findings)
    assert "or let the release drop it once the new code serves: migration_safety=switch-first" in refused


def test_switch_first_refuses_what_the_new_code_cannot_work_beside_or_may_need(tmp_path):
    live = SWITCH_FIRST_LIVE.replace("    title = models.CharField(max_length=20, null=True)\n",
                                     "    code = models.CharField(max_length=5)\n"
                                     "    spare = models.ForeignKey(Spare, null=True, on_delete=models.SET_NULL)\n")
    project = make_project(tmp_path / "site", live)
    models = project / "notes" / "models.py"
    # Why NOT NULL is refused: code without the column cannot insert while the column is there.
    models.write_text(SWITCH_FIRST_LIVE.replace("    title = models.CharField(max_length=20, null=True)\n", ""))
    inserted = subprocess.run([sys.executable, "manage.py", "shell", "-c",
                               "from notes.models import Note; Note.objects.create(text='new')"],
                              cwd=project, capture_output=True, text=True)
    assert inserted.returncode != 0 and "NOT NULL constraint failed: notes_note.code" in inserted.stderr
    models.write_text(SWITCH_FIRST_LIVE.replace("    title = models.CharField(max_length=20, null=True)\n",
                                                "    extra = models.CharField(max_length=5, null=True)\n"))
    manage(project, "makemigrations", "notes", "--noinput", "--name", "mixed")
    findings = settle(verdicts_of(project))
    plan = switch_first_plan(findings, ["notes.0002_mixed"], ["notes.0002_mixed"], set())
    assert plan.before == [] and plan.after == ["notes.0002_mixed"]
    problems = "\n".join(plan.problems)
    assert "notes.0002_mixed runs outside a transaction" in problems
    # NOT NULL without a database default: the new code's inserts would fail on it.
    assert "drops the column notes_note.code" in problems and "cannot work beside it" in problems
    # A foreign key: the new code's deletes of the rows it points at would fail on it.
    assert "drops the column notes_note.spare_id" in problems
    # Added in the same migration as the drops: the new code may need it before the switch.
    assert "Add field extra to note: comes after notes.0002_mixed" in problems
    refused = refusal(settings(migration_safety="switch-first"), "v2", findings, plan)
    assert refused.startswith("migration_safety=switch-first: the migrations of release v2 from notes.0002_mixed on")
    assert refused.splitlines()[-1] == ("To run them all the same, with the live release serving: "
                                        "--data allow_unsafe_migrations=notes.0002_mixed")
    # Nothing unsafe: everything runs before the switch, as under refuse.
    safe = [Finding("notes.0002_x", "Add field extra to note", "safe", "new-column", "notes_note", "extra")]
    assert switch_first_plan(safe, ["notes.0002_x"], [], set()) == migration_gate.SwitchFirst(
        ["notes.0002_x"], [], [])


def test_switch_first_callbacks_write_what_runs_first_and_run_the_rest_after_the_switch(monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="pyinfra")
    monkeypatch.setattr(migration_gate, "AFTER_SWITCH", {})
    monkeypatch.setattr(migration_gate, "CONTRACT_FAILED", set())
    drop = {"migration": "notes.0003_drops", "operation": "Remove field title from note", "kind": "unsafe",
            "change": "drop-column", "table": "notes_note", "column": "title", "contract": True}
    answer = {"pending": ["notes.0002_extra", "notes.0003_drops"], "non_atomic": [],
              "gate": {"vendor": "postgresql", "live": {"notes_note": ["id", "title"]}, "verdicts": [drop]}}
    site = settings(migration_safety="switch-first", database="postgresql", migration_statement_timeout=30,
                    django_environment_variables={"DJANGO_DB_PASSWORD": "not-a-secret"})
    host = AnsweringHost(answer)
    check_migrations(None, host, site, "v2", "/a", "v1")
    written, arguments = host.asked[1]
    assert written == f"printf %s 'notes 0002_extra\n' > {site.releases_dir}/v2/.migrate-first"
    assert arguments == {"_sudo": True, "_sudo_user": "root"}
    assert migration_gate.AFTER_SWITCH == {"v2": ["notes.0003_drops"]}
    assert "switch-first: notes.0002_extra run before the switch; notes.0003_drops once the new release serves" \
        in caplog.text

    class Migrating(AnsweringHost):
        def __init__(self, works: bool):
            super().__init__({})
            self.works = works

        def run_shell_command(self, command, **arguments):
            self.asked.append((command, arguments))
            return self.works, type("Output", (), {"output_lines": ["Applying notes.0003_drops..."]})()

    after = Migrating(True)
    migration_gate.contract_after_switch(None, after, site, "v2", "/srv/www/mysite/bin/manage --release r")
    (command, _), = after.asked
    assert "flock -o" in command and f"{site.migration_lock}" in command
    assert "--lock-timeout 2 --statement-timeout 30 migrate --noinput" in command
    assert "after the switch, notes.0003_drops ran" in caplog.text
    migration_gate.fail_if_contract_failed(None, after, site, "v2")  # nothing failed
    # A failure: said, the release stays live, and the run fails at its end with nothing undone.
    failed = Migrating(False)
    migration_gate.contract_after_switch(None, failed, site, "v2", "manage")
    assert "release v2 stays live, it does not read what they drop" in caplog.text
    failure._cleanups["web1"] = {"the deploy": "switch back"}
    with pytest.raises(OperationError) as stopped:
        migration_gate.fail_if_contract_failed(None, failed, site, "v2")
    assert "release v2 is live, but its migrations after the switch failed" in str(stopped.value)
    assert failure._cleanups == {}
    # A release with nothing kept back runs nothing after the switch.
    quiet = Migrating(True)
    migration_gate.contract_after_switch(None, quiet, site, "v3", "manage")
    assert quiet.asked == []


def test_a_dry_run_judges_the_source_beside_the_live_virtualenv_as_the_app_user(tmp_path):
    site = settings(django_deployment_root_folder=str(tmp_path / "root"), uwsgi_group="nogroup")
    venv = tmp_path / "root" / "venvs" / "abc"
    venv.mkdir(parents=True)
    Path(site.releases_dir, "v1").mkdir(parents=True)
    Path(site.releases_dir, "v1", ".venv").symlink_to(venv)
    Path(site.current_link).symlink_to(Path(site.releases_dir, "v1"))
    # bin/manage standing in: what it was asked and what it found, then an answer.
    manage = Path(site.manage_command)
    manage.parent.mkdir(parents=True)
    manage.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$0.args"; cat "$2/REVISION"; readlink "$2/.venv"; '
                      'stat -c "%a %G" "$2"; cat "$2/app/views.py"; ls "$2"\n')
    manage.chmod(0o755)
    source = tmp_path / "source"
    (source / "app").mkdir(parents=True)
    (source / "app" / "views.py").write_text("x = 1\n")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    subprocess.run(["tar", "-czf", str(scratch / "source.tar.gz"), "-C", str(source), "."], check=True)
    done = subprocess.run(["sh", "-c", migration_gate.dry_run_gate_command(site, str(scratch))],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["dry-run", str(venv), "750 nogroup", "x = 1", "REVISION", "app"]  # the archive gone
    arguments = Path(f"{manage}.args").read_text().splitlines()
    assert arguments[:5] == ["--release", str(scratch), "shell", "--verbosity", "0"]
    assert arguments[5:] == ["-c", f"exec(open({site.project_root + '/bin/inspect-release.py'!r}).read()); "
                                   "print(json.dumps(pending_migrations(True)))"]
