"""The app skeleton: folders, secrets, TLS, the app server under systemd and the webserver site.

Everything here is configuration that outlives a release. uWSGI is only started by a release
(there is nothing to serve before one); a config change reloads it gracefully when it runs.

Each host gets what its roles need: every host the project folder, secrets and tools; the db
host the database (and Redis, reachable by the other hosts only); worker hosts the Celery units;
web hosts TLS, the app server (app_server.py) and the webserver site.
"""

import os

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.deb import DebPackages
from pyinfra.operations import files, server, systemd
from pyinfra.operations.util import any_changed

from ..core import audit
from ..core.context import current_settings, rendered, template, write_files
from ..core.host_files import HostFile, secret_file
from ..core.host_state import folders
from ..core.lock import hold_lock, let_go
from ..core.shell import q
from ..core.units import refresh_service, reload_units, remove_units, stamps_command, tested_reload
from ..host.app_user import let_app_in, make_app_user, move_app, moving_from
from ..host.db_host import shared_services
from ..host.host_prep import finish_host_prep
from ..host.postgres import postgres_role_and_database
from ..services.backups import backup_units
from ..services.notifications import host_webhooks, notifier_file
from ..services.schedules import scheduled_jobs
from ..settings import Settings
from ..settings.environment import environment_file_content, secret_file_content
from .app_server import (
    app_server,
    remove_other_app_server,
    uwsgi_handover_stop_command,
    uwsgi_socket_is_new,
    webserver_reload_command,
)
from .certificates import acme_certificate, no_acme_certificate, site_certificate
from .load_balancer import load_balancer
from .maintenance import maintenance_page
from .webserver import apache_enabled, tested_config


def _directories(settings: Settings, moving_from: tuple[str, str] | None):
    # While the app moves to another user, its folders stay the old user's until the move.
    app_user, app_group = moving_from or (settings.uwsgi_user, settings.uwsgi_group)
    layout = [
        # path, owner, group, mode
        (settings.project_root, "root", "root", "755"),
        (f"{settings.project_root}/bin", "root", "root", "755"),
    ]
    if settings.holds_releases:
        layout += [
            (settings.releases_dir, "root", "root", "755"),
            (settings.versions_dir, "root", "root", "750"),
            (settings.venvs_dir, "root", "root", "755"),
            (settings.shared_dir, "root", "root", "755"),
            (settings.snapshots_dir, "root", "root", "700"),
            (os.path.dirname(settings.migration_lock), "root", "root", "700"),
            # The only places the app may write: uploads, its sqlite database, its logs.
            (settings.media_dir, app_user, app_group, "755"),
            (settings.db_dir, app_user, app_group, "750"),
            (settings.log_dir, app_user, app_group, "750"),
        ]
    if settings.is_web:
        layout += [(settings.maintenance_dir, "root", "root", "755"), (settings.ssl_dir, "root", "root", "755")]
    if settings.runs_uwsgi:
        layout.append((settings.uwsgi_control_dir, app_user, app_group, "700"))
    if settings.app_user_is_the_kits:
        layout.append((settings.app_home, app_user, app_group, "700"))
    folders(name=f"Folders of {settings.project_root}", layout=layout)


def _secrets_and_tools(settings: Settings):
    """The app's environment (a JSON file anyone may read, and the secret file), the commands
    that run the app with it, and bin/notify with its webhooks (secret too). Returns the secret
    file's op."""
    bin_dir = f"{settings.project_root}/bin"
    write_files(f"the app's environment and its programs in {bin_dir}", [
        HostFile(settings.environment_file, environment_file_content(settings.app_environment).encode(), "644"),
        rendered("app/app_environment.py.j2", settings.environment_loader, settings, mode="644"),
        rendered("app/with-secrets.py.j2", settings.secrets_loader, settings, mode="755"),
        rendered("app/manage.sh.j2", settings.manage_command, settings, mode="755"),
        rendered("app/release-history.py.j2", f"{bin_dir}/release-history", settings, mode="755"),
        rendered("app/inspect-release.py.j2", f"{bin_dir}/inspect-release.py", settings, mode="644"),
        rendered("app/link-shared.py.j2", f"{bin_dir}/link-shared.py", settings, mode="755"),
        notifier_file(settings),
    ])
    host_webhooks(settings)
    return secret_file(
        name=f"Secrets in {settings.secret_file}",
        path=settings.secret_file,
        content=secret_file_content(settings.secrets),
        user="root",
        group=settings.uwsgi_group,
        mode="640",
    )


