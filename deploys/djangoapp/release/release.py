"""A release: build the new version beside the live one, switch to it only once it is ready, and
keep the old one serving when anything goes wrong.

    lock      take the project's deploy lock
    prepare   upload the source archive, unpack it into releases/<id>
    build     virtualenv (shared by releases with the same dependencies), archives
    check     the new release's Django (inspection.py): collectstatic and bytecode, then what
              lives across releases linked into it (media, sqlite files, django_linked_dirs/files
              in shared/), then check --deploy (errors stop the release) and pending migrations
    gate      the pending migrations judged against the live release, which serves on while they
              run (migration_gate.py): unsafe ones stop the release here (migration_safety)
    migrate   if anything is pending: snapshot the database, migrate; on failure restore it
    switch    `current` -> releases/<id> atomically, graceful uWSGI reload and Celery restart
              (warm shutdown: running tasks finish); the new release must answer through the
              webserver and its Celery worker come up, or the host switches back (switch.py)
    contract  migration_safety=switch-first: the drops the gate kept back, now that the old code
              no longer serves
    clean up  record the release, remove releases beyond keep_releases, release the lock

Several hosts: pyinfra runs each step on every host before the next one starts, so every web and
worker host has built the release before the one migration host migrates, and all have before
any switches. Web hosts switch all at once or `rolling_batch_size` at a time; worker hosts switch
with the first batch.

A failed step on any host stops the run on every host: the release is marked failed and the
locks released (failure.py); `current` still points at the release that was live.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.operations import python, server

from ..core import audit
from ..core.context import current_settings, dry_run, fact_before_run, only, require_whole_fleet
from ..core.host_state import ReleaseInfo
from ..core.lock import OPERATOR, RUN_TOKEN, hold_lock
from ..core.shell import q
from ..host.app_user import refuse_until_moved
from ..host.database import snapshot_commands, snapshot_path
from ..host.host_prep import UV, tools_ready
from ..services.notifications import notify_when_done
from ..settings import DeployRefused, DeploySettingsError, Settings
from ..site.app_server import UWSGI_PYTHON, app_server_install, uwsgi_python_problem
from ..site.maintenance import maintenance_window, take_down_migrating
from .build import build_virtualenv, upload_and_unpack
from .dependencies import (
    DependencyPlan,
    PythonVersion,
    UvPythonVersion,
    dependency_hash,
    install_commands,
    plan_dependencies,
    python_mismatch,
)
from .finish import finish_release
from .inspection import inspect_release
from .migrate import migrate_with_snapshot
from .migration_gate import (
    check_migrations,
    contract_after_switch,
    dry_run_gate,
    fail_if_contract_failed,
    time_limits,
)
from .source import PackedSource, RUN_RELEASE_ID, release_source
from .switch import switch_in_batches, switch_plan, undo_command


@deploy("Release")
def release():
    settings = current_settings()
    require_whole_fleet("release")
    if not settings.holds_releases:
        host.noop(f"holds no release ({settings.role_names} host)")
        return
    refuse_until_moved(settings)
    source, plan, dependencies = _what_to_build(settings)
    live = host.get_fact(ReleaseInfo, link=settings.current_link)
    if live and (live.get("source_digest"), live.get("dependency_hash"), live.get("build_commands", [])) == (
            source.digest, dependencies, settings.django_build_commands):
        # Nothing to build; an install of uv all.py started is still seen through.
        tools_ready()
        host.noop(f"release {live['id']} is live and built from this same source")
        return

    release_id = settings.release_id or RUN_RELEASE_ID
    release_dir = f"{settings.releases_dir}/{release_id}"
    manage = f"{settings.manage_command} --release {release_dir}"
    existing = host.get_fact(ReleaseInfo, link=release_dir)
    if existing and existing.get("source_digest") != source.digest:
        raise DeployRefused(f"host {host.name}: release_id: release {release_id} exists already with another "
                            "source; choose another release_id; nothing was changed")
    logger.info(f"{host.print_prefix}release {release_id} ({source.revision}) is to replace "
                f"{live['id'] if live else 'nothing: it is the first release'}")
    if dry_run() and live and settings.runs_migrations:
        dry_run_gate(settings, source.archive, live.get("dependency_hash") == dependencies)

    _lock(settings, release_id, release_dir)
    _prepare(settings, source, release_id, release_dir, dependencies)
    # uv, if all.py's host preparation is still installing it in the background.
    tools_ready()
    _build(settings, plan, release_dir, dependencies)
    _inspect(settings, release_dir, manage)
    _migrate_and_switch(settings, release_id, release_dir, manage, live["id"] if live else None)
    _clean_up(settings, release_id)
    # An override of the migration gate is the operator's call: the audit log keeps it.
    overrides = (f"; allow_unsafe_migrations={','.join(settings.allow_unsafe_migrations)}"
                 if settings.allow_unsafe_migrations else "")
    audit.record(settings, "release", f"{release_id} live (was {live['id'] if live else 'nothing'}){overrides}")
    notify_when_done(settings, "release", "released", release_id, live["id"] if live else None, source.revision)
    python.call(name="Migrations after the switch done", function=fail_if_contract_failed, settings=settings,
                release_id=release_id, _if=only(settings.runs_migrations and settings.migration_safety == "switch-first"))


def _what_to_build(settings: Settings) -> tuple[PackedSource, DependencyPlan, str]:
    """The source packed, its dependencies planned and keyed, and the Python they need checked
    against the host's, before anything changes."""
    try:
        source = release_source(settings)
        plan = plan_dependencies(settings, source)
        host_python = _release_python(settings)
        mismatch = python_mismatch(settings, plan, host_python) or uwsgi_python_problem(
            settings, host_python, fact_before_run(PythonVersion, interpreter=UWSGI_PYTHON) if settings.is_web else None)
        if mismatch:
            raise DeploySettingsError(mismatch)
    except DeploySettingsError as error:
        raise DeploySettingsError(f"invalid deploy settings, nothing was changed:\nhost {host.name}:\n  - {error}")
    return source, plan, dependency_hash(settings, plan)


