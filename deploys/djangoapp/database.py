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


def snapshot_commands(settings: Settings, snapshot: str) -> tuple[str, str]:
    """Shell commands (take, restore) for a snapshot of the project's database at `snapshot`."""
    if settings.database == "sqlite":
        database = q(settings.sqlite_path)
        # sqlite's online backup API (.backup/.restore), safe while the app has the file open.
        # No database yet (first release): nothing to keep, and restoring means removing it again.
        take = f"if [ -f {database} ]; then sqlite3 {database} \".backup '{snapshot}'\"; else : > {q(snapshot)}; fi"
        restore = (f"if [ -s {q(snapshot)} ]; then sqlite3 {database} \".restore '{snapshot}'\"; "
                   f"else rm -f {database}; fi")
        return take, restore
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
