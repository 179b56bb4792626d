"""Remove a project from its hosts: a final database backup first (on the db host), then
everything the deploys made for it. Other projects on the hosts, and the shared system packages,
stay, and so do PostgreSQL and Redis with what the other projects need of them."""

from __future__ import annotations

from datetime import datetime, timezone

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import Directory, File
from pyinfra.operations import files, server, systemd

from ..core.context import current_settings
from ..core.lock import hold_lock
from ..core.shell import q
from ..core.units import remove_units, stamp_path
from ..host.app_user import remove_app_user
from ..host.database import dump_suffix, snapshot_commands
from ..host.db_host import shared_services
from ..host.postgres import PostgresNames
from ..services.backups import remove_backups
from ..services.schedules import JobUnits, job_unit
from ..settings import DeployRefused, Settings
from ..site.certificates import no_acme_certificate
from ..site.skeleton import all_celery_services
from ..site.load_balancer import ConfigProject
from ..site.webserver import apache_enabled, staged_path

BACKUP_DIR = "/var/backups/django-deploy"

def _final_backup(settings: Settings) -> None:
    if settings.database == "sqlite":
        exists = host.get_fact(File, path=settings.sqlite_path)
    else:
        exists = settings.db_name in host.get_fact(PostgresNames, kind="databases")
    if not exists:
        return
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
    backup = f"{BACKUP_DIR}/{settings.websiteproject}-{stamp}.{dump_suffix(settings)}"
    files.directory(name="Backups folder (root only)", path=BACKUP_DIR, user="root", group="root", mode="700")
    take = snapshot_commands(settings, backup)[0]
    server.shell(name=f"Final backup of the database: {backup}", commands=[take])


def _services(settings: Settings) -> None:
    # Every unit the project may have here, whatever this host's roles are now.
    jobs = [job_unit(settings, name) for name in host.get_fact(JobUnits, prefix=settings.websiteproject)]
    remove_units([settings.uwsgi_service, settings.gunicorn_service, *all_celery_services(settings), *jobs])
    # The backup timer too (the repository off the host stays).
    remove_backups(settings)


def _webserver_site(settings: Settings) -> None:
    site = f"{settings.websiteproject}.conf"
    if settings.webserver == "nginx":
        enabled = files.link(name="Disable the nginx site", path=f"/etc/nginx/sites-enabled/{site}", present=False)
        available = f"/etc/nginx/sites-available/{site}"
    else:
        enabled = apache_enabled(name="Disable the Apache site", kind="site", names=[settings.websiteproject],
                                 enabled=False)
        available = f"/etc/apache2/sites-available/{site}"
    for path in (available, staged_path(available), settings.ssl_certificate_path,
                 settings.ssl_key_path, settings.uwsgi_ini, settings.uwsgi_handover_ini):
        files.file(name=f"Remove {path}", path=path, present=False)
    systemd.service(name=f"Reload {settings.webserver}", service=settings.webserver, reloaded=True,
                    _if=enabled.did_change)


def _load_balancer(settings: Settings) -> None:
    """HAProxy stopped and disabled, and the kit's config of this project and its certificate
    gone (HAProxy itself stays installed, as the webservers do)."""
    if host.get_fact(ConfigProject, path=settings.lb_config) != settings.websiteproject:
        return
    systemd.service(name="Stop and disable haproxy", service="haproxy", running=False, enabled=False)
    for path in (settings.lb_config, staged_path(settings.lb_config), settings.ssl_certificate_path,
                 settings.ssl_key_path, stamp_path("haproxy")):
        files.file(name=f"Remove {path}", path=path, present=False)


@deploy("Remove")
def remove():
    settings = current_settings()
    if settings.confirm_remove != settings.websiteproject:
        raise DeployRefused(
            f"host {host.name}: confirm_remove: removing {settings.websiteproject} deletes its releases, "
            f"database and configuration; run with --data confirm_remove={settings.websiteproject} to confirm; "
            "nothing was changed")
    if host.get_fact(Directory, path=settings.project_root):
        # Removed with the project folder at the end; released if anything fails before.
        hold_lock(settings, "remove")
    if settings.is_db:
        _final_backup(settings)
    _services(settings)
    if settings.is_web:
        _webserver_site(settings)
        no_acme_certificate(settings)
    if settings.is_lb:
        _load_balancer(settings)
        no_acme_certificate(settings)
    shared_services(settings, present=False)
    if (settings.is_db and settings.database == "postgresql"
            and settings.db_name in host.get_fact(PostgresNames, kind="roles")):
        server.shell(name=f"Drop the PostgreSQL database and role {settings.db_name}", commands=[
            f"runuser -u postgres -- dropdb --force --if-exists {q(settings.db_name)}",
            f"runuser -u postgres -- dropuser --if-exists {q(settings.db_name)}"])
    if host.get_fact(Directory, path=settings.project_root):
        files.directory(name=f"Remove {settings.project_root}", path=settings.project_root, present=False)
    remove_app_user(settings)