def environment_inputs(settings: Settings) -> list[str]:
    """The files whose change the app's processes must be restarted (or reloaded) for."""
    return [settings.environment_file, settings.secret_file, settings.environment_loader]


# Prints the SQL that sets a role's password from DJANGO_DB_PASSWORD in its environment, quoted
# as an SQL string literal (standard_conforming_strings: only ' is special).
PASSWORD_SQL = ("import os, sys; password = os.environ['DJANGO_DB_PASSWORD'].replace(chr(39), chr(39) * 2); "
                "print('ALTER ROLE \"%s\" WITH LOGIN PASSWORD ' % sys.argv[1] + chr(39) + password + chr(39) + ';')")


def set_password_command(settings: Settings) -> str:
    """Set the role's password to DJANGO_DB_PASSWORD of the secrets. It goes from the secrets into
    python3's environment and through a pipe into psql: never on a command line. (psql's
    \\getenv would do it in one step, but needs PostgreSQL 15; Ubuntu 22.04 has 14.)"""
    return (f"{settings.secrets_loader} python3 -c {q(PASSWORD_SQL)} {q(settings.db_name)} | "
            "runuser -u postgres -- psql -Xq -v ON_ERROR_STOP=1")


def _postgresql(settings: Settings, secrets):
    made = postgres_role_and_database(settings.db_name)
    server.shell(
        name="PostgreSQL password from the secrets",
        commands=[set_password_command(settings)],
        _if=any_changed(*made, secrets),
    )


def all_celery_services(settings: Settings) -> list[str]:
    return [f"celery-{settings.websiteproject}", f"celery-beat-{settings.websiteproject}"]


def restart_command(settings: Settings, services: list[str], new_uwsgi_socket: bool) -> str:
    """Shell: the app server and Celery restarted together. A uWSGI that bound its socket itself
    is stopped (gracefully) before systemd may hold the socket: systemd refuses to start a socket
    whose service runs. Meanwhile the stand-in serves on the socket's path (app_server.py), and
    goes once uWSGI is ready on the socket systemd holds."""
    if new_uwsgi_socket:
        others = [service for service in services if service != settings.uwsgi_service]
        return (f"systemctl daemon-reload && systemctl stop {settings.uwsgi_service} && "
                f"systemctl start {settings.uwsgi_service}.socket {settings.uwsgi_service} && "
                f"{{ {uwsgi_handover_stop_command(settings)}; }}"
                + (f" && systemctl try-restart {' '.join(others)}" if others else ""))
    return f"systemctl daemon-reload && systemctl try-restart {' '.join(services)}" if services else "true"


def _restart_app_processes(settings: Settings, moved_from: tuple[str, str] | None, new_uwsgi_socket: bool) -> None:
    """The app server and Celery restarted in one step, after the webserver points at the app
    server's socket: on the app's user, moved over in the same step (app_user.py), or on the
    socket systemd holds for uWSGI now."""
    services = ([settings.app_service] if settings.is_web else []) + settings.celery_services
    restart = restart_command(settings, services, new_uwsgi_socket)
    if moved_from:
        move_app(settings, moved_from, restart, services)
    elif new_uwsgi_socket:
        server.shell(name=f"Restart {settings.uwsgi_service} on the socket systemd holds",
                     commands=[f"{restart} && {stamps_command(services)}"])


