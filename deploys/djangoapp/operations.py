"""Operations and facts pyinfra does not ship, each checking the host's state when it runs."""

from __future__ import annotations

import json
import os
import shlex

from pyinfra import host
from pyinfra.api import FactBase, FileUploadCommand, operation
from pyinfra.facts.files import Directory, File, Link, Sha256File

from .host_files import FileStates, HostFile, host_files
from .lock import release_lock_command
from .switch import link_command

q = shlex.quote


class ReleaseInfo(FactBase):
    """The metadata (.release.json) of the release a link points at, or None without one."""

    def command(self, link: str) -> str:
        return f"cat {q(link)}/.release.json 2>/dev/null || true"

    def process(self, output):
        text = "\n".join(output).strip()
        return json.loads(text) if text else None


class Releases(FactBase):
    """The release folders on the host, oldest first: id -> "ok", "failed", "rolled-back",
    "unreleased" (complete, but it never went live: a run killed before its switch) or "partial"
    (a build a killed run left behind). The order is the one in which they went live, from the
    history (`history`, release-history's file): a release made again under its id takes its new
    place, and one a rollback went back to keeps its own. Those that never went live come first.
    Without a history (a host of a kit before it), the order in which they were unpacked."""

    default = dict
    HISTORY = "@@history"  # opens the history's lines; no line of the folders' starts so

    def command(self, releases_dir: str, history: str | None = None) -> str:
        folders = (f"(cd {q(releases_dir)} 2>/dev/null && for release in *; do "
                   f"[ -d \"$release\" ] || continue; "
                   f"case \"$release\" in *.partial) echo \"0 $release partial\"; continue;; esac; "
                   f"state=ok; [ -e \"$release/.failed\" ] && state=failed; "
                   f"[ -e \"$release/.rolled-back\" ] && state=rolled-back; "
                   f"echo \"$(stat -c %Y \"$release/.release.json\" 2>/dev/null || echo 0) $release $state\"; "
                   f"done | sort -n -k1,1 -s || true)")
        if history is None:
            return folders
        return f"{folders}; echo {self.HISTORY}; cat {q(history)} 2>/dev/null; true"

    def process(self, output):
        lines = list(output)
        split = lines.index(self.HISTORY) if self.HISTORY in lines else len(lines)
        rows = (line.split() for line in lines[:split] if line.strip())
        folders = {release_id: state for _, release_id, state in rows}
        went_live = released_order(lines[split + 1:])
        if split == len(lines) or not went_live:
            return folders
        never = {release_id: ("unreleased" if state == "ok" else state)
                 for release_id, state in folders.items() if release_id not in went_live}
        return {**never, **{release_id: folders[release_id] for release_id in went_live if release_id in folders}}


def released_order(history: list[str]) -> list[str]:
    """The ids a release made live, in the order of the last time each did, from the history's
    lines. The release a rollback goes back to is recorded live too, right after the one it rolls
    back from is recorded rolled back: that does not move it."""
    order: dict[str, int] = {}
    previous = None
    for number, line in enumerate(history):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        if entry.get("status") == "live" and not (previous or {}).get("status") == "rolled-back":
            order.pop(entry.get("id"), None)
            order[entry.get("id")] = number
        previous = entry
    return [release_id for release_id in order if isinstance(release_id, str)]


class FolderStates(FactBase):
    """Owner, group and mode ("755") of each of `paths` that is a folder (a link to one is
    followed), by path; the others are missing."""

    default = dict

    def command(self, paths: list[str]) -> str:
        return (f"for path in {' '.join(q(path) for path in paths)}; do "
                "[ -d \"$path\" ] && stat -L -c '%U %G %a %n' \"$path\"; done; true")

    def process(self, output):
        found = {}
        for line in output:
            user, group, mode, path = line.split(" ", 3)
            found[path] = (user, group, mode)
        return found


@operation()
def folders(layout: list[tuple[str, str, str, str]]):
    """Folders (path, owner, group, mode; a parent before its children), made or set right in
    one command, after one look at all of them: files.directory takes four round trips each."""
    found = host.get_fact(FolderStates, paths=[path for path, *_ in layout])
    wrong = [(path, user, group, mode) for path, user, group, mode in layout
             if found.get(path) != (user, group, mode)]
    if not wrong:
        host.noop(f"{len(layout)} folders as they should be")
        return
    yield folders_command(wrong)


def folders_command(layout: list[tuple[str, str, str, str]]) -> str:
    """Shell: each folder made, or set to its owner, group and mode (install -d does both)."""
    return " && ".join(f"install -d -o {q(user)} -g {q(group)} -m {q(mode)} {q(path)}"
                       for path, user, group, mode in layout)


