"""Database snapshots: taken before migrations, restored when they fail or on rollback."""

from __future__ import annotations

import shlex

from .settings import Settings

q = shlex.quote


def snapshot_path(settings: Settings, release_id: str) -> str:
    suffix = "sqlite3" if settings.database == "sqlite" else "dump"
    return f"{settings.snapshots_dir}/{release_id}.{suffix}"


def postgres_connect(settings: Settings) -> str:
    """Shell prefix: run a PostgreSQL client as the project's role, reaching the database from
    whichever host runs it, with the password from the secrets in its environment only."""
    return (f"{q(settings.secrets_loader)} env PGHOST={q(settings.database_host)} PGPORT=5432 "
            f"PGUSER={q(settings.db_name)} PGDATABASE={q(settings.db_name)} "
            "sh -c 'PGPASSWORD=\"$DJANGO_DB_PASSWORD\" exec \"$@\"' --")


def sqlite_snapshot_commands(settings: Settings, snapshot: str) -> tuple[str, str]:
    """Shell (take, restore) for sqlite: sqlite's online backup API (.backup/.restore), safe while
    the app has the file open. The database's folder is the app's, so sqlite opens it (and its
    journal) with the app user's rights alone, through a copy in a private folder of its own
    there; the snapshot, in root's folder, passes to and from it on a pipe. No database yet (first
    release): the snapshot is empty, and restoring it means removing the database again."""
    copy_through = ('set -e; work=$(mktemp -d "${1%/*}/.snapshot.XXXXXX"); trap \'rm -rf "$work"\' EXIT; ')
    take = ('if [ -f "$1" ]; then ' + copy_through + 'sqlite3 "$1" ".backup \'$work/copy\'"; cat "$work/copy"; fi')
    restore = copy_through + 'cat > "$work/copy"; sqlite3 "$1" ".restore \'$work/copy\'"'
    run = f"{settings.as_app_user} sh -c"
    database = q(settings.sqlite_path)
    return (f"{run} {q(take)} - {database} > {q(snapshot)}",
            f"if [ -s {q(snapshot)} ]; then {run} {q(restore)} - {database} < {q(snapshot)}; "
            f"else {settings.as_app_user} rm -f {database}; fi")


def snapshot_commands(settings: Settings, snapshot: str) -> tuple[str, str]:
    """Shell commands (take, restore) for a snapshot of the project's database at `snapshot`."""
    if settings.database == "sqlite":
        return sqlite_snapshot_commands(settings, snapshot)
    # PostgreSQL: pg_dump's custom format, as the project's role (it owns every table), from
    # whichever host runs this, with the password from the secrets in the environment only. A
    # restore drops everything the role owns first, so tables a failed migration created go too;
    # the drop and the restored dump run in one transaction, so a restore that fails changes nothing.
    connect = postgres_connect(settings)
    take = f"{connect} pg_dump -Fc > {q(snapshot)}"
    restore = (f"{{ echo 'DROP OWNED BY CURRENT_USER;' && "
               f"pg_restore --no-owner --no-privileges --exit-on-error -f - {q(snapshot)}; }} | "
               f"{connect} psql -Xq -v ON_ERROR_STOP=1 --single-transaction")
    return take, restore