def _celery(settings: Settings, restart_later: bool):
    kinds = [("worker", f"worker --loglevel INFO --concurrency {settings.celery_concurrency}")]
    if settings.runs_celery_beat:
        kinds.append(("beat", f"beat --loglevel INFO --schedule {settings.db_dir}/celerybeat-schedule"))
    for service, (kind, command) in zip(settings.celery_services, kinds):
        unit = template("systemd/celery.service.j2", f"/etc/systemd/system/{service}.service", settings,
                        mode="644", kind=kind, command=command)
        reload_units(unit)
        systemd.service(name=f"Enable {service}", service=service, running=None, enabled=True)
        if restart_later:
            continue
        refresh_service(name=f"Restart {service} if it runs", service=service,
                        inputs=[f"/etc/systemd/system/{service}.service", *environment_inputs(settings)],
                        command=f"systemctl daemon-reload && systemctl try-restart {service}")


def _stop_other_webserver(settings: Settings):
    """Switching webserver: the other one is stopped and disabled, and our site taken out of it."""
    other = "apache2" if settings.webserver == "nginx" else "nginx"
    if other not in host.get_fact(DebPackages):
        return
    site = f"{settings.websiteproject}.conf"
    if other == "nginx":
        files.link(name="Take the site out of nginx", path=f"/etc/nginx/sites-enabled/{site}", present=False)
    else:
        apache_enabled(name="Take the site out of Apache", kind="site", names=[settings.websiteproject], enabled=False)
    systemd.service(name=f"Stop and disable {other}", service=other, running=False, enabled=False)


def _nginx(settings: Settings, certificate_files: list[str]):
    test = config_test(settings)
    files.link(name="Disable the default nginx site", path="/etc/nginx/sites-enabled/default", present=False)
    site = f"/etc/nginx/sites-available/{settings.websiteproject}.conf"
    tested_config(settings, "nginx/site.conf.j2", site, test)
    files.link(name="Enable the site", path=f"/etc/nginx/sites-enabled/{settings.websiteproject}.conf", target=site)
    systemd.service(name="nginx running and enabled", service="nginx", running=True, enabled=True)
    refresh_service(name="Reload nginx", service="nginx",
                    inputs=[site, "/etc/nginx/sites-enabled", *certificate_files],
                    command=f"{test} && {webserver_reload_command(settings, 'systemctl reload nginx')}")


def config_test(settings: Settings) -> str:
    """Shell: the webserver's own test of its whole config."""
    return f"{q(settings.nginx_binary_name)} -t -q" if settings.webserver == "nginx" else "apache2ctl -t"


def webserver_reload(settings: Settings) -> str:
    """Shell: a graceful reload of the running webserver if its config test passes (tested_reload)."""
    return tested_reload(settings.webserver, config_test(settings))


def _apache(settings: Settings, certificate_files: list[str]):
    test = config_test(settings)
    apache_enabled(name="Enable Apache modules", kind="module",
                   names=["ssl", "proxy", "proxy_uwsgi" if settings.app_protocol == "uwsgi" else "proxy_http",
                          # A web host that passes the ACME challenges on to the issuer: over HTTP.
                          *(["proxy_http"] if settings.acme_challenge_proxy and settings.app_protocol == "uwsgi" else []),
                          "headers", "expires", "rewrite",
                          # Behind load balancers: the client's address from their X-Forwarded-For.
                          *(["remoteip"] if settings.lb_addresses else [])])
    # Named to load after Debian's security.conf, whose ServerTokens it overrides.
    hardening = "/etc/apache2/conf-available/zz-django-deploy-hardening.conf"
    template("apache2/hardening.conf.j2", hardening, settings, mode="644")
    apache_enabled(name="Enable the hardening conf", kind="conf", names=["zz-django-deploy-hardening"])
    apache_enabled(name="Disable the default Apache site", kind="site", names=["000-default"], enabled=False)
    site = f"/etc/apache2/sites-available/{settings.websiteproject}.conf"
    tested_config(settings, "apache2/site.conf.j2", site, test)
    apache_enabled(name="Enable the site", kind="site", names=[settings.websiteproject],
                   tool=settings.apache2_check_binary_name)
    systemd.service(name="apache2 running and enabled", service="apache2", running=True, enabled=True)
    # A module enabled or disabled (the proxy module follows the app server) takes effect with a
    # graceful reload too: Apache loads its modules again as it reads its config, while the old
    # workers finish their requests with the old ones.
    refresh_service(name="Reload apache2", service="apache2",
                    inputs=[site, hardening, "/etc/apache2/sites-enabled", "/etc/apache2/conf-enabled",
                            "/etc/apache2/mods-enabled", *certificate_files],
                    command=f"{test} && {webserver_reload_command(settings, 'systemctl reload apache2')}")