@operation()
def self_signed_certificate(certificate: str, key: str, common_name: str, replace: bool = False):
    """Generate a self-signed certificate and its key, unless both exist already (or `replace`).
    The key is readable by root alone, from its first byte on: the webserver's master reads it as
    root, and no other process of the host (the apps of this and other projects) needs it."""
    found = host.get_fact(FileStates, paths=[certificate, key])
    key_access = f"chown root:root {q(key)} && chmod 600 {q(key)}"
    if not replace and certificate in found and key in found:
        if found[key][1:] == ("root", "root", "600"):
            host.noop(f"{certificate} exists")
        else:
            yield key_access
        return
    yield (
        "(umask 077 && openssl req -x509 -newkey rsa:2048 -sha256 -days 825 -nodes -batch "
        f"-subj {q('/CN=' + common_name)} -addext {q('subjectAltName=DNS:' + common_name)} "
        f"-keyout {q(key)} -out {q(certificate)} 2>/dev/null) && chmod 644 {q(certificate)} && {key_access}"
    )


@operation()
def upload_and_unpack(src: str, archive: str, release_dir: str, venv: str, metadata: dict, group: str,
                      readers: list[str]):
    """Upload a source archive and unpack it into a new release folder, complete or not at all:
    it is built under a temporary name (REVISION, .release.json and the link to its virtualenv
    written) and renamed into place. The folder is root's, and only `group` (the app's) and the
    `readers` groups (a webserver of another group, for the static files) may enter it: a file
    that should not have shipped, or bytecode compiled from it, is not for every user. A release
    made again under its id (it failed) keeps its folder, its link to its virtualenv set anew: its
    dependencies may have changed since."""
    if host.get_fact(Directory, path=release_dir):
        if host.get_fact(Link, path=f"{release_dir}/.venv") == venv:
            host.noop(f"{release_dir} exists")
        else:
            yield link_command(f"{release_dir}/.venv", q(venv))
        return
    yield FileUploadCommand(src, archive)
    building = f"{release_dir}.partial"
    yield (f"rm -rf {q(building)} && mkdir -p {q(building)} && "
           f"tar -xzf {q(archive)} -C {q(building)} --no-same-owner && "
           f"printf '%s\\n' {q(metadata['id'])} > {q(building)}/REVISION && "
           f"printf '%s\\n' {q(json.dumps(metadata, sort_keys=True))} > {q(building)}/.release.json && "
           f"ln -s {q(venv)} {q(building)}/.venv && "
           f"chmod -R u=rwX,go=rX {q(building)} && chgrp {q(group)} {q(building)} && chmod 750 {q(building)} && "
           + "".join(f"setfacl -m {q(f'g:{reader}:rx')} {q(building)} && " for reader in readers)
           + f"chmod 640 {q(archive)} && mv -T {q(building)} {q(release_dir)}")


@operation()
def build_virtualenv(path: str, python: str, uv: str, install: list[str], env: dict[str, str] | None = None,
                     python_install_dir: str | None = None):
    """Build a virtualenv for one dependency set, once (`install`: the commands that fill it). A
    folder without the `.complete` marker is a leftover of a build that died: it is thrown away
    and built again. When the install fails for want of a newer Python, one line says so first."""
    if host.get_fact(File, path=f"{path}/.complete"):
        host.noop(f"virtualenv {path} is ready")
        return
    yield from virtualenv_commands(path, python, uv, install, env, python_install_dir)


def virtualenv_commands(path: str, python: str, uv: str, install: list[str],
                        env: dict[str, str] | None = None, python_install_dir: str | None = None) -> list[str]:
    """Shell: a new virtualenv at `path` on `python` (an interpreter's path; with
    `python_install_dir`, a version that uv finds on the host or installs there), filled by the
    `install` commands (each may be a small shell program), with `env` set for them; marked
    complete only when all of them succeeded. A failing one shows its output, after a line naming
    the cause when it wants another Python."""
    prefix = " ".join(f"{name}={q(value)}" for name, value in (env or {}).items())
    prefix = f"export {prefix}; " if prefix else ""
    log = f"{path}/.install.log"
    create = f"{uv} venv --quiet --python {q(python)} {q(path)}"
    if python_install_dir:
        # The host's own interpreter first (Debian keeps it patched), else one uv installed before,
        # else uv downloads one into the project's folder.
        unavailable = (f"python_interpreter: Python {python} is not on this host, and uv could not install it "
                       "(its error is above)")
        create = (f"{{ {prefix}UV_PYTHON_INSTALL_DIR={q(python_install_dir)} {uv} venv --quiet "
                  f"--python-preference system --no-project --python {q(python)} {q(path)} "
                  f"|| {{ echo {q(unavailable)} >&2; exit 1; }}; }}")
    commands = [f"rm -rf {q(path)} && {create}"]
    for command in install:
        commands.append(
            f"if ! ({prefix}{command}) > {q(log)} 2>&1; then "
            f"if grep -qiE 'current Python version|requires-python|Requires-Python' {q(log)}; then "
            f"echo \"the dependencies need another Python than {python} ($({q(path)}/bin/python -V 2>&1)): set "
            f"python_interpreter, or use a newer Debian release\" >&2; fi; cat {q(log)} >&2; exit 1; fi")
    commands.append(f"rm -f {q(log)} && touch {q(path)}/.complete")
    return commands


