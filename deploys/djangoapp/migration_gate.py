"""The migration gate: whether a release's pending migrations may run while the live release still
serves, on the schema they make.

The new release's Django judges each pending operation against the live release's models, in the
inspection (templates/app/migration-gate.py): a dropped or renamed column the live code reads, a
NOT NULL column it does not write, a narrowed type, RunPython. RunSQL's statements are judged here,
on the control machine, with django-migration-linter's rules, against the same models. Then
migration_safety decides: "refuse" (the default) stops the release before its migrations run,
naming each unsafe operation and how to make the change in two releases; "maintenance" runs
them behind the maintenance page on every web host (maintenance.py); "allow" runs them.
allow_unsafe_migrations lets named migrations through for one release.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Optional

from pyinfra import host, logger
from pyinfra.api import FactBase
from pyinfra.api.exceptions import OperationError

from .commands import run_as_operation
from .maintenance import UNSAFE_MIGRATIONS
from .settings import Settings

q = shlex.quote

# What each change does, in words ({table}, {column} filled in), and how to make it in two releases.
CHANGES = {
    "drop-table": ("drops the table {table}, which the live release reads",
                   "first release code that no longer uses it (remove the model with SeparateDatabaseAndState("
                   "state_operations=[DeleteModel(...)])), then drop the table in a later release"),
    "drop-column": ("drops the column {table}.{column}, which the live release reads",
                    "first release code that no longer uses it (remove the field with SeparateDatabaseAndState("
                    "state_operations=[RemoveField(...)]), and null=True first if it is NOT NULL), then drop the "
                    "column in a later release"),
    "rename-table": ("renames the table {table}, which the live release reads",
                     "add the new table beside the old one and write both; read the new one and drop the old in "
                     "a later release"),
    "rename-column": ("renames the column {table}.{column}, which the live release reads",
                      "add the new column beside the old one and write both; read the new one and drop the old "
                      "in a later release"),
    "not-null-column": ("adds {table}.{column} NOT NULL without a database default: the live release inserts "
                        "rows without it",
                        "give it null=True or a db_default (Django 5.0 and later); make it NOT NULL in a later "
                        "release"),
    "not-null": ("makes {table}.{column} NOT NULL, which the live release may leave empty",
                 "release code that always fills it first (or give it a db_default), then make it NOT NULL"),
    "type": ("changes the type of {table}.{column}: what the live release writes may not fit",
             "add a column of the new type beside it and copy the rows; switch to it in a later release"),
    "unique": ("adds a unique constraint the live release may break",
               "release code that writes no duplicates first, then add the constraint"),
    "python": ("runs Python (RunPython): what it does to the live release's rows is not known",
               "if it changes nothing the live release reads, name it in allow_unsafe_migrations"),
    "unknown-sql": ("runs SQL that could not be shown: {column}",
                    "if it changes nothing the live release reads, name it in allow_unsafe_migrations"),
    "sql-rule": ("runs SQL that django-migration-linter flags: {column}",
                 "if it changes nothing the live release reads, name it in allow_unsafe_migrations"),
    "gate-error": ("the gate could not judge them: {column}",
                   "set migration_safety=allow for this release to run them unjudged"),
    "locks": ("holds a lock on {table} that stops its writes while it runs (PostgreSQL)", ""),
}
# django-migration-linter's codes for what SQL does -> the gate's changes.
LINTER_CHANGES = {"DROP_TABLE": "drop-table", "DROP_COLUMN": "drop-column", "RENAME_TABLE": "rename-table",
                  "RENAME_COLUMN": "rename-column", "NOT_NULL": "not-null", "ALTER_COLUMN": "type",
                  "ADD_UNIQUE": "unique"}
BLOCKING = ("unsafe", "python")


@dataclass(frozen=True)
class Finding:
    """One pending operation, judged: kind is safe, unsafe, python (unknown) or locks."""

    migration: str
    operation: str
    kind: str
    change: str
    table: Optional[str] = None
    column: Optional[str] = None

    def words(self) -> str:
        what, fix = CHANGES.get(self.change, ("{column}", ""))
        said = f"{self.migration}: {self.operation}: {what.format(table=self.table or 'its table', column=self.column)}"
        return f"{said}; {fix}" if fix and self.kind in BLOCKING else said


def _reads(live: dict[str, list[str]], table: Optional[str], column: Optional[str]) -> bool:
    """Whether the live release's models have the table (and column); not known counts as read."""
    if table is None:
        return True
    return table in live and (column is None or column in live[table])


def judge_statements(migration: str, operation: str, statements: list[str], live: dict[str, list[str]],
                     vendor: str) -> Finding:
    """RunSQL (or an operation Django does not ship), by what its SQL does."""
    unknown = [statement for statement in statements if statement.startswith("-- could not be shown")]
    if unknown:
        return Finding(migration, operation, "python", "unknown-sql", None, unknown[0].removeprefix("-- "))
    # Imported here: it imports Django (about 0.1 s), which a run without RunSQL need not pay.
    from django_migration_linter.sql_analyser import SqliteAnalyser, analyse_sql_statements, get_sql_analyser_class

    analyser = get_sql_analyser_class(vendor)
    errors, _, warnings = analyse_sql_statements(analyser, statements)
    # A rule over several statements names no table: each statement's is looked at (the sqlite
    # analyser's finder reads `CREATE INDEX ... ON "table"` too, which is the same SQL everywhere).
    named = [table for table in map(SqliteAnalyser.detect_table, statements) if table]
    for issue in errors:
        tables = [issue.table] if issue.table else named or [None]
        for table in tables:
            if _reads(live, table, issue.column):
                if issue.code in LINTER_CHANGES:
                    return Finding(migration, operation, "unsafe", LINTER_CHANGES[issue.code], table, issue.column)
                return Finding(migration, operation, "unsafe", "sql-rule", table, issue.message)
    if warnings and vendor == "postgresql":
        return Finding(migration, operation, "locks", "locks", warnings[0].table or next(iter(named), None))
    return Finding(migration, operation, "safe", "sql")


