"""Database snapshots: taken before migrations, restored when they fail or on rollback."""

from __future__ import annotations

import shlex

from .settings import Settings

q = shlex.quote


def snapshot_path(settings: Settings, release_id: str) -> str:
    suffix = "sqlite3" if settings.database == "sqlite" else "dump"
    return f"{settings.snapshots_dir}/{release_id}.{suffix}"


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
    # PostgreSQL: pg_dump's custom format; a restore recreates the database from it, so tables a
    # failed migration created go too.
    name = q(settings.db_name)
    as_postgres = "runuser -u postgres --"
    take = f"{as_postgres} pg_dump -Fc {name} > {q(snapshot)}"
    restore = (f"{as_postgres} dropdb --force --if-exists {name} && "
               f"{as_postgres} createdb --owner {name} {name} && "
               f"{as_postgres} pg_restore --single-transaction --dbname {name} < {q(snapshot)}")
    return take, restore