APACHE_ITEMS = {
    # kind: (enabled folder, file suffix, enable tool, disable tool)
    "module": ("mods-enabled", "load", "a2enmod", "a2dismod"),
    "site": ("sites-enabled", "conf", "a2ensite", "a2dissite"),
    "conf": ("conf-enabled", "conf", "a2enconf", "a2disconf"),
}


@operation()
def apache_enabled(kind: str, names: list[str], enabled: bool = True, tool: str | None = None):
    """Enable (or disable) Apache modules, sites or confs with Debian's a2en*/a2dis* tools, only
    those not in that state already. `tool` overrides the enable tool (the seed role's
    apache2_check_binary_name)."""
    folder, suffix, enable, disable = APACHE_ITEMS[kind]
    to_change = [name for name in names
                 if bool(host.get_fact(Link, path=f"/etc/apache2/{folder}/{name}.{suffix}")) != enabled]
    if not to_change:
        host.noop(f"apache {kind}s {', '.join(names)} already {'enabled' if enabled else 'disabled'}")
        return
    yield f"{q((tool or enable) if enabled else disable)} -q {' '.join(q(name) for name in to_change)}"


def read_json(path: str, key: str) -> str:
    """Shell: one value of a JSON file (strings as they are, anything else as JSON)."""
    return (f"python3 -c 'import json, sys; value = json.load(open(sys.argv[1]))[sys.argv[2]]; "
            f"print(value if isinstance(value, str) else json.dumps(value))' {q(path)} {q(key)}")


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


def under_migration_lock(lock: str, command: str) -> str:
    """Shell: `command` (migrations) holding the migration lock exclusively: scheduled jobs that
    run hold it shared (schedules.py), as does a backup while it dumps the database (a dump's
    table locks would make a migration's ALTER wait, and every query of the site queue behind
    it), so they finish first, and new ones wait; the run says when it waits. The lock's folder
    is root's alone; flock keeps the lock to itself (-o): no process the command starts (the app's
    code, as the app user) inherits it and could hold it past the migrations."""
    waiting = ("waiting for the scheduled commands or the backup's database dump that hold the migration lock "
               "to end")
    return (f"install -d -m 700 {q(os.path.dirname(lock))} && "
            f"{{ flock -n -o {q(lock)} true || echo {q(waiting)}; }} && flock -o {q(lock)} sh -c {q(command)}")


@operation(is_idempotent=False)
def migrate_with_snapshot(release_dir: str, manage: str, snapshot: str, take_snapshot: str,
                          restore_snapshot: str, lock: str, live_migrations: str, lock_timeout: int = 0,
                          statement_timeout: int = 0):
    """Migrate the database from the new release (migrate_command): the live release keeps the
    database it knows if a migration fails."""
    yield under_migration_lock(lock, migrate_command(release_dir, manage, snapshot, take_snapshot, restore_snapshot,
                                                     live_migrations, lock_timeout, statement_timeout))


@operation(is_idempotent=False)
def finish_release(history: str, history_file: str, release_id: str, releases_dir: str, versions_dir: str,
                   venvs_dir: str, snapshots_dir: str, link: str, keep: int, lock_dir: str, token: str,
                   python_dir: str):
    """Record the release as live, keep the newest `keep` good releases (releases_to_prune),
    release the deploy lock: one command, as nothing here can wait for anything else."""
    live = host.get_fact(ReleaseInfo, link=link)
    releases = host.get_fact(Releases, releases_dir=releases_dir, history=history_file)
    pruned = releases_to_prune(releases, live and live["id"], keep, releasing=release_id)
    yield finish_command(history, release_id, releases_dir, versions_dir, venvs_dir, snapshots_dir, pruned,
                         release_lock_command(lock_dir, token), python_dir)


def finish_command(history: str, release_id: str, releases_dir: str, versions_dir: str, venvs_dir: str,
                   snapshots_dir: str, pruned: list[str], release_lock: str, python_dir: str) -> str:
    """Shell: the release is good and live in the history, the pruned releases go; then the lock
    is released whatever happened before (the command fails if a step did)."""
    # A release re-made under an id that failed or was rolled back before is good now.
    release_dir = f"{releases_dir}/{release_id}"
    steps = [f"rm -f {q(release_dir)}/.failed {q(release_dir)}/.rolled-back",
             f"{history} record {q(release_id)} live",
             *prune_commands(releases_dir, versions_dir, venvs_dir, snapshots_dir, pruned, python_dir)]
    return (" && ".join(f"{{ {step}; }}" for step in steps)
            + f"; finished=$?; {release_lock}; [ $finished -eq 0 ]")