def _load_balancer_host(settings: Settings) -> None:
    """A load balancer holds nothing of the app (no user, secrets or release): its project folder
    for the deploy lock and the audit log, and HAProxy."""
    folders(name=f"Folders of {settings.project_root}", layout=[(settings.project_root, "root", "root", "755")])
    hold_lock(settings, "skeleton")
    finish_host_prep()
    load_balancer(settings)
    audit.record(settings, "skeleton", "configuration changed", _if=audit.changed_anything())
    let_go(settings)


@deploy("App skeleton")
def app_skeleton():
    settings = current_settings()
    if settings.is_lb:
        _load_balancer_host(settings)
        return
    make_app_user(settings)
    # A host whose app ran as another user (www-data, the default once) moves to the app's user,
    # or one whose uWSGI bound its socket itself moves to the socket systemd holds: the app's
    # processes restart once the webserver is set up, not one by one before.
    moved_from = moving_from(settings)
    new_uwsgi_socket = uwsgi_socket_is_new(settings)
    restart_later = bool(moved_from) or new_uwsgi_socket
    _directories(settings, moved_from)
    # Not while a release, rollback, restart or removal runs (waiting lock_wait for it to end),
    # and none of them while this runs: a config written and reloaded mid-switch would mix them.
    hold_lock(settings, "skeleton")
    if moved_from:
        let_app_in(settings, moved_from)
    secrets = _secrets_and_tools(settings)
    if settings.is_db and (settings.database == "postgresql" or settings.redis_on_db_host):
        # PostgreSQL and Redis, if all.py's host preparation is installing them in the background:
        # waited for here.
        finish_host_prep()
    if settings.is_db and settings.database == "postgresql":
        _postgresql(settings, secrets)
    if settings.is_db:
        shared_services(settings)
    if settings.is_worker and settings.celery:
        _celery(settings, restart_later)
    # Celery (or beat) turned off, or this host no longer a worker: nothing of it stays.
    remove_units([service for service in all_celery_services(settings) if service not in settings.celery_services])
    scheduled_jobs(settings)
    # The backup timer on the host that backs up; none anywhere when backups are off.
    backup_units(settings)
    if settings.is_web:
        app_server(settings, environment_inputs(settings), restart_later)
        maintenance_page(settings)
        # The steps from here on need the packages (openssl, the webserver).
        finish_host_prep()
        certificate_files = site_certificate(settings)
        _stop_other_webserver(settings)
        if settings.webserver == "nginx":
            _nginx(settings, certificate_files)
        else:
            _apache(settings, certificate_files)
        # Only now that the webserver talks to the chosen app server: the other one goes.
        remove_other_app_server(settings)
        # And now that it serves the ACME challenges: a certificate a browser trusts, if asked for.
        if settings.uses_acme:
            acme_certificate(settings, reload_command=webserver_reload(settings))
        else:
            no_acme_certificate(settings)
    if restart_later:
        _restart_app_processes(settings, moved_from, new_uwsgi_socket)
    finish_host_prep()
    audit.record(settings, "skeleton", "configuration changed", _if=audit.changed_anything())
    let_go(settings)