def _inspect(settings: Settings, release_dir: str, manage: str):
    built = "Build commands, collectstatic" if settings.django_build_commands else "Collectstatic"
    inspect_release(name=f"{built}, bytecode, shared paths linked, deploy checks",
                    release_dir=release_dir, manage=manage, script=f"{settings.project_root}/bin/inspect-release.py",
                    link_shared=f"{settings.project_root}/bin/link-shared.py", python=f"{release_dir}/.venv/bin/python",
                    link=settings.current_link, app_user=settings.uwsgi_user,
                    build_commands=settings.django_build_commands, stand_ins=settings.root_build_stand_ins,
                    judge_migrations=settings.runs_migrations)


def _migrate_and_switch(settings: Settings, release_id: str, release_dir: str, manage: str, live_id: str | None):
    """The gate, the migrations and the switch (behind the maintenance page when the release asks
    for it), then what switch-first kept until the new release serves."""
    python.call(name="Migration gate: may the pending migrations run while the live release serves",
                function=check_migrations, settings=settings, release_id=release_id,
                django_json=f"{release_dir}/.django.json", live_release=live_id, _if=only(settings.runs_migrations))
    maintenance_window(settings, release_id, release_dir,
                       migrate=lambda: _migrate(settings, release_id, release_dir, manage),
                       switch=lambda: switch_in_batches(settings, release_id))
    python.call(name="Migrations kept until the new release serves (migration_safety=switch-first)",
                function=contract_after_switch, settings=settings, release_id=release_id, manage=manage,
                _if=only(settings.runs_migrations and settings.migration_safety == "switch-first"))


