"""The steps of a rollback that pyinfra does not ship: what it decides from, read in one round
trip; migrating back with the newer release's migration files; its end in one command."""

from __future__ import annotations

import json
import shlex

from pyinfra import host
from pyinfra.api import FactBase, operation

from .lock import release_lock_command
from .operations import Releases, under_migration_lock

q = shlex.quote


class RollbackFacts(FactBase):
    """What a rollback decides from, in one round trip: the live release's metadata (as
    ReleaseInfo), the release folders in the order they went live (as Releases, from the history),
    and the small files of each release that say what it did to the database (RELEASE_FILES), by
    (release id, file name), stripped; an empty file counts as missing."""

    RELEASE_FILES = (".migrations.json", ".snapshot")
    MARK = "@@django-deploy"  # starts the lines that open a section; no JSON or path line does

    def command(self, link: str, releases_dir: str, history: str) -> str:
        files = " ".join(f"{q(releases_dir)}/*/{name}" for name in self.RELEASE_FILES)
        return (f"echo '{self.MARK} live'; cat {q(link)}/.release.json 2>/dev/null; echo; "
                f"echo '{self.MARK} releases'; ({Releases().command(releases_dir, history)}); "
                f'for path in {files}; do [ -f "$path" ] || continue; release="${{path%/*}}"; '
                f"printf '\\n{self.MARK} file %s %s\\n' \"${{path##*/}}\" \"${{release##*/}}\"; "
                f'cat "$path"; done; true')

    def process(self, output):
        sections: list[tuple[str, list[str]]] = []
        for line in output:
            if line.startswith(self.MARK + " "):
                sections.append((line[len(self.MARK) + 1:], []))
            elif sections:
                sections[-1][1].append(line)
        found = {"live": None, "releases": {}, "files": {}}
        for header, lines in sections:
            text = "\n".join(lines).strip()
            if header == "live":
                found["live"] = json.loads(text) if text else None
            elif header == "releases":
                found["releases"] = Releases().process(lines)
            elif header.startswith("file ") and text:
                name, release_id = header[len("file "):].split(" ", 1)
                found["files"][(release_id, name)] = text
        return found


@operation(is_idempotent=False)
def migrate_back(manage: str, steps: list[tuple[str, str]], restore_snapshot: str | None, snapshot: str | None,
                 lock: str):
    """Migrate apps back (`steps`: app, target migration) with the newer release's migration files
    (migrate_back_command)."""
    if not steps:
        host.noop("no migrations to undo")
        return
    yield under_migration_lock(lock, migrate_back_command(manage, steps, restore_snapshot, snapshot))


def migrate_back_command(manage: str, steps: list[tuple[str, str]], restore_snapshot: str | None,
                         snapshot: str | None) -> str:
    """Shell: plan the migrations back; if one cannot be undone, refuse, or, when `restore_snapshot`
    is given, restore the snapshot taken before the newer migrations ran (writes since then are
    lost); else migrate each app back."""
    plans = " && ".join(f"{manage} migrate {q(app)} {q(target)} --plan" for app, target in steps)
    migrate = " && ".join(f"{manage} migrate {q(app)} {q(target)} --noinput" for app, target in steps)
    if restore_snapshot:
        irreversible = (f"echo 'irreversible migrations: restoring the snapshot {snapshot}; "
                        f"writes since it was taken are lost' >&2; {restore_snapshot}")
    else:
        irreversible = ("echo \"cannot roll back: these migrations cannot be undone:\" >&2; "
                        "printf '%s\\n' \"$plan\" >&2; "
                        "echo 'set rollback_restore_snapshot=true to restore the database snapshot instead "
                        "(writes since that snapshot are lost)' >&2; exit 1")
    return (f'plan="$({plans})" || exit 1; '
            f'if printf "%s" "$plan" | grep -q IRREVERSIBLE; then {irreversible}; else {migrate}; fi')


@operation(is_idempotent=False)
def finish_rollback(release_dir: str, history: str, release_id: str, target_id: str, audit: str, lock_dir: str,
                    token: str):
    """The end of a rollback, one command (finish_rollback_command)."""
    yield finish_rollback_command(release_dir, history, release_id, target_id, audit,
                                  release_lock_command(lock_dir, token))


def finish_rollback_command(release_dir: str, history: str, release_id: str, target_id: str, audit: str,
                            release_lock: str) -> str:
    """Shell: the release rolled away from is marked (a later plain rollback does not return to
    it), the history records both releases, `audit` writes the run's entry, then the lock is
    released. A failing step fails the command with the lock still held, so the failure cleanup
    writes the failed entry and releases it."""
    steps = [f"touch {q(release_dir)}/.rolled-back",
             f"{history} record {q(release_id)} rolled-back",
             f"{history} record {q(target_id)} live",
             audit,
             release_lock]
    return " && ".join(f"{{ {step}; }}" for step in steps)
