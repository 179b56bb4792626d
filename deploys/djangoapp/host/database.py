"""Database snapshots: taken before migrations, restored when they fail or on rollback."""

from __future__ import annotations


from ..core.shell import q
from ..settings import Settings


def dump_suffix(settings: Settings) -> str:
    """The file suffix of a copy of the database: sqlite's own file, or pg_dump's custom format."""
    return "sqlite3" if settings.database == "sqlite" else "dump"


def snapshot_path(settings: Settings, release_id: str) -> str:
    return f"{settings.snapshots_dir}/{release_id}.{dump_suffix(settings)}"


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
    release): the snapshot is empty, and restoring it means removing the database again. A
    snapshot that is missing, or not a whole sqlite database, touches nothing: the restore fails,
    saying so (a missing file is not an empty one)."""
    copy_through = ('set -e; work=$(mktemp -d "${1%/*}/.snapshot.XXXXXX"); trap \'rm -rf "$work"\' EXIT; ')
    take = ('if [ -f "$1" ]; then ' + copy_through + 'sqlite3 "$1" ".backup \'$work/copy\'"; cat "$work/copy"; fi')
    restore = copy_through + 'cat > "$work/copy"; sqlite3 "$1" ".restore \'$work/copy\'"'
    run = f"{settings.as_app_user} sh -c"
    database, kept = q(settings.sqlite_path), q(snapshot)
    missing = q(f"the snapshot {snapshot} is missing: the database was not touched")
    broken = q(f"the snapshot {snapshot} is not a whole sqlite database: the database was not touched")
    return (f"{run} {q(take)} - {database} > {kept}",
            f"{{ if [ ! -f {kept} ]; then echo {missing} >&2; false; "
            f"elif [ ! -s {kept} ]; then {settings.as_app_user} rm -f {database}; "
            f"elif [ \"$(sqlite3 -readonly {kept} 'PRAGMA quick_check;' 2>&1)\" != ok ]; then echo {broken} >&2; false; "
            f"else {run} {q(restore)} - {database} < {kept}; fi; }}")


def snapshot_commands(settings: Settings, snapshot: str) -> tuple[str, str]:
    """Shell commands (take, restore) for a snapshot of the project's database at `snapshot`."""
    if settings.database == "sqlite":
        return sqlite_snapshot_commands(settings, snapshot)
    # PostgreSQL: pg_dump's custom format, as the project's role (it owns every table), from
    # whichever host runs this, with the password from the secrets in the environment only. A
    # restore drops everything the role owns first, so tables a failed migration created go too;
    # the drop and the restored dump run in one transaction, so a restore that fails changes
    # nothing: the snapshot is read whole first (pg_restore --list), and should pg_restore still
    # fail on the way, a statement that cannot run follows what it wrote, and psql rolls all back
    # (a pipe's status is its last command's: psql's).
    connect = postgres_connect(settings)
    kept = q(snapshot)
    unreadable = q(f"the snapshot {snapshot} cannot be read by pg_restore: the database was not touched")
    take = f"{connect} pg_dump -Fc > {kept}"
    restore = (f"{{ if ! pg_restore --list {kept} > /dev/null; then echo {unreadable} >&2; false; else "
               f"{{ echo 'DROP OWNED BY CURRENT_USER;' && "
               f"pg_restore --no-owner --no-privileges --exit-on-error -f - {kept} "
               f"|| echo 'SELECT django_deploy_the_snapshot_could_not_be_read();'; }} | "
               f"{connect} psql -Xq -v ON_ERROR_STOP=1 --single-transaction; fi; }}")
    return take, restore