def _lock(settings: Settings, release_id: str, release_dir: str):
    # From here on, a failed operation on any host brings this host back to the release it served
    # (if it switched), marks the new release failed and releases the lock.
    undo = undo_command(switch_plan(settings, release_id))
    hold_lock(settings, release_id, on_failure=(
        f"{undo}; {take_down_migrating(settings)}; {audit.failure_command(settings, 'release', release_id)}; "
        f'if [ "$(readlink {q(settings.current_link)})" != {q(release_dir)} ] && [ -d {q(release_dir)} ]; then '
        f"touch {q(release_dir)}/.failed && {q(settings.project_root)}/bin/release-history record "
        f"{q(release_id)} failed; fi"))


def _prepare(settings: Settings, source: PackedSource, release_id: str, release_dir: str, dependencies: str):
    upload_and_unpack(
        name=f"Upload and unpack release {release_id}",
        src=source.archive,
        archive=f"{settings.versions_dir}/{release_id}.tar.gz",
        release_dir=release_dir,
        venv=f"{settings.venvs_dir}/{dependencies}",
        group=settings.uwsgi_group,
        # A webserver of another group reads the static files in the release.
        readers=[settings.webserver_group] if settings.is_web and settings.webserver_group != settings.uwsgi_group
        else [],
        metadata={
            "id": release_id,
            "revision": source.revision,
            "source_digest": source.digest,
            "dependency_hash": dependencies,
            "build_commands": settings.django_build_commands,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "operator": OPERATOR,
        },
    )


def _release_python(settings: Settings) -> str | None:
    """The version of the Python the release's virtualenv is to run on (None: unknown). A version
    for uv to provide stands for itself until uv has found or installed it."""
    if settings.python_from_uv:
        return host.get_fact(UvPythonVersion, uv=UV, version=settings.python_interpreter,
                             install_dir=settings.python_install_dir) or settings.python_interpreter
    return fact_before_run(PythonVersion, interpreter=settings.python_interpreter)


def _build(settings: Settings, plan: DependencyPlan, release_dir: str, dependencies: str):
    venv = f"{settings.venvs_dir}/{dependencies}"
    build_virtualenv(
        name=f"Virtualenv {dependencies} ({plan.file or 'django_dependencies'})",
        path=venv,
        python=settings.python_interpreter,
        uv=UV,
        install=install_commands(plan, release_dir, venv, UV, settings.django_dependencies)
        + app_server_install(settings, plan.key_material, venv, UV),
        python_install_dir=settings.python_install_dir if settings.python_from_uv else None,
    )
    for archive in settings.django_archives_to_deflate:
        path = f"{release_dir}/{archive}"
        server.shell(name=f"Deflate {archive}", commands=[
            f"cd {q(os.path.dirname(path))} && if python3 -m zipfile -l {q(path)} >/dev/null 2>&1; "
            f"then python3 -m zipfile -e {q(path)} .; else tar -xf {q(path)} --no-same-owner; fi"])


def _migrate(settings: Settings, release_id: str, release_dir: str, manage: str):
    snapshot = snapshot_path(settings, release_id)
    take, restore = snapshot_commands(settings, snapshot)
    migrate_with_snapshot(name="Migrate the database (snapshot first)", release_dir=release_dir,
                          manage=manage, snapshot=snapshot, take_snapshot=take, restore_snapshot=restore,
                          lock=settings.migration_lock, live_migrations=f"{settings.current_link}/.migrations.json",
                          lock_timeout=time_limits(settings)[0], statement_timeout=time_limits(settings)[1],
                          _if=only(settings.runs_migrations))


def _clean_up(settings: Settings, release_id: str):
    finish_release(
        name=f"Record the release, keep the newest {settings.keep_releases}, release the deploy lock",
        history=f"{settings.project_root}/bin/release-history",
        history_file=settings.history_file,
        release_id=release_id,
        releases_dir=settings.releases_dir,
        versions_dir=settings.versions_dir,
        venvs_dir=settings.venvs_dir,
        snapshots_dir=settings.snapshots_dir,
        link=settings.current_link,
        keep=settings.keep_releases,
        lock_dir=settings.lock_dir,
        token=RUN_TOKEN,
        python_dir=settings.python_install_dir,
    )
