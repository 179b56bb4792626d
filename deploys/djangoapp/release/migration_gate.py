"""The migration gate: whether a release's pending migrations may run while the live release still
serves, on the schema they make.

The new release's Django judges each pending operation against the live release's models, in the
inspection (templates/app/migration-gate.py): a dropped or renamed column the live code reads, a
NOT NULL column it does not write, a narrowed type, RunPython. RunSQL's statements are judged here,
on the control machine, with django-migration-linter's rules, against the same models. Then
migration_safety decides: "refuse" (the default) stops the release before its migrations run,
naming each unsafe operation and how to make the change in two releases; "maintenance" runs
them behind the maintenance page on every web host (maintenance.py); "switch-first" runs the
drops the new release works beside after it serves, the migrations before them before the switch
(switch_first_plan), and refuses what it cannot prove; "allow" runs them.
allow_unsafe_migrations lets named migrations through for one release.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional

from pyinfra import host, logger, state
from pyinfra.api import FactBase
from pyinfra.api.exceptions import OperationError

from ..core.callbacks import run_as_operation
from ..core.failure import login_arguments, settle as settle_run
from ..core.lock import under_migration_lock
from ..core.shell import q
from ..settings import Settings
from ..site.maintenance import UNSAFE_MIGRATIONS
from .migrate import MIGRATE_FIRST, migration_limits

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
    contract: bool = False  # a drop that may wait until the new release serves (switch-first)

    def words(self) -> str:
        what, fix = CHANGES.get(self.change, ("{column}", ""))
        said = f"{self.migration}: {self.operation}: {what.format(table=self.table or 'its table', column=self.column)}"
        if self.contract:
            fix += "; or let the release drop it once the new code serves: migration_safety=switch-first"
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
                                    verdict.get("table"), verdict.get("column"), verdict.get("contract", False)))
    return findings


@dataclass(frozen=True)
class SwitchFirst:
    """How a release's pending migrations run under migration_safety = "switch-first": `before`
    the switch, `after` it (the drops the new release works beside), or, when that cannot be
    shown safe, the `problems` that stop the release."""

    before: list[str]
    after: list[str]
    problems: list[str]

    def targets(self) -> list[tuple[str, str]]:
        """(app, migration) to migrate each app to before the switch, in the plan's order: the
        plan's first part is closed under its dependencies, so each app's last one brings it."""
        last = {}
        for name in self.before:
            app, migration = name.split(".", 1)
            last.pop(app, None)
            last[app] = migration
        return list(last.items())


def switch_first_plan(findings: list[Finding], pending: list[str], non_atomic: list[str],
                      allowed: set[str]) -> SwitchFirst:
    """The migrations before the first unsafe one run before the switch; it and all after it run
    once the new release serves, if each of their operations is a drop the new release works
    beside (Finding.contract) or changes nothing it reads, and each runs in a transaction (a
    failure after the switch leaves nothing half done). Anything else among them: a problem."""
    blocking = [finding.migration for finding in findings
                if finding.kind in BLOCKING and finding.migration not in allowed]
    if not blocking:
        return SwitchFirst(list(pending), [], [])
    first = min(pending.index(name) for name in blocking)
    after = pending[first:]
    problems = [f"{name} runs outside a transaction (atomic = False): after the switch, a failure would leave it "
                "half done" for name in after if name in non_atomic]
    for finding in findings:
        if finding.migration not in after or finding.contract or (
                finding.kind == "safe" and finding.change in ("no-change", "unused")):
            continue
        if finding.kind in BLOCKING and finding.change in ("drop-column", "drop-table"):
            problems.append(f"{finding.words()}; the new release cannot work beside it until it is dropped "
                            "(it is NOT NULL without a database default, or holds a foreign key): make it "
                            "null=True, and drop its foreign key, in an earlier release")
        elif finding.kind in BLOCKING:
            problems.append(finding.words())
        else:
            problems.append(f"{finding.migration}: {finding.operation}: comes after {pending[first]}, which must "
                            "wait until the new release serves, and the new release may need it before: put the "
                            "drops in migrations of their own, after the others")
    return SwitchFirst(pending[:first], after, problems)


def refusal(settings: Settings, release_id: str, findings: list[Finding],
            switch_first: Optional[SwitchFirst] = None) -> Optional[str]:
    """Why the release must not migrate while the live release serves, or None when it may.
    Under "switch-first", `switch_first` says what could not wait for the switch."""
    allowed = set(settings.allow_unsafe_migrations)
    blocking = [finding for finding in findings if finding.kind in BLOCKING and finding.migration not in allowed]
    names = ",".join(dict.fromkeys(finding.migration for finding in blocking if finding.change != "gate-error"))
    override = f"allow_unsafe_migrations={names}" if names else "migration_safety=allow"
    if settings.migration_safety == "switch-first" and switch_first and switch_first.problems:
        return "\n".join([
            f"migration_safety=switch-first: the migrations of release {release_id} from {switch_first.after[0]} on "
            "must wait until the new release serves (the live one reads what they change), and these cannot; "
            "nothing was changed:",
            *(f"  - {problem}" for problem in switch_first.problems),
            f"To run them all the same, with the live release serving: --data {override}"])
    if settings.migration_safety != "refuse" or not blocking:
        return None
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
    switch_first = None
    if settings.migration_safety == "switch-first":
        switch_first = switch_first_plan(findings, answer.get("pending", []), answer.get("non_atomic", []),
                                         set(settings.allow_unsafe_migrations))
    refused = refusal(settings, release_id, findings, switch_first)
    if refused:
        raise OperationError(refused)
    if switch_first and switch_first.after:
        _migrate_first(host, settings, release_id, switch_first)
    unsafe = [finding for finding in findings if finding.kind in BLOCKING]
    allowed = sorted({finding.migration for finding in unsafe} & set(settings.allow_unsafe_migrations))
    if allowed and settings.migration_safety != "allow":
        logger.warning(f"{host.print_prefix}migration gate: allow_unsafe_migrations lets {', '.join(allowed)} run "
                       "while the live release serves")
    if settings.migration_safety == "maintenance" and any(finding.migration not in allowed for finding in unsafe):
        UNSAFE_MIGRATIONS.add(release_id)
        logger.warning(f"{host.print_prefix}migration gate: migration_safety=maintenance: the maintenance page is up "
                       "on every web host while they run")


def time_limits(settings: Settings) -> tuple[int, int]:
    """The lock and statement timeouts of a release's migrations: PostgreSQL's (sqlite has neither)."""
    if settings.database != "postgresql":
        return 0, 0
    return settings.migration_lock_timeout, settings.migration_statement_timeout


# Releases (by id) -> the migrations that run once the new release serves (switch-first), as
# decided by the gate on the migration host (contract_after_switch runs them).
AFTER_SWITCH: dict[str, list[str]] = {}


def _migrate_first(host, settings: Settings, release_id: str, switch_first: SwitchFirst) -> None:
    """The migrations that run before the switch, for the release's migrate step (MIGRATE_FIRST:
    one "app migration" line per app to migrate to, in the release's folder, which is root's)."""
    path = f"{settings.releases_dir}/{release_id}/{MIGRATE_FIRST}"
    lines = "".join(f"{app} {name}\n" for app, name in switch_first.targets())
    done, _ = run_as_operation(host, f"printf %s {q(lines)} > {q(path)}")
    if not done:
        raise OperationError(f"the migrations to run before the switch could not be written to {path}")
    AFTER_SWITCH[release_id] = switch_first.after
    first = ", ".join(switch_first.before) or "none"
    logger.warning(f"{host.print_prefix}migration gate: migration_safety=switch-first: {first} run before the "
                   f"switch; {', '.join(switch_first.after)} once the new release serves (it works beside what "
                   "they drop)")


# Releases (by id) whose migrations after the switch failed: the run fails at its end, the
# release staying live (fail_if_contract_failed).
CONTRACT_FAILED: set[str] = set()


def contract_after_switch(state, host, settings: Settings, release_id: str, manage: str) -> None:
    """A python.call callback on the migration host once every host serves the new release: the
    migrations switch-first kept back (AFTER_SWITCH), under the migration lock and the same time
    limits as the others. Each runs in a transaction (switch_first_plan saw to it): a failure
    leaves the one that failed undone, the release live, and the rest pending; the next release
    runs them again. The run fails at its end (fail_if_contract_failed), not here: nothing may
    switch back to a release that reads what they dropped."""
    after = AFTER_SWITCH.get(release_id)
    if not after:
        return
    limits = migration_limits(*time_limits(settings))
    done, output = run_as_operation(host, under_migration_lock(
        settings.migration_lock, f"{manage}{limits} migrate --noinput"))
    for line in output.output_lines:
        logger.info(f"{host.print_prefix}{line}")
    if done:
        logger.info(f"{host.print_prefix}migration gate: after the switch, {', '.join(after)} ran")
        return
    CONTRACT_FAILED.add(release_id)
    logger.error(f"{host.print_prefix}migration gate: after the switch, the migrations {', '.join(after)} failed "
                 f"(output above): release {release_id} stays live, it does not read what they drop; each ran in a "
                 "transaction, so the one that failed left nothing; those not applied run with the next release")


def fail_if_contract_failed(state, host, settings: Settings, release_id: str) -> None:
    """The last step of a release: its run fails if migrations after the switch did, once the
    release is recorded live and nothing is left to undo (failure.settle)."""
    if release_id not in CONTRACT_FAILED:
        return
    settle_run(state)
    raise OperationError(f"release {release_id} is live, but its migrations after the switch failed (see above); "
                         "release again to run them")


def dry_run_gate_command(settings: Settings, scratch: str) -> str:
    """Shell, for a dry run on the host that migrates (dry_run_gate): the new release's source,
    uploaded to `scratch` (a folder of root's in /tmp) as source.tar.gz, unpacked there beside the
    live release's virtualenv, and its pending migrations judged by its Django as the app user,
    the answer (inspect-release.py's pending_migrations) printed last. Nothing else is written."""
    script = f"{settings.project_root}/bin/inspect-release.py"
    code = f"exec(open({script!r}).read()); print(json.dumps(pending_migrations(True)))"
    folder = q(scratch)
    return (f"tar -xzf {folder}/source.tar.gz -C {folder} --no-same-owner && rm {folder}/source.tar.gz && "
            f"echo dry-run > {folder}/REVISION && "
            f'ln -s "$(readlink -f {q(settings.current_link)}/.venv)" {folder}/.venv && '
            f"chmod -R u=rwX,go=rX {folder} && chgrp {q(settings.uwsgi_group)} {folder} && chmod 750 {folder} && "
            f"{settings.manage_command} --release {folder} shell --verbosity 0 -c {q(code)}")


def dry_run_gate(settings: Settings, archive: str, same_dependencies: bool) -> None:
    """In a dry run, on the host that migrates while a release serves: what the gate would say
    of the release's pending migrations, judged by its own Django as in a release, from a copy of
    its source in a scratch folder removed at once. Only when its dependencies are the live
    release's: a dry run builds no virtualenv."""
    prefix = f"{host.print_prefix}migration gate (dry run): "
    if not same_dependencies:
        logger.info(f"{prefix}not judged: the release's dependencies differ from the live release's, and a dry run "
                    "builds no virtualenv; the release judges its migrations after its build")
        return
    arguments = login_arguments(state, host)
    made, output = host.run_shell_command("mktemp -d /tmp/django-deploy-gate.XXXXXX", **arguments)
    scratch = "\n".join(output.stdout_lines).strip() if made else ""
    if not scratch.startswith("/tmp/django-deploy-gate."):
        raise OperationError("migration gate (dry run): no scratch folder could be made in /tmp")
    try:
        uploaded = host.put_file(archive, f"{scratch}/source.tar.gz", **arguments)
        judged, output = host.run_shell_command(dry_run_gate_command(settings, scratch), **arguments) \
            if uploaded else (False, None)
    finally:
        host.run_shell_command(f"rm -rf {q(scratch)}", **arguments)
    if not judged:
        said = "\n".join(output.stderr_lines[-20:]) if output else "the source could not be uploaded"
        logger.warning(f"{prefix}could not judge the pending migrations: {said}")
        return
    answer = json.loads(output.stdout_lines[-1])
    findings = settle(answer.get("gate") or {"verdicts": [], "live": {}, "vendor": ""})
    for line in report(findings):
        logger.info(f"{prefix}{line}")
    switch_first = None
    if settings.migration_safety == "switch-first":
        switch_first = switch_first_plan(findings, answer["pending"], answer["non_atomic"],
                                         set(settings.allow_unsafe_migrations))
        if switch_first.after and not switch_first.problems:
            logger.info(f"{prefix}switch-first: {', '.join(switch_first.before) or 'none'} would run before the "
                        f"switch; {', '.join(switch_first.after)} once the new release serves")
    refused = refusal(settings, "this release", findings, switch_first)
    if refused:
        logger.warning(f"{prefix}the release would stop before its migrations:\n{refused}")


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
