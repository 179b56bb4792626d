"""A release's migrations on the host that migrates: snapshot first, bounded waits for locks on
PostgreSQL, and a failed migration undone the least destructive way."""

from __future__ import annotations


from pyinfra.api import operation

from ..core.lock import under_migration_lock
from ..core.shell import q, read_json


# A migration stopped by its lock timeout is tried again this many times, after 1 s, then 2 s, ...
# (only when every pending migration runs in a transaction: a stopped one then left nothing).
MIGRATION_LOCK_RETRIES = 2


# In a release's folder, when some of its migrations wait until it serves (migration_safety =
# "switch-first"): one "app migration" line per app, what to migrate to before the switch.
MIGRATE_FIRST = ".migrate-first"


def migration_limits(lock_timeout: int, statement_timeout: int) -> str:
    """bin/manage's options for PostgreSQL's time limits on a release's migrations (0: none)."""
    return (f" --lock-timeout {int(lock_timeout)}" if lock_timeout else "") + (
        f" --statement-timeout {int(statement_timeout)}" if statement_timeout else "")


# On PostgreSQL, once a migration gave up waiting for a lock: the database's other sessions that
# are not idle (one of them holds it), longest-open transaction first. The app's role sees what its
# own sessions do; of another role's, only the role and the program (PostgreSQL hides the rest).
# Control characters in a query are blanked.
OPEN_TRANSACTIONS = (
    "SELECT format('  session %s of %s (%s): %s', pid, usename, coalesce(nullif(application_name, ''), 'unnamed'), "
    "CASE WHEN state IS NULL THEN 'what it does is not shown to the app''s role' "
    "WHEN xact_start IS NULL THEN state "
    "ELSE format('%s, its transaction open for %s s: %s', state, extract(epoch FROM now() - xact_start)::int, "
    "left(regexp_replace(coalesce(query, ''), '[[:cntrl:]]+', ' ', 'g'), 120)) END) "
    "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
    "AND usename IS NOT NULL AND state IS DISTINCT FROM 'idle' ORDER BY xact_start NULLS LAST LIMIT 10"
)


def migrate_command(release_dir: str, manage: str, snapshot: str, take_snapshot: str, restore_snapshot: str,
                    live_migrations: str, lock_timeout: int = 0, statement_timeout: int = 0) -> str:
    """Shell: when migrations are pending, snapshot the database and migrate; if a migration
    fails, undo it the least destructive way (undo_failed_migrations_command). Fails when the
    migrations did. On PostgreSQL (seconds; 0: none): a migration waiting longer than
    `lock_timeout` for a table's lock is stopped rather than hold every query of the site on that
    table behind it, and tried again (MIGRATION_LOCK_RETRIES) before the release fails; a statement
    running longer than `statement_timeout` (an ALTER rewriting a big table holds its lock all that
    time) is stopped and the release fails: it would take as long again. When the migration gate
    kept some migrations until the release serves (MIGRATE_FIRST), only those before them run."""
    pending = read_json(f"{release_dir}/.django.json", "pending")
    non_atomic = read_json(f"{release_dir}/.django.json", "non_atomic")
    undo = undo_failed_migrations_command(release_dir, manage, snapshot, restore_snapshot, live_migrations)
    limit = migration_limits(lock_timeout, statement_timeout)
    first = f"{release_dir}/{MIGRATE_FIRST}"
    forward = (f"if [ -f {q(first)} ]; then ( while read -r app name; do "
               f'{manage}{limit} migrate "$app" "$name" --noinput || exit 1; done < {q(first)} ); '
               f"else {manage}{limit} migrate --noinput; fi")
    ran_long = (f"a migration statement ran longer than {int(statement_timeout)} s (migration_statement_timeout) "
                "and was stopped, so that the table it locked does not stay locked for the site: make the change "
                "without a long lock (an index with AddIndexConcurrently, a column without a rewrite), or give it "
                "a longer migration_statement_timeout")
    waited = (f"a migration waited more than {int(lock_timeout)} s (migration_lock_timeout) for a lock another "
              "session holds")
    timed_out = (f"{waited} (a long query or transaction of the site, a psql session left open): it was "
                 "stopped so that the site's queries do not queue behind it; release again once that session ends")
    again = (f'[ "$tries" -lt {MIGRATION_LOCK_RETRIES} ] && grep -q "lock timeout" "$errors" && '
             f'[ "$({non_atomic} 2>/dev/null)" = "[]" ]') if lock_timeout else "false"
    return (
        f'if [ "$({pending})" = "[]" ]; then echo "no migrations to apply"; else '
        f"{take_snapshot} && printf '%s\\n' {q(snapshot)} > {q(release_dir)}/.snapshot && "
        'errors=$(mktemp) && tries=0 && '
        f'until {{ {forward}; }} 2> "$errors"; do '
        f'if {again}; then tries=$((tries + 1)); delay=$((1 << (tries - 1))); '
        f'echo {q(waited)}": trying again in $delay s ($tries of {MIGRATION_LOCK_RETRIES})" >&2; sleep "$delay"; '
        'continue; fi; cat "$errors" >&2; '
        f'if grep -q "lock timeout" "$errors"; then echo {q(timed_out)} >&2; '
        '[ "$tries" -eq 0 ] || echo "it was tried $((tries + 1)) times" >&2; '
        "echo 'the sessions of the database that are not idle (one of them holds the lock):' >&2; "
        f"{manage} dbshell -- -AtX -c {q(OPEN_TRANSACTIONS)} >&2 || true; fi; "
        f'if grep -q "statement timeout" "$errors"; then echo {q(ran_long)} >&2; fi; '
        f'rm -f "$errors"; {undo}; exit 1; done; '
        'cat "$errors" >&2; rm -f "$errors"; fi'
    )


