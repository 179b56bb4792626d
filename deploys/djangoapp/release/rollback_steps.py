"""The steps of a rollback that pyinfra does not ship: what it decides from, read in one round
trip; what migrating back would drop; migrating back with the newer release's migration files;
its end in one command."""

from __future__ import annotations

import json

from pyinfra import host, logger
from pyinfra.api import FactBase, operation

from ..core.context import TEMPLATES
from ..core.host_state import Releases
from ..core.lock import release_lock_command, under_migration_lock
from ..core.shell import q, visible
from ..settings import DeployRefused, Settings


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


def drops_command(manage: str, call: str) -> str:
    """Shell: `manage shell -c` (the live release's Django, as the app user, as `manage` runs it)
    with templates/app/rollback-drops.py, then `call`. Sent whole on each run, so a host the
    skeleton has not yet updated counts the same way."""
    code = (TEMPLATES / "app" / "rollback-drops.py").read_text() + "\n" + call + "\n"
    return f"{manage} shell --verbosity 0 -c {q(code)}"


def dropped_data_command(manage: str, steps: list[tuple[str, str]]) -> str:
    """Shell: prints what migrating back to `steps` drops, as one JSON line last
    (rollback-drops.py's print_dropped_data)."""
    return drops_command(manage, f"print_dropped_data({[list(step) for step in steps]!r})")


def refuse_to_drop_data_command(manage: str, steps: list[tuple[str, str]], project: str) -> str:
    """Shell: fails naming the tables and columns migrating back to `steps` would drop with rows in
    them (rollback-drops.py's refuse_to_drop_data)."""
    return drops_command(manage, f"refuse_to_drop_data({[list(step) for step in steps]!r}, {project!r})")


class DroppedData(FactBase):
    """What migrating back drops (rollback-drops.py's print_dropped_data): {"drops", "irreversible",
    "holding_data", "empty"}; or {"error": what Django said} when it could not tell."""

    FAILED = "@@django-deploy failed"

    def command(self, manage: str, steps: list[tuple[str, str]]) -> str:
        return f"{dropped_data_command(manage, steps)} 2>&1 || echo '{self.FAILED}'"

    def process(self, output):
        lines = list(output)
        if lines and lines[-1] != self.FAILED:
            try:
                return json.loads(lines[-1])
            except ValueError:
                pass
        return {"error": "\n".join(visible(line) for line in lines if line != self.FAILED).strip()}


def check_dropped_data(settings: Settings, manage: str, steps: list[tuple[str, str]], target_id: str) -> None:
    """Before the lock (and in a --dry run): the tables and columns migrating back would drop with
    rows in them refuse the rollback, named with their rows, unless rollback_drop_data names the
    project; confirmed, the run says what goes."""
    found = host.get_fact(DroppedData, manage=manage, steps=steps)
    if "error" in found:
        raise DeployRefused(f"host {host.name}: cannot tell what migrating back to release {target_id} drops; "
                            f"the live release's Django said:\n{found['error']}\nnothing was changed")
    if found["irreversible"]:
        return  # no migrating back: the migration step refuses, or restores the snapshot
    lost = [visible(text) for text in found["holding_data"]]
    empty = [visible(name) for name in found["empty"]]
    if empty:
        logger.info(f"{host.print_prefix}migrating back to release {target_id} drops, empty: {', '.join(empty)}")
    if not lost:
        return
    if settings.rollback_drop_data != settings.websiteproject:
        raise DeployRefused(
            f"host {host.name}: migrating back to release {target_id} drops data: {'; '.join(lost)}; run with "
            f"--data rollback_drop_data={settings.websiteproject} to drop it; nothing was changed")
    logger.warning(f"{host.print_prefix}rollback_drop_data: migrating back to release {target_id} drops "
                   f"{'; '.join(lost)}")


@operation(is_idempotent=False)
def migrate_back(manage: str, steps: list[tuple[str, str]], restore_snapshot: str | None, snapshot: str | None,
                 lock: str, refuse_to_drop_data: str | None = None):
    """Migrate apps back (`steps`: app, target migration) with the newer release's migration files
    (migrate_back_command)."""
    if not steps:
        host.noop("no migrations to undo")
        return
    yield under_migration_lock(lock, migrate_back_command(manage, steps, restore_snapshot, snapshot,
                                                          refuse_to_drop_data))


def migrate_back_command(manage: str, steps: list[tuple[str, str]], restore_snapshot: str | None,
                         snapshot: str | None, refuse_to_drop_data: str | None = None) -> str:
    """Shell: plan the migrations back; if one cannot be undone, refuse, or, when `restore_snapshot`
    is given, restore the snapshot taken before the newer migrations ran (writes since then are
    lost); else, once `refuse_to_drop_data` (a command failing when migrating back would drop rows
    the run was not told it may drop) passes, migrate each app back."""
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
            f'if printf "%s" "$plan" | grep -q IRREVERSIBLE; then {irreversible}; '
            f'else {refuse_to_drop_data + " && " if refuse_to_drop_data else ""}{migrate}; fi')


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