def releases_to_prune(releases: dict[str, str], live_id: str | None, keep: int,
                      releasing: str | None = None) -> list[str]:
    """Of `releases` (id -> state, in the order they went live), those to remove: all but the
    newest `keep` good ones, the live one and the one a plain rollback returns to (the newest good
    release before the live one that was not rolled back). The one being released (`releasing`)
    counts as the newest good one, whatever the fact said of it. Failed releases do
    not count, and only the newest failed one is kept, to look at; builds a killed run left behind
    ("partial", "unreleased") go."""
    if releasing is not None:
        # At the release's end its "live" line is not in the history yet (the fact calls it
        # unreleased, or puts it where it went live before): it is the newest good one now.
        releases = {**{key: state for key, state in releases.items() if key != releasing}, releasing: "ok"}
    good = [release_id for release_id, state in releases.items() if state in ("ok", "rolled-back")]
    failed = [release_id for release_id, state in releases.items() if state == "failed"]
    kept = set(good[-keep:]) | set(failed[-1:]) | {releasing}
    if live_id in releases:
        before_live = list(releases)[:list(releases).index(live_id)]
        kept |= {live_id, *[release_id for release_id in before_live if releases[release_id] == "ok"][-1:]}
    return [release_id for release_id in releases if release_id not in kept]


def prune_commands(releases_dir: str, versions_dir: str, venvs_dir: str, snapshots_dir: str,
                   pruned: list[str], python_dir: str) -> list[str]:
    """Shell: remove the `pruned` releases, with their archives and snapshots, then the virtualenvs
    no remaining release uses, then the interpreters uv installed (`python_dir`) once no virtualenv
    runs on them."""
    if not pruned:
        return []
    # Snapshots by their exact names: release 1's are not release 1.1's.
    commands = [f"rm -rf {q(releases_dir + '/' + release_id)} {q(versions_dir + '/' + release_id)}.tar.gz "
                f"{q(snapshots_dir + '/' + release_id)}.sqlite3 {q(snapshots_dir + '/' + release_id)}.dump"
                for release_id in pruned]
    # A virtualenv is shared by every release with the same dependency set: keep those in use.
    return commands + [
        f"for venv in {q(venvs_dir)}/*; do [ -d \"$venv\" ] || continue; used=no; "
        f"for release in {q(releases_dir)}/*/; do "
        f"[ \"$(readlink \"$release.venv\")\" = \"$venv\" ] && used=yes; done; "
        f"[ $used = yes ] || rm -rf \"$venv\"; done",
        # A virtualenv names the interpreter it runs on in its pyvenv.cfg (home = ...).
        f"if [ -d {q(python_dir)} ] && ! grep -qsF {q(python_dir + '/')} {q(venvs_dir)}/*/pyvenv.cfg; "
        f"then rm -rf {q(python_dir)}; fi",
    ]


@operation()
def install_tested_config(staged: str, dest: str, test_command: str):
    """Put the staged copy of a webserver config in place when the config there differs from it
    (a new version, or a hand edit), if the webserver's config test accepts it; a rejected one is
    taken back out and the staged copy dropped (so the next run tries again), and the run fails."""
    staged_sum = host.get_fact(Sha256File, path=staged)
    if staged_sum and staged_sum == host.get_fact(Sha256File, path=dest):
        host.noop(f"{dest} is as rendered")
        return
    yield install_config_command(staged, dest, test_command)


def install_config_command(staged: str, dest: str, test_command: str) -> str:
    """Shell: the staged config in place if `test_command` accepts it; else the one before back
    (or none, if there was none), the staged copy dropped, and a failure naming the file."""
    rejected = f"the webserver rejected the new {dest}: the previous one stays"
    return (f"if [ -f {q(dest)} ]; then cp -a {q(dest)} {q(dest)}.previous; fi && "
            f"install -m 644 {q(staged)} {q(dest)} && "
            f"if ! {test_command}; then "
            f"if [ -f {q(dest)}.previous ]; then mv -f {q(dest)}.previous {q(dest)}; else rm -f {q(dest)}; fi; "
            f"rm -f {q(staged)}; echo {q(rejected)} >&2; exit 1; fi; rm -f {q(dest)}.previous")


@operation()
def secret_file(path: str, content: str, user: str, group: str, mode: str):
    """Install a file holding secrets without its content ever appearing in pyinfra's output (only
    hashes are compared: files.template/put would print it with --diff), the file readable by
    root alone until it has its final owner and mode (host_files.py)."""
    yield from host_files._inner(files=[HostFile(path, content.encode(), mode, user, group, secret=True)])