# Of the new release's .django.json and the live release's .migrations.json (argv): "atomic" or
# the first pending migration that runs outside a transaction, the number of pending migrations,
# then "app target" for each app to migrate back to where the live release has it.
_UNDO_PLAN = """import json, sys
new = json.load(open(sys.argv[1]))
try:
    live = json.load(open(sys.argv[2]))
except OSError:
    live = {}
print((new.get("non_atomic") or ["atomic"])[0], len(new["pending"]))
for app, name in sorted(new["migrations"].items()):
    if live.get(app, "zero") != name:
        print(app, live.get(app, "zero"))
"""


def undo_failed_migrations_command(release_dir: str, manage: str, snapshot: str, restore_snapshot: str,
                                   live_migrations: str) -> str:
    """Shell, once `manage migrate` failed: the database back where the live release has it, the
    least destructive way, saying which. Each migration runs in a transaction (PostgreSQL and
    sqlite undo their schema changes too): when none stayed applied, the database is as it was;
    when some did, they are migrated back to the live release's recorded state
    (`live_migrations`), keeping what the site wrote meanwhile. Only when that fails, or when a
    pending migration runs outside a transaction (atomic = False: what it did before failing
    stays), is the snapshot restored, and the run says since when writes are lost."""
    plan = f"python3 -c {q(_UNDO_PLAN)} {q(release_dir + '/.django.json')} {q(live_migrations)}"
    untouched = ("the migrations failed; each ran in a transaction, and the database undid the one that "
                 "failed: it is as it was (no snapshot restored, no write lost)")
    migrated_back = ("the migrations failed; those that had run were migrated back to the live release's state "
                     "(no snapshot restored; rows written meanwhile kept)")
    restored = (q(f"the database was restored from the snapshot {snapshot}, taken at ") + '"$taken"'
                + q(": what the site wrote since then is lost"))
    not_restored = (f"the migrations failed, and restoring the snapshot {snapshot} failed too: the database "
                    "is as the failed migrations left it")
    return (
        f"plan=$({plan}) || plan='? 0'; "
        'first=$(printf "%s\\n" "$plan" | head -n 1); atomic=${first% *}; planned=${first#* }; '
        f"left=$({manage} showmigrations --plan 2>/dev/null | grep -c '^\\[ \\]'); "
        f'if [ "$atomic" = atomic ] && [ "$left" = "$planned" ]; then echo {q(untouched)} >&2; '
        f'elif [ "$atomic" = atomic ] && printf "%s\\n" "$plan" | tail -n +2 | while read -r app target; do '
        f'{manage} migrate "$app" "$target" --noinput || exit 1; done; then echo {q(migrated_back)} >&2; '
        'else if [ "$atomic" != atomic ] && [ "$atomic" != "?" ]; then '
        'echo "the migrations failed, and $atomic runs outside a transaction: what it did stays unless the '
        'snapshot comes back" >&2; else echo "the migrations failed and could not be migrated back" >&2; fi; '
        f'taken=$(date -u -r {q(snapshot)} +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || echo "its time unknown"); '
        f'if {restore_snapshot}; then echo {restored} >&2; else echo {q(not_restored)} >&2; fi; fi'
    )


@operation(is_idempotent=False)
def migrate_with_snapshot(release_dir: str, manage: str, snapshot: str, take_snapshot: str,
                          restore_snapshot: str, lock: str, live_migrations: str, lock_timeout: int = 0,
                          statement_timeout: int = 0):
    """Migrate the database from the new release (migrate_command): the live release keeps the
    database it knows if a migration fails."""
    yield under_migration_lock(lock, migrate_command(release_dir, manage, snapshot, take_snapshot, restore_snapshot,
                                                     live_migrations, lock_timeout, statement_timeout))
