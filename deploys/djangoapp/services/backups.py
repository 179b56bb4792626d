"""Backups off the host with restic (Debian's), on a schedule, and the restore that brings one back.

One host backs the project up: the migration host, which holds the uploads (shared/media) and
reaches the database as the release's snapshots do (sqlite's file there, or PostgreSQL as the
project's role). Each backup is one run of bin/backup, as the backups' own user (in the app's
group, to read; the repository's credentials are its, never the app's), by a systemd timer
(backup_schedule) or deploys/backup.py: the database goes into the repository as one file (sqlite's
online backup, or `pg_dump -Fc` streamed into `restic backup --stdin`), the uploads as files, both
snapshots tagged with the run; then restic forgets and prunes what backup_keep does not keep.

A backup waits for a running deploy to end before it starts (it would catch a half-migrated
database) but never takes the deploy lock: a release is never held up by a backup. Backups and
restores take turns through a lock of their own (flock on the backup state folder).

deploys/restore.py (root, under the deploy lock and the backup lock) takes a local snapshot of
the database and keeps the uploads aside, then puts the chosen run's database and uploads in
place; the live release serves them at once.
"""

from __future__ import annotations

import inspect
import json
from datetime import datetime, timezone

from pyinfra import host
from pyinfra.api import FactBase, deploy
from pyinfra.facts.files import Directory
from pyinfra.operations import files, python

from ..core import audit
from ..core.callbacks import run_shown
from ..core.context import current_settings, rendered, template, write_files
from ..core.host_files import HostFile, absent
from ..core.host_state import ReleaseInfo
from ..core.lock import hold_lock, let_go, under_migration_lock, wait_while
from ..core.shell import q
from ..core.units import remove_units, timer_on
from ..host.app_user import no_system_user, system_user
from ..host.database import dump_suffix, postgres_connect, snapshot_commands
from ..settings import DeployRefused, Settings
from ..settings.layout import as_user
from .notifications import notify_program, notify_when_done

# How long a backup waits for a deploy to end, or a restore for a backup (seconds).
LOCK_WAIT = 3600


def backup_service(settings: Settings) -> str:
    return f"backup-{settings.websiteproject}"


def unit_files(settings: Settings) -> list[str]:
    return [f"/etc/systemd/system/{backup_service(settings)}.{kind}" for kind in ("service", "timer")]


def backup_script_path(settings: Settings) -> str:
    return f"{settings.project_root}/bin/backup"


def state_dir(settings: Settings) -> str:
    """The backup's own folder (the backup user's, and its home): its lock, the last result, the
    database copy."""
    return f"/var/lib/django-deploy/backups/{settings.websiteproject}"


def cache_dir(settings: Settings) -> str:
    """restic's cache of the repository's index (the backup user's), gone when backups are off."""
    return f"/var/cache/django-deploy/restic/{settings.websiteproject}"


def credentials_file(settings: Settings) -> str:
    """backup_secrets, as JSON: root's alone (credentials_loader reads it)."""
    return f"/etc/django-deploy/backups/{settings.websiteproject}.json"


def credentials_loader(settings: Settings) -> str:
    """Runs a command as the backup user with backup_secrets in its environment (or, first word
    --as-root, as root: the restore, which gives restic the backup user's rights itself)."""
    return f"{settings.project_root}/bin/with-backup-secrets"


def as_backup_user(settings: Settings) -> str:
    """Shell prefix: the backup user's rights, the caller's environment (restic's) kept."""
    return as_user(settings.backup_user, settings.backup_user, keep_environment=True)


def database_file(settings: Settings) -> str:
    """The database's name inside the repository."""
    return f"{settings.websiteproject}.{dump_suffix(settings)}"


def restic_environment(settings: Settings) -> str:
    """Shell: the repository's address (no secret in it: the validation refuses credentials in
    the URL). RESTIC_PASSWORD and AWS_* come from backup_secrets (credentials_loader), in the
    environment only."""
    return f"export RESTIC_REPOSITORY={q(settings.backup_repository)}"


def legacy_notify_file(settings: Settings) -> str:
    """Where the webhooks of a failed backup were kept before bin/notify (notifications.py) took
    over: removed where an earlier deploy left it."""
    return f"{state_dir(settings)}/notify"


