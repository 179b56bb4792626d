"""Rollback: back to the previous good release (or `rollback_to`), the database with it. Which
releases came before is read from the history, in the order they went live: a release whose run
was killed before its switch never did, and is no target.

    drops     before the lock (and in a --dry run): the tables and columns migrating back would drop
              with rows in them refuse the rollback, named with their rows, unless rollback_drop_data
              names the project (the run then says what goes)
    lock      take the project's deploy lock
    database  migrate each app back to the state recorded for the target release, with the live
              release's migration files (only it has them), once a last count under the lock finds
              no rows it was not told it may drop; an irreversible migration refuses,
              unless rollback_restore_snapshot: then the snapshot taken before the first newer
              release migrated is restored (writes since then are lost)
    switch    `current` -> the target atomically, graceful reload, health check
    back      if anything fails once the lock is held, on any host: the migration host migrates
              the database forward to the live release again (under the migration lock), then
              every host that switched goes back to the live release, as a failed release's do
    record    Celery restarts, the release rolled away from is marked (a later plain rollback
              skips it), the lock is released

Several hosts: every web and worker host goes back to the same release (they must agree on it),
the migration host alone migrates the database, and hosts switch in the batches of a release.
"""

from __future__ import annotations

import json

from pyinfra import host, logger
from pyinfra.api import deploy

from ..core import audit
from ..core.context import current_settings, only, require_whole_fleet
from ..core.lock import RUN_TOKEN, hold_lock, under_migration_lock
from ..core.shell import q
from ..host.app_user import refuse_until_moved
from ..host.database import snapshot_commands
from ..services.notifications import notify_when_done
from ..settings import DeployRefused, Settings
from .inspection import bridge_assets
from .rollback_steps import (RollbackFacts, check_dropped_data, finish_rollback, migrate_back,
                             refuse_to_drop_data_command)
from .switch import switch_in_batches, switch_plan, undo_command


def rollback_target(settings: Settings, releases: dict[str, str], live_id: str, host_name: str) -> str:
    """The release to go back to, or DeployRefused saying why there is none."""
    order = list(releases)
    earlier = order[:order.index(live_id)] if live_id in order else []
    if settings.rollback_to:
        if settings.rollback_to == live_id:
            raise DeployRefused(f"host {host_name}: rollback_to: {live_id} is already live; nothing was changed")
        if settings.rollback_to not in earlier:
            raise DeployRefused(
                f"host {host_name}: rollback_to: {settings.rollback_to} is not a release older than the live one "
                f"({', '.join(earlier) or 'there is none'}); to go forward, release it again; nothing was changed")
        if releases[settings.rollback_to] not in ("ok", "rolled-back"):
            raise DeployRefused(f"host {host_name}: rollback_to: {settings.rollback_to} is not a complete release "
                                f"that went live (it is {releases[settings.rollback_to]}); nothing was changed")
        return settings.rollback_to
    good = [release_id for release_id in earlier if releases[release_id] == "ok"]
    if not good:
        raise DeployRefused(f"host {host_name}: no earlier good release to roll back to; nothing was changed")
    return good[-1]


# host name -> the release it would go back to (the hosts must agree).
_targets: dict[str, str] = {}


def _agree_on_target(settings: Settings, target_id: str) -> None:
    _targets[host.name] = target_id
    app_hosts = settings.fleet.app_hosts
    if set(_targets) >= set(app_hosts) and len({_targets[name] for name in app_hosts}) > 1:
        raise DeployRefused("rollback_to: the hosts would go back to different releases ("
                            + ", ".join(f"{name}: {_targets[name]}" for name in app_hosts)
                            + "); name one with rollback_to; nothing was changed")


def _migration_steps(live_state: dict, target_state: dict) -> list[tuple[str, str]]:
    """(app, migration) to migrate back to, for each app whose state differs."""
    return [(app, target_state.get(app, "zero")) for app, name in sorted(live_state.items())
            if target_state.get(app, "zero") != name]


def back_on_failure_command(settings: Settings, live_manage: str, target_id: str, live_id: str,
                            steps: list[tuple[str, str]]) -> str:
    """Shell: what a host does when the rollback fails anywhere once the lock is held. The
    migration host (whose cleanup runs before the others') puts the database forward to the live
    release's migrations, under the migration lock, if there were any to undo; then each host that
    switched to the target goes back to the live release, and the failure goes to the audit log."""
    forward = (under_migration_lock(settings.migration_lock,
                                    f"echo {q(f'migrating the database forward to release {live_id} again')}"
                                    f" >&2; {live_manage} migrate --noinput")
               if settings.runs_migrations and steps else None)
    back = undo_command(switch_plan(settings, target_id, switch_back_at_once=False))
    return "; ".join(filter(None, [forward, back, audit.failure_command(settings, "rollback",
                                                                      f"to {target_id} from {live_id}")]))


