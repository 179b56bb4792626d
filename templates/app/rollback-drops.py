# Sent as it is (not rendered) by a rollback to the live release's Django (`manage shell -c`, as
# the app user), before it migrates back: the tables and columns that undoing the migrations down
# to the targets would drop, and how many rows hold data in each.
#   dropped_data(targets)  targets: [(app, migration or "zero")], as `migrate app target` takes;
#       returns {"drops": [{"table", "column" (None for a whole table), "rows" (None: not counted,
#       the database has no such table or column under that name now), "migration"}],
#       "irreversible": [app.migration, ...]}
#   print_dropped_data(targets)  prints it as one JSON line, with "holding_data": the drops that
#       lose rows (or could not be counted), as text, and "empty": the others' names
#   refuse_to_drop_data(targets, project)  exits 1 naming them (the last check, under the lock)
# Only what reversing CreateModel (its table) and AddField (its column) drops is looked for:
# other operations' reverses (RunPython, RunSQL, AlterField) are code the project wrote.
import json
import sys

from django.core.exceptions import FieldDoesNotExist
from django.db import connections
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.operations import AddField, CreateModel, SeparateDatabaseAndState


def database_operations(operations):
    for operation in operations:
        if isinstance(operation, SeparateDatabaseAndState):
            yield from database_operations(operation.database_operations)
        else:
            yield operation


def auto_through_table(field):
    through = field.remote_field.through
    return through._meta.db_table if through and through._meta.auto_created else None


def dropped_by(operation, app_label, apps, alias):
    """(table, column or None) that reversing `operation` drops; `apps`: the models as the
    operation's migration leaves them."""
    try:
        if isinstance(operation, CreateModel):
            model = apps.get_model(app_label, operation.name)
            if operation.allow_migrate_model(alias, model):
                yield model._meta.db_table, None
                for field in model._meta.local_many_to_many:
                    if auto_through_table(field):
                        yield auto_through_table(field), None
        elif isinstance(operation, AddField):
            model = apps.get_model(app_label, operation.model_name)
            if operation.allow_migrate_model(alias, model):
                field = model._meta.get_field(operation.name)
                if field.many_to_many:
                    if auto_through_table(field):
                        yield auto_through_table(field), None
                elif field.column and not getattr(field, "generated", False):
                    yield model._meta.db_table, field.column
    except (LookupError, FieldDoesNotExist):
        return  # gone again by the end of its own migration: nothing of it is left to drop


def rows_in(connection, table, column):
    """Rows of `table` (with a value in `column`), or None when the database has no such table
    or column now."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        if table not in connection.introspection.table_names(cursor):
            return None
        if column is not None and column not in [
                found.name for found in connection.introspection.get_table_description(cursor, table)]:
            return None
        cursor.execute(f"SELECT COUNT({quote(column) if column else '*'}) FROM {quote(table)}")
        return cursor.fetchone()[0]


def dropped_data(targets, alias="default"):
    connection = connections[alias]
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan([(app, None if name == "zero" else name) for app, name in targets])
    found, irreversible = [], []
    for migration, backwards in plan:
        if not backwards:
            continue
        label = f"{migration.app_label}.{migration.name}"
        if any(not operation.reversible for operation in migration.operations):
            irreversible.append(label)
        apps = None
        for operation in database_operations(migration.operations):
            if not isinstance(operation, (CreateModel, AddField)):
                continue
            if apps is None:
                apps = executor.loader.project_state((migration.app_label, migration.name), at_end=True).apps
            for table, column in dropped_by(operation, migration.app_label, apps, alias):
                found.append({"table": table, "column": column, "migration": label})
    # A column goes with its table when both are dropped: the table is named alone.
    whole = {drop["table"] for drop in found if drop["column"] is None}
    drops, seen = [], set()
    for drop in found:
        if (drop["table"], drop["column"]) in seen or (drop["column"] and drop["table"] in whole):
            continue
        seen.add((drop["table"], drop["column"]))
        drops.append({**drop, "rows": rows_in(connection, drop["table"], drop["column"])})
    return {"drops": drops, "irreversible": irreversible}


def drop_name(drop):
    return f"column {drop['table']}.{drop['column']}" if drop["column"] else f"table {drop['table']}"


def describe(drop):
    rows = "rows not counted: not in the database under this name now" if drop["rows"] is None \
        else f"{drop['rows']} row{'' if drop['rows'] == 1 else 's'}"
    return f"{drop_name(drop)} ({rows}, {drop['migration']})"


def holding_data(drops):
    """What of `drops` loses rows (or could not be counted), as text."""
    return [describe(drop) for drop in drops if drop["rows"] != 0]


def print_dropped_data(targets):
    found = dropped_data(targets)
    print(json.dumps({**found, "holding_data": holding_data(found["drops"]),
                      "empty": [drop_name(drop) for drop in found["drops"] if drop["rows"] == 0]}, sort_keys=True))


def refuse_to_drop_data(targets, project):
    """Exit 1 naming what holds rows, unless a migration cannot be undone (the rollback then
    refuses, or restores the snapshot, by itself)."""
    found = dropped_data(targets)
    lost = holding_data(found["drops"])
    if lost and not found["irreversible"]:
        sys.exit(f"cannot roll back: migrating back drops data: {'; '.join(lost)}; run with "
                 f"--data rollback_drop_data={project} to drop it")