def failure_notice(settings: Settings) -> list[str]:
    """Lines of bin/backup's exit handler: a failed backup announced to the webhooks by bin/notify
    (action "backup", outcome "failed", the result as detail)."""
    return [f'  if [ "$code" -ne 0 ]; then {q(notify_program(settings))} backup failed "$result" || true; fi']


def keep_flags(settings: Settings) -> str:
    return " ".join(f"--keep-{kind} {int(count)}" for kind, count in settings.backup_keep.items() if count)


def take_backup_lock(settings: Settings) -> str:
    """Shell: hold the backup lock (flock on the state folder, file descriptor 9) until the shell
    ends, waiting up to LOCK_WAIT seconds for the backup or restore that holds it."""
    return (f"exec 9<{q(state_dir(settings))} && if ! flock -w {LOCK_WAIT} 9; then "
            "echo 'another backup or restore of this project is still running' >&2; exit 1; fi")


# The file descriptor on which bin/with-backup-secrets hands bin/backup the migration lock.
MIGRATION_LOCK_FD = 8


def hold_migration_lock_shared() -> str:
    """Shell: the migration lock (open on MIGRATION_LOCK_FD) held shared, as scheduled commands
    hold it: a release's migrations wait for the dump to end, rather than their ALTER wait for the
    dump's table locks with every query of the site queued behind it. Taken once no deploy runs."""
    fd = MIGRATION_LOCK_FD
    return (f"if ! flock -s -n {fd}; then echo 'waiting for the migrations that hold the migration lock' >&2; "
            f"flock -s {fd}; fi")


def backup_script(settings: Settings) -> str:
    """bin/backup: one backup of the database and the uploads, then retention (see the module's
    docstring; no forgetting with backup_prune off, for an append-only repository). Run as the
    backup user with backup_secrets in its environment
    (bin/with-backup-secrets). Its
    result, ok or failed, goes to <state>/last-backup (shown by status.py); a failed run's
    snapshots are forgotten."""
    state = state_dir(settings)
    copy = f"{state}/database.tmp"
    tags = f"--host {q(settings.websiteproject)} --tag django-deploy"
    if settings.database == "sqlite":
        database = (
            f"rm -f {q(copy)}",
            f"if [ ! -f {q(settings.sqlite_path)} ]; then echo 'no database yet (no release has run): "
            f"nothing to back up' >&2; exit 1; fi",
            # sqlite's online backup API: a consistent copy while the app writes.
            f"sqlite3 {q(settings.sqlite_path)} \".backup '{copy}'\"",
            f"restic backup --quiet {tags},database,\"$run\" --stdin --stdin-filename {q(database_file(settings))} "
            f"< {q(copy)}",
            f"rm -f {q(copy)}",
        )
    else:
        # pg_dump streamed into restic; dash has no pipefail, so a failed dump leaves a mark.
        failed = f"{state}/dump-failed"
        database = (
            f"rm -f {q(failed)}",
            f"{{ {postgres_connect(settings)} pg_dump -Fc || touch {q(failed)}; }} | "
            f"restic backup --quiet {tags},database,\"$run\" --stdin --stdin-filename {q(database_file(settings))}",
            f"if [ -e {q(failed)} ]; then echo 'pg_dump failed: no backup of the database' >&2; exit 1; fi",
        )
    lines = [
        "#!/bin/sh",
        f"# Backup of {settings.websiteproject} (django-deploy): the database and the uploads to",
        "# RESTIC_REPOSITORY, then restic forgets and prunes what backup_keep does not keep.",
        "set -eu",
        restic_environment(settings),
        f"export RESTIC_CACHE_DIR={q(cache_dir(settings))}",
        'run=""',
        "finished() {",
        "  code=$?",
        '  if [ "$code" -eq 0 ]; then result=ok; else result="failed (exit $code)";',
        '    [ -z "$run" ] || restic forget --quiet --tag "$run" >/dev/null 2>&1 || true; fi',
        f"  rm -f {q(copy)}",
        f"  printf '%s %s %s\\n' \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\" \"${{run:-none}}\" \"$result\" > {q(state)}/last-backup",
        *failure_notice(settings),
        "}",
        "trap finished EXIT",
        "trap 'exit 143' TERM INT",
        # Not while a deploy changes the project (a half-migrated database); a release never waits.
        wait_while(f"[ -d {q(settings.lock_dir)} ]", settings.lock_dir, LOCK_WAIT),
        take_backup_lock(settings),
        # Named once it holds the lock: no other run has this name (a failed run forgets its own).
        'run="run-$(date -u +%Y%m%dT%H%M%SZ)-$$"',
        "restic cat config >/dev/null 2>&1 || restic init",
        hold_migration_lock_shared(),
        *database,
        f"flock -u {MIGRATION_LOCK_FD}",
        f"restic backup --quiet {tags},media,\"$run\" {q(settings.media_dir)}",
    ]
    if settings.backup_prune:
        lines.append(f"restic forget --quiet --tag django-deploy --group-by host,paths {keep_flags(settings)} --prune")
    return "\n".join(lines) + "\n"


