"""Host preparation: the system packages each host needs for its roles (web: the webserver and
uWSGI; web and worker: Python for the releases; db: PostgreSQL, and Redis for Celery)."""

from io import StringIO

from pyinfra.api import deploy
from pyinfra.operations import apt, files, pip, server, systemd

from .backups import backs_up
from .context import current_settings, proxy_environment
from .settings import Settings

# uv builds the release virtualenvs (much faster than pip, and it caches wheels on the host).
UV_VERSION = "0.13.8"
TOOLS_VENV = "/opt/django-deploy-tools"
UV = f"{TOOLS_VENV}/bin/uv"

BASE_PACKAGES = ["acl", "ca-certificates", "sudo", "curl", "openssl", "python3"]
# Hosts that hold releases (web and worker): virtualenvs, sqlite, and pg_dump for snapshots.
RELEASE_PACKAGES = ["python3-venv", "sqlite3"]
# uWSGI comes from Debian (its plugin is built for the host's Python); gunicorn from the release's
# virtualenv (app_server.py).
UWSGI_PACKAGES = ["uwsgi-core", "uwsgi-plugin-python3"]


def _packages(settings: Settings) -> list[str]:
    packages = list(BASE_PACKAGES)
    if settings.holds_releases:
        packages += RELEASE_PACKAGES + (["postgresql-client"] if settings.database == "postgresql" else [])
        packages += settings.application_additional_packages
    if settings.is_web:
        packages += [settings.webserver] + (UWSGI_PACKAGES if settings.app_server == "uwsgi" else [])
        packages += ["certbot"] if settings.acme_email else []
        # ssh fetches the certificate from the web host that gets it from the CA.
        packages += ["openssh-client"] if settings.fetches_certificate else []
    packages += ["restic"] if backs_up(settings) else []
    # restic reaches an SFTP target with ssh.
    packages += ["openssh-client"] if backs_up(settings) and settings.backup_repository.startswith("sftp:") else []
    return packages


def _services(settings: Settings) -> dict[str, list[str]]:
    """System services this host runs for the project: service -> its packages."""
    services = {}
    if settings.is_db and settings.database == "postgresql":
        services["postgresql"] = ["postgresql", "postgresql-client"]
    if settings.is_db and settings.redis_on_db_host:
        services["redis-server"] = ["redis-server"]
    if settings.is_web and settings.memcached:
        services["memcached"] = ["memcached"]
    return services


def _deploy_user(settings: Settings):
    """A user to deploy as from now on (ssh_user + _sudo in the inventory), so root logins can go."""
    server.user(name=f"Deploy user {settings.deploy_user}", user=settings.deploy_user, shell="/bin/bash",
                create_home=True, public_keys=settings.deploy_user_ssh_keys)
    files.put(name=f"Passwordless sudo for {settings.deploy_user}",
              src=StringIO(f"{settings.deploy_user} ALL=(ALL:ALL) NOPASSWD: ALL\n"),
              dest=f"/etc/sudoers.d/django-deploy-{settings.deploy_user}", user="root", group="root", mode="440")


@deploy("Prepare host")
def prepare_host():
    settings = current_settings()
    proxy = proxy_environment(settings)
    services = _services(settings)

    apt.update(name="Refresh the package lists (at most hourly)", cache_time=3600, _env=proxy)
    apt.packages(
        name="Install system packages",
        packages=_packages(settings) + [package for packages in services.values() for package in packages],
        no_recommends=True,
        _env=proxy,
    )
    for service in services:
        systemd.service(name=f"{service} running and enabled", service=service, running=True, enabled=True)
    if "memcached" not in services and "memcached" not in settings.application_additional_packages:
        # memcached turned off (or never on): the kit installed it for the project alone.
        apt.packages(name="No memcached (memcached is off)", packages=["memcached"], present=False, _env=proxy)
    if settings.holds_releases:
        pip.venv(name="Create the deploy tools virtualenv", path=TOOLS_VENV, python="/usr/bin/python3")
        pip.packages(
            name=f"Install uv {UV_VERSION}",
            packages=[f"uv=={UV_VERSION}"],
            virtualenv=TOOLS_VENV,
            _env=proxy,
        )
    if settings.deploy_user:
        _deploy_user(settings)
    files.directory(name="Create the deployment root", path=settings.django_deployment_root_folder,
                    user="root", group="root", mode="755")