def settle(gate: dict) -> list[Finding]:
    """The inspection's verdicts ({"verdicts", "live", "vendor"}), RunSQL's judged; or, when the
    inspection could not judge ({"error"}), one finding that says why."""
    if "error" in gate:
        return [Finding("the pending migrations", "the migration gate", "python", "gate-error", None, gate["error"])]
    findings = []
    for verdict in gate["verdicts"]:
        if verdict["kind"] == "sql":
            findings.append(judge_statements(verdict["migration"], verdict["operation"], verdict["statements"],
                                             gate["live"], gate["vendor"]))
        else:
            findings.append(Finding(verdict["migration"], verdict["operation"], verdict["kind"], verdict["change"],
                                    verdict.get("table"), verdict.get("column")))
    return findings


def refusal(settings: Settings, release_id: str, findings: list[Finding]) -> Optional[str]:
    """Why the release must not migrate while the live release serves, or None when it may."""
    if settings.migration_safety != "refuse":
        return None
    allowed = set(settings.allow_unsafe_migrations)
    blocking = [finding for finding in findings if finding.kind in BLOCKING and finding.migration not in allowed]
    if not blocking:
        return None
    names = ",".join(dict.fromkeys(finding.migration for finding in blocking if finding.change != "gate-error"))
    override = f"allow_unsafe_migrations={names}" if names else "migration_safety=allow"
    return "\n".join([
        f"migration_safety: the migrations of release {release_id} would break the live release while they run "
        "(it serves on until the switch); nothing was changed:",
        *(f"  - {finding.words()}" for finding in blocking),
        f"To run them all the same, with the live release serving: --data {override}"])


def report(findings: list[Finding]) -> list[str]:
    """Lines for the output: one per operation that is not plainly safe, else one summing up."""
    shown = [finding.words() for finding in findings if finding.kind != "safe"]
    return shown or [f"the {len(findings)} pending operations are safe while the live release serves"
                     if findings else "no pending migrations"]


def check_migrations(state, host, settings: Settings, release_id: str, django_json: str,
                     live_release: Optional[str]) -> None:
    """A python.call callback on the host that migrates, after the inspection: the gate's verdicts
    (in `django_json`) settled, said, and the release stopped when they refuse it. With no live
    release, nothing serves on the schema while the migrations run: there is nothing to judge."""
    if live_release is None:
        logger.info(f"{host.print_prefix}migration gate: no release serves yet, so none can break")
        return
    done, output = run_as_operation(host, f"cat {q(django_json)}")
    if not done:
        raise OperationError(f"the inspection's answer ({django_json}) could not be read")
    answer = json.loads("\n".join(output.stdout_lines))
    if "gate" not in answer and answer.get("pending"):
        raise OperationError("the host's bin/inspect-release.py predates the migration gate: run deploys/skeleton.py "
                             "(or all.py) with this version of the kit first; nothing was changed")
    findings = settle(answer.get("gate") or {"verdicts": [], "live": {}, "vendor": ""})
    for line in report(findings):
        logger.info(f"{host.print_prefix}migration gate: {line}")
    refused = refusal(settings, release_id, findings)
    if refused:
        raise OperationError(refused)
    unsafe = [finding for finding in findings if finding.kind in BLOCKING]
    allowed = sorted({finding.migration for finding in unsafe} & set(settings.allow_unsafe_migrations))
    if allowed and settings.migration_safety != "allow":
        logger.warning(f"{host.print_prefix}migration gate: allow_unsafe_migrations lets {', '.join(allowed)} run "
                       "while the live release serves")
    if settings.migration_safety == "maintenance" and any(finding.migration not in allowed for finding in unsafe):
        UNSAFE_MIGRATIONS.add(release_id)
        logger.warning(f"{host.print_prefix}migration gate: migration_safety=maintenance: the maintenance page is up "
                       "on every web host while they run")


class GateVerdicts(FactBase):
    """The gate's verdicts on the migrations a release ran (the "gate" of its .django.json), or
    None: it ran none, was made before the gate, or is not there."""

    def command(self, django_json: str) -> str:
        return f"tail -n 1 {q(django_json)} 2>/dev/null || true"

    def process(self, output):
        try:
            return json.loads("\n".join(output)).get("gate") or None
        except (ValueError, AttributeError):
            return None


def gate_status(settings: Settings) -> list[str]:
    """Lines for status.py, on the host that migrates: what the gate said of the live release's
    migrations."""
    if not settings.runs_migrations:
        return []
    gate = host.get_fact(GateVerdicts, django_json=f"{settings.current_link}/.django.json")
    if not gate:
        return ["migration gate of the live release: nothing judged (no migrations, or released before the gate)"]
    return [f"migration gate of the live release: {line}" for line in report(settle(gate))]