# Its source is shipped to the host (CHOOSE_PROGRAM): mutation testing leaves it as it is.
def choose_backup(snapshots: list[dict], wanted: str) -> tuple[str, str, str, str]:  # pragma: no mutate block
    """Of restic's snapshots (`restic snapshots --json`), the run to restore: the newest complete
    one (`latest`), or the one a snapshot id (or its start) belongs to. A run is complete when it
    has both its database and its uploads. Returns (database id, its path, uploads id, their path)."""
    runs: dict[str, dict] = {}
    for snapshot in snapshots:
        tags = snapshot.get("tags") or []
        run = next((tag for tag in tags if tag.startswith("run-")), None)
        kind = next((tag for tag in tags if tag in ("database", "media")), None)
        if run and kind:
            runs.setdefault(run, {})[kind] = snapshot
    complete = {run: kinds for run, kinds in runs.items() if len(kinds) == 2}
    if not complete:
        raise SystemExit("no complete backup of this project in the repository")
    if wanted == "latest":
        chosen = complete[max(complete, key=lambda run: complete[run]["database"]["time"])]
    else:
        matching = [kinds for kinds in runs.values()
                    if any(snapshot["id"].startswith(wanted) for snapshot in kinds.values())]
        if len(matching) != 1 or len(matching[0]) != 2:
            listed = ", ".join(f"{kinds['database']['short_id']} ({kinds['database']['time'][:19]})"
                               for kinds in complete.values())
            problem = "is not a complete backup" if matching else "matches no backup"
            raise SystemExit(f"restore_from: {wanted} {problem}; the backups: {listed}")
        chosen = matching[0]
    database, media = chosen["database"], chosen["media"]
    return database["id"], database["paths"][0], media["id"], media["paths"][0]


# The program the restore runs on the host: choose_backup itself, reading restic's JSON.
CHOOSE_PROGRAM = (inspect.getsource(choose_backup) + "\n\nimport json, sys\n"
                  "print(*choose_backup(json.load(open(sys.argv[1])), sys.argv[2]))\n")


# Its source is shipped to the host (NEWER_PROGRAM): mutation testing leaves it as it is.
def newer_migrations(kind: str, live: dict, source) -> list[str]:  # pragma: no mutate block
    """The migrations a backup's database has applied that the live release does not know
    (`live`: its .migrations.json, the last migration of each app), as "app.name", from `source`:
    the database's file (sqlite) or pg_restore's text of its django_migrations table
    (PostgreSQL). Apps the live release does not have are left out: their tables do not matter
    to it."""
    import sqlite3

    if kind == "sqlite":
        connection = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            rows = connection.execute("SELECT app, name FROM django_migrations").fetchall()
        finally:
            connection.close()
    else:
        rows, copying = [], False
        for line in source:
            if line.startswith("COPY ") and "django_migrations" in line:
                copying = True
            elif copying and line.startswith("\\."):
                break
            elif copying:
                fields = line.rstrip("\n").split("\t")
                rows.append((fields[1], fields[2]))
    return sorted(f"{app}.{name}" for app, name in rows if app in live and name > live[app])


# The program the restore runs, as the backup user, on the backup's database before it touches
# anything: newer_migrations itself. sqlite's file arrives on stdin and is read from a private
# copy; Python's sqlite has no function that reads or writes files, whatever the file's schema.
NEWER_PROGRAM = (inspect.getsource(newer_migrations) + "\n\nimport json, shutil, sys, tempfile\n"
                 "kind, live = sys.argv[1], json.loads(sys.argv[2])\n"
                 "if kind == 'sqlite':\n"
                 "    with tempfile.TemporaryDirectory() as folder:\n"
                 "        with open(folder + '/database', 'wb') as copy:\n"
                 "            shutil.copyfileobj(sys.stdin.buffer, copy)\n"
                 "        print(*newer_migrations(kind, live, folder + '/database'))\n"
                 "else:\n"
                 "    print(*newer_migrations(kind, live, sys.stdin))\n")