@deploy("Rollback")
def rollback():
    settings = current_settings()
    require_whole_fleet("rollback")
    if not settings.holds_releases:
        host.noop(f"holds no release ({settings.role_names} host)")
        return
    refuse_until_moved(settings)
    # One round trip for everything decided below (the live release, the releases, their files).
    found = host.get_fact(RollbackFacts, link=settings.current_link, releases_dir=settings.releases_dir,
                          history=settings.history_file)
    live = found["live"]
    if not live:
        raise DeployRefused(f"host {host.name}: no live release to roll back from; nothing was changed")
    releases = found["releases"]
    live_id = live["id"]
    target_id = rollback_target(settings, releases, live_id, host.name)
    _agree_on_target(settings, target_id)
    live_dir = f"{settings.releases_dir}/{live_id}"
    target_dir = f"{settings.releases_dir}/{target_id}"
    live_manage = f"{settings.manage_command} --release {live_dir}"

    def release_file(release_id: str, name: str):
        return found["files"].get((release_id, name))

    target_migrations = release_file(target_id, ".migrations.json")
    if target_migrations is None:
        # Without its recorded state the database would be migrated back to nothing.
        raise DeployRefused(f"host {host.name}: rollback_to: release {target_id} has no recorded migration state "
                            "(it never passed its checks); nothing was changed")
    steps = _migration_steps(json.loads(release_file(live_id, ".migrations.json") or "{}"),
                             json.loads(target_migrations))
    # The snapshot taken before the first release after the target changed the database.
    newer = list(releases)[list(releases).index(target_id) + 1:list(releases).index(live_id) + 1]
    snapshot = next(filter(None, (release_file(release_id, ".snapshot") for release_id in newer)), None)
    # Tables and columns the newer releases added, with what the site wrote in them since, go when
    # their migrations are undone: named, and refused unless confirmed, before anything changes.
    if settings.runs_migrations and steps:
        check_dropped_data(settings, live_manage, steps, target_id)

    # Everything above was decided from the live release: it must still be live under the lock.
    # Then, in the same step, pages the live release served keep their stylesheets and scripts
    # after the switch back: its static files are copied into the target's (web hosts).
    bridge = bridge_assets(q(live_dir), q(target_dir)) if settings.is_web else None
    hold_lock(settings, f"rollback to {target_id}", check_live=True, expected_live=live_dir, then=bridge,
              on_failure=back_on_failure_command(settings, live_manage, target_id, live_id, steps),
              cleanup_first=settings.runs_migrations)

    restore = snapshot_commands(settings, snapshot)[1] if settings.rollback_restore_snapshot and snapshot else None
    if restore:
        logger.warning(f"{host.print_prefix}rollback_restore_snapshot: if a migration cannot be undone, the "
                       f"snapshot {snapshot} is restored: writes since it was taken are lost")
    # Counted again under the migration lock: what the site wrote meanwhile into a table found
    # empty is not dropped unasked either.
    refuse_to_drop = None if settings.rollback_drop_data == settings.websiteproject else \
        refuse_to_drop_data_command(live_manage, steps, settings.websiteproject)
    migrate_back(name=f"Migrate the database back to release {target_id}", manage=live_manage, steps=steps,
                 restore_snapshot=restore, snapshot=snapshot, lock=settings.migration_lock,
                 refuse_to_drop_data=refuse_to_drop, _if=only(settings.runs_migrations))
    switch_in_batches(settings, target_id, switch_back_at_once=False)
    # The release rolled away from is marked, the history and the audit log say so, and the lock
    # goes: one step, as nothing here waits for anything else.
    finish_rollback(name=f"Mark release {live_id} rolled back, record it, release the deploy lock",
                    release_dir=live_dir, history=f"{settings.project_root}/bin/release-history",
                    release_id=live_id, target_id=target_id,
                    audit=audit.audit_command(settings, "rollback", f"to {target_id} from {live_id}", "ok"),
                    lock_dir=settings.lock_dir, token=RUN_TOKEN)
    notify_when_done(settings, "rollback", "rolled back", target_id, live_id)
