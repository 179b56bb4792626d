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
    raise NotImplementedError(f"snapshots of {settings.database} databases")