def restore_command(settings: Settings, wanted: str, stamp: str) -> str:
    """Shell, as root: under the backup lock, fetch the chosen run's database and uploads from the
    repository, snapshot the database (snapshots/before-restore-<stamp>.*) and move the uploads
    aside (snapshots/before-restore-<stamp>-media), then put the backup's in place.

    What comes from the repository is not trusted (it holds what the app wrote): restic runs with
    the backup user's rights (it can make no device node, no file of root's), without a cache;
    only a run whose paths are this project's database and uploads is taken; the fetched uploads
    become root's, out of the app's reach, and every folder on the way
    to them is checked to be a real folder of root's before root moves them into place; what
    lands at shared/media must be a folder, not a link.

    A backup whose database has migrations the live release does not know is refused before
    anything changes (newer_migrations); once in place, the database is migrated to the live
    release's migrations, under the migration lock: an older backup serves under today's code."""
    work = f"{settings.project_root}/restore-{stamp}"
    fetched = f"{settings.shared_dir}/.restore-{stamp}"
    before = f"{settings.snapshots_dir}/before-restore-{stamp}"
    suffix = dump_suffix(settings)
    take_before, _ = snapshot_commands(settings, f"{before}.{suffix}")
    _, put_back = snapshot_commands(settings, f"{work}/database")
    owner = f"{settings.uwsgi_user}:{settings.uwsgi_group}"
    restic = f"{as_backup_user(settings)} restic --no-cache"
    media, uploads = q(settings.media_dir), f'"{work}/media$media_path"'
    live_migrations = f"{settings.current_link}/.migrations.json"
    kind = "sqlite" if settings.database == "sqlite" else "postgresql"
    check = f"{as_backup_user(settings)} python3 -c {q(NEWER_PROGRAM)} {kind} \"$live_migrations\""
    if kind == "sqlite":
        read_migrations = f"{check} < {q(work)}/database"
    else:
        read_migrations = (f"{as_backup_user(settings)} pg_restore --data-only --table=django_migrations -f - "
                           f"< {q(work)}/database | {check}")
    migrate = under_migration_lock(settings.migration_lock, f"{settings.manage_command} migrate --noinput")
    not_migrated = (f"the backup's database and uploads are in place, but migrating the database to the live "
                    f"release failed (above); the database before the restore is in {before}.{suffix}")
    not_ours = (f"the backup's paths ($database_path, $media_path) are not this project's "
                f"(/{database_file(settings)}, {settings.media_dir}): refused")
    steps = [
        "set -eu",
        "cd /",
        restic_environment(settings),
        take_backup_lock(settings),
        # Whatever happens, the work folders (a copy of the backup) go.
        f"trap 'rm -rf {work} {fetched}' EXIT",
        f"rm -rf {q(work)} {q(fetched)} && mkdir -m 700 {q(work)}",
        f"install -d -o {q(settings.backup_user)} -g {q(settings.backup_user)} -m 700 {q(fetched)}",
        f"{restic} snapshots --json --tag django-deploy > {q(work)}/snapshots.json",
        f"python3 -c {q(CHOOSE_PROGRAM)} {q(work)}/snapshots.json {q(wanted)} > {q(work)}/chosen",
        f"read database_id database_path media_id media_path < {q(work)}/chosen",
        f'if [ "$database_path" != {q("/" + database_file(settings))} ] || [ "$media_path" != {media} ]; then '
        f'echo "{not_ours}" >&2; exit 1; fi',
        'echo "restoring the backup $database_id (uploads: $media_id)"',
        f'{restic} dump "$database_id" "$database_path" > {q(work)}/database',
        f'{restic} restore --quiet "$media_id" --target {q(fetched)}',
        # root's from here on: the app can no longer change the tree root reads and moves.
        f"mv {q(fetched)} {q(work)}/media && chown -R root:root {q(work)}/media",
        f'path={q(work)}/media; for part in $(echo "$media_path" | tr / " "); do path="$path/$part"; '
        f'if [ -L "$path" ] || [ ! -d "$path" ] || [ "$(stat -c %u "$path")" != 0 ]; then '
        f"echo \"the backup's uploads are not a plain folder ($path): refused\" >&2; exit 1; fi; done",
        # With a live release: the backup's migrations, read as the backup user, must be known to it.
        f"live_migrations=$(cat {q(live_migrations)} 2>/dev/null || true)",
        f'if [ -n "$live_migrations" ]; then newer=$({read_migrations}) || '
        "{ echo \"the backup's migrations could not be read: refused\" >&2; exit 1; }; "
        'if [ -n "$newer" ]; then echo "the backup\'s database has migrations the live release does not know '
        '($newer): release code that has them, then restore; nothing was changed" >&2; exit 1; fi; fi',
        take_before,
        # (psql's answers to the restored dump's statements are not worth showing.)
        put_back if settings.database == "sqlite" else f"{put_back} > /dev/null",
        f"if [ -d {media} ]; then mv {media} {q(before)}-media; fi",
        # Should the backup's uploads not go in place, the ones there before come back.
        f"if ! mv {uploads} {media}; then "
        f"mv {q(before)}-media {media}; echo 'the uploads could not be restored' >&2; exit 1; fi",
        # chown -R never follows a link it meets; shared/ is root's, so the check holds.
        f"chown -R {q(owner)} {media} && [ -d {media} ] && [ ! -L {media} ]",
        f"echo {q(f'restored; the database and uploads before it are in {before}.{suffix} and {before}-media')}",
        f'if [ -n "$live_migrations" ]; then if ! {{ {migrate}; }}; then echo {q(not_migrated)} >&2; exit 1; fi; '
        "echo \"the backup's database is migrated to the live release's migrations\"; fi",
    ]
    return "\n".join(steps)


