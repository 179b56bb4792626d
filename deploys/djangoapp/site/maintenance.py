"""Maintenance mode: the site answers 503 with a maintenance page while a flag file exists on the
web host, everyone but the host itself (the deploy's health checks), `maintenance_allow` and the
health check path; static files stay served (the page may use them). The webservers look at the
flags on each request (templates/maintenance/), so turning maintenance on or off is one file, not
a reload.

Two flags, so that neither undoes the other: `on`, set and cleared by deploys/maintenance.py, and
`migrating`, set by a release with `maintenance=during_migrations` (or whose migrations the
migration gate found unsafe, with migration_safety = "maintenance") on every web host while the
migration host migrates (only when the release has migrations to apply) and cleared right after
(for unsafe migrations: once the new release serves), or by the release's failure cleanup.
"""

from __future__ import annotations


from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files, server

from ..core import audit
from ..core.context import current_settings, render_template, write_files
from ..core.host_files import HostFile
from ..core.shell import q, read_json
from ..settings import DeployRefused, Settings


def maintenance_page_content(settings: Settings) -> str:
    """The page served with the 503: the project's own (maintenance_page), or a plain one."""
    return settings.maintenance_page or render_template("maintenance/page.html.j2", s=settings)


def maintenance_page(settings: Settings):
    """Skeleton, web hosts: the page (in the folder of the flags, one of the skeleton's folders)."""
    write_files(f"the maintenance page {settings.maintenance_page_path}", [
        HostFile(settings.maintenance_page_path, maintenance_page_content(settings).encode(), "644")])


def migrating_commands(settings: Settings, release_dir: str) -> tuple[str, str]:
    """Shell: put the maintenance page up if the release has migrations to apply (the list its
    inspection wrote); take it down."""
    pending = read_json(f"{release_dir}/.django.json", "pending")
    put_up = (f'if [ "$({pending})" != "[]" ]; then mkdir -p {q(settings.maintenance_dir)} && '
              f"touch {q(settings.migrating_flag)} && echo 'maintenance page up while migrating'; "
              "else echo 'no migrations to apply: no maintenance page'; fi")
    return put_up, take_down_migrating(settings)


def take_down_migrating(settings: Settings) -> str:
    return f"rm -f {q(settings.migrating_flag)}"


# Releases (by id) whose migrations the migration gate found unsafe under migration_safety =
# "maintenance" (migration_gate.py, on the migration host, before the page would go up): the
# page is up on every web host while they run.
UNSAFE_MIGRATIONS: set[str] = set()


def maintenance_window(settings: Settings, release_id: str, release_dir: str, migrate, switch) -> None:
    """A release's migrations and switch: `migrate()`, then `switch()` (each adds its operations),
    with the maintenance page up on every web host when the release asks for it: from before the
    migrations until they are done
    (maintenance=during_migrations), or, when the migration gate found them unsafe under
    migration_safety = "maintenance", until the new release serves (the live one breaks on the
    new schema until then)."""
    if settings.maintenance != "during_migrations" and settings.migration_safety != "maintenance":
        migrate()
        switch()
        return
    put_up, take_down = migrating_commands(settings, release_dir)

    def unsafe() -> bool:  # asked when the steps run: after the gate
        return release_id in UNSAFE_MIGRATIONS

    server.shell(name="Maintenance page up while migrating", commands=[put_up],
                 _if=lambda: settings.is_web and (settings.maintenance == "during_migrations" or unsafe()))
    migrate()
    server.shell(name="Maintenance page down: migrations done", commands=[take_down],
                 _if=lambda: settings.is_web and settings.maintenance == "during_migrations" and not unsafe())
    switch()
    server.shell(name="Maintenance page down: the new release serves", commands=[take_down],
                 _if=lambda: settings.is_web and unsafe())


@deploy("Maintenance")
def maintenance_mode():
    settings = current_settings()
    if settings.maintenance not in ("on", "off"):
        raise DeployRefused("maintenance: give on or off, e.g. --data maintenance=on; nothing was changed")
    if not settings.is_web:
        host.noop("serves no site (not a web host)")
        return
    flag = files.file(name=f"Maintenance {settings.maintenance}", path=settings.maintenance_flag,
                      present=settings.maintenance == "on", user="root", group="root", mode="644")
    audit.record(settings, "maintenance", settings.maintenance, _if=flag.did_change)