def last_backup(settings: Settings) -> str:
    """Shell: the last backup's line (bin/backup writes it in its state folder), read with the
    backup user's rights, for at most 5 seconds, at most 200 characters, printable ones only: a
    link, a FIFO or a terminal's escape sequences put there show nothing of root's, hold up no
    run, and reach no operator's terminal."""
    return (f"timeout 5 {as_user(settings.backup_user, settings.backup_user)} head -c 200 "
            f"{q(state_dir(settings))}/last-backup 2>/dev/null | tr -cd '[:print:]'")


def backup_now_command(settings: Settings) -> str:
    """Shell: a backup now, through the backup service (the timer's own path); on failure its log."""
    service = f"{backup_service(settings)}.service"
    return (f"if ! systemctl start {service}; then journalctl -u {service} -n 30 --no-pager -o cat >&2; exit 1; fi; "
            f"echo \"last backup: $({last_backup(settings)})\"")


class BackupStatus(FactBase):
    """The last backup's time, run and result, and when the timer runs next; None when backups
    are not set up here."""

    def command(self, state: str, timer: str, last: str) -> str:
        return (f"if [ -d {q(state)} ]; then "
                f"last=\"$({last})\"; echo \"last backup: ${{last:-none yet}}\"; "
                f"echo \"next backup: $(systemctl show -P NextElapseUSecRealtime {q(timer)})\"; fi")

    def process(self, output):
        return list(output) or None


def backup_status(settings: Settings) -> list[str]:
    """Lines for status.py."""
    if not settings.backs_up:
        return []
    return host.get_fact(BackupStatus, state=state_dir(settings), timer=f"{backup_service(settings)}.timer",
                         last=last_backup(settings)) or [
        "backups: not set up yet (run skeleton.py or all.py)"]


def make_backup_user(settings: Settings) -> None:
    """The backup user: a system user of its own, in the app's group (to read the database and
    the uploads), its home the backup's state folder (its ~/.ssh for an SFTP repository)."""
    system_user(settings.backup_user, state_dir(settings), "the backups", groups=(settings.uwsgi_group,))


def backup_units(settings: Settings) -> None:
    """The backup user, its credentials, the backup script, service and timer on the host that
    backs up (skeleton.py); nothing of them anywhere else, nor anywhere once backups are off."""
    if not settings.backs_up:
        remove_backups(settings)
        return
    make_backup_user(settings)
    user = settings.backup_user
    folders = [state_dir(settings), cache_dir(settings)]
    if settings.backup_repository.startswith("/"):
        folders.append(settings.backup_repository)
    for path in folders:
        # Recursive: what an earlier deploy left there as the app's (backups ran as the app) is
        # the backup user's (chown -R follows no link it meets).
        files.directory(name=f"Folder {path} (the backup user's)", path=path, user=user, group=user, mode="700",
                        recursive=True)
    absent(name=f"No webhooks file of an earlier deploy in {state_dir(settings)}",
           paths=[legacy_notify_file(settings)])
    service_file, timer_file = unit_files(settings)
    service = write_files(f"the backup's credentials, script and service ({backup_service(settings)})", [
        HostFile(credentials_file(settings), json.dumps(settings.backup_secrets, sort_keys=True).encode(), "600",
                 secret=True),
        rendered("backups/with-backup-secrets.py.j2", credentials_loader(settings), settings, mode="755",
                 credentials=credentials_file(settings), lock_fd=MIGRATION_LOCK_FD),
        HostFile(backup_script_path(settings), backup_script(settings).encode(), "755"),
        rendered("backups/backup.service.j2", service_file, settings, mode="644", script=backup_script_path(settings),
                 loader=credentials_loader(settings))])
    # Its own step: a changed timer means restarting the timer.
    timer = template("backups/backup.timer.j2", timer_file, settings, mode="644")
    timer_on(f"{backup_service(settings)}.timer", service, timer)


def remove_backups(settings: Settings) -> None:
    """Backups off (or the project removed): the timer, the units, the script, the credentials,
    the state, restic's cache and the backup user go. The repository stays: it is off the host,
    and may be all that is left."""
    remove_units([backup_service(settings)])
    absent(name=f"Remove the backup script, credentials and state of {settings.websiteproject}",
           paths=[backup_script_path(settings), credentials_loader(settings), credentials_file(settings),
                  state_dir(settings), cache_dir(settings)])
    no_system_user(settings.backup_user, "the backups")


def _refuse_unless_set(settings: Settings, action: str) -> None:
    if not settings.backup_repository:
        raise DeployRefused(f"host {host.name}: backup_repository: not set, so there are no backups to {action}; "
                            "nothing was changed")


@deploy("Backup")
def backup_now():
    settings = current_settings()
    _refuse_unless_set(settings, "take")
    if settings.backs_up:
        python.call(name=f"Back up {settings.websiteproject} now", function=run_shown,
                    command=backup_now_command(settings), secrets={**settings.secrets, **settings.backup_secrets},
                    what="the backup")


@deploy("Restore")
def restore():
    settings = current_settings()
    _refuse_unless_set(settings, "restore")
    if not settings.restore_from:
        raise DeployRefused(f"host {host.name}: restore_from: give the backup to restore, a snapshot id or "
                            "latest (deploys/status.py shows the last one); nothing was changed")
    if settings.confirm_restore != settings.websiteproject:
        raise DeployRefused(
            f"host {host.name}: confirm_restore: restoring {settings.restore_from} replaces the database and "
            f"uploads of {settings.websiteproject} (a snapshot of both is kept on the host); run with "
            f"--data confirm_restore={settings.websiteproject} to confirm; nothing was changed")
    if not settings.backs_up:
        return
    if not host.get_fact(Directory, path=state_dir(settings)):
        raise DeployRefused(f"host {host.name}: backups are not set up here yet: run deploys/all.py first; "
                            "nothing was changed")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
    live = host.get_fact(ReleaseInfo, link=settings.current_link)
    detail = f"backup {settings.restore_from} under release {live['id'] if live else 'none'}"
    hold_lock(settings, "restore", on_failure=audit.failure_command(settings, "restore", detail))
    # RESTIC_PASSWORD and the repository's credentials from backup_secrets, in the environment only.
    python.call(name=f"Restore {settings.restore_from} from {settings.backup_repository}", function=run_shown,
                command=(f"{q(credentials_loader(settings))} --as-root sh -c "
                         f"{q(restore_command(settings, settings.restore_from, stamp))}"),
                secrets={**settings.secrets, **settings.backup_secrets}, what="the restore")
    audit.record(settings, "restore", detail)
    let_go(settings)
    notify_when_done(settings, "restore", "restored", settings.restore_from, live["id"] if live else None)
