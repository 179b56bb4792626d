"""Host preparation: the system packages each host needs for its roles (web: the webserver and
uWSGI; web and worker: Python for the releases; db: PostgreSQL, and Redis for Celery)."""

import shlex
from io import StringIO

from pyinfra import host
from pyinfra.api import FactBase, deploy, operation
from pyinfra.operations import apt, files, server, systemd

from .backups import backs_up
from .context import current_settings, proxy_environment
from .lock import RUN_TOKEN
from .settings import Settings

# uv builds the release virtualenvs (much faster than pip, and it caches wheels on the host).
UV_VERSION = "0.13.8"
TOOLS_VENV = "/opt/django-deploy-tools"
UV = f"{TOOLS_VENV}/bin/uv"

# Debian's own copy of pip (python3-pip-whl, which python3-venv brings), run from its wheel.
DEBIAN_PIP_WHEELS = "/usr/share/python-wheels/pip-*.whl"

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


class UvVersion(FactBase):
    """The version of the uv at a path (e.g. "0.13.8"), or None when there is none."""

    def command(self, uv: str) -> str:
        return f"{shlex.quote(uv)} --version 2>/dev/null || true"

    def process(self, output):
        words = " ".join(output).split()
        return words[1] if len(words) > 1 and words[0] == "uv" else None


def tools_install_command(venv: str, version: str, pip_wheels: str = DEBIAN_PIP_WHEELS) -> str:
    """Shell: a virtualenv at `venv` (kept if there is one) with uv `version` in it. The
    virtualenv gets no pip of its own (ensurepip takes seconds): Debian's pip wheel installs uv,
    run by the virtualenv's Python, so it installs there."""
    q = shlex.quote
    return (f"{{ [ -x {q(venv)}/bin/python ] || /usr/bin/python3 -m venv --without-pip {q(venv)}; }} && "
            f"wheel=$(ls -d {pip_wheels} | tail -n 1) && [ -n \"$wheel\" ] && "
            f"{q(venv)}/bin/python \"$wheel/pip\" install --quiet --disable-pip-version-check --no-input "
            f"{q('uv==' + version)}")


# The install of uv in the background: its output and its end ("<run token> <exit status>").
TOOLS_JOB_LOG = f"{TOOLS_VENV}.install.log"
TOOLS_JOB_STATUS = f"{TOOLS_VENV}.install.status"
TOOLS_JOB_LOCK = "/run/lock/django-deploy-tools.install.lock"
TOOLS_JOB_TIMEOUT = 900
# Hosts where this run started it: only there does a release wait for it.
_tools_started: set[str] = set()


def background_command(command: str, token: str, log: str = TOOLS_JOB_LOG, status: str = TOOLS_JOB_STATUS,
                       lock: str = TOOLS_JOB_LOCK) -> str:
    """Shell: `command` run in the background, detached from the SSH session, its output in `log`
    and, at its end, "`token` <exit status>" in `status`; one such job at a time (flock)."""
    q = shlex.quote
    job = (f"({command}) > {q(log)} 2>&1; printf '%s %s\\n' {q(token)} $? > {q(status)}.new && "
           f"mv -f {q(status)}.new {q(status)}")
    return f"nohup flock {q(lock)} sh -c {q(job)} < /dev/null > /dev/null 2>&1 &"


def wait_command(token: str, what: str, timeout: int = TOOLS_JOB_TIMEOUT, log: str = TOOLS_JOB_LOG,
                 status: str = TOOLS_JOB_STATUS) -> str:
    """Shell: wait for the background job of run `token` to end; when it failed (or did not end
    within `timeout` seconds), show its output and fail; else its files go."""
    q = shlex.quote
    return (f"deadline=$(($(date +%s) + {int(timeout)})); "
            f"until [ \"$(cut -d ' ' -f 1 {q(status)} 2>/dev/null)\" = {q(token)} ]; do "
            f"if [ \"$(date +%s)\" -ge $deadline ]; then echo {q(f'{what} did not end within {timeout} s:')} >&2; "
            f"cat {q(log)} >&2; exit 1; fi; sleep 0.2; done; "
            f"if [ \"$(cut -d ' ' -f 2 {q(status)})\" != 0 ]; then echo {q(f'{what} failed:')} >&2; "
            f"cat {q(log)} >&2; exit 1; fi; rm -f {q(status)} {q(log)}")


@operation()
def tools_with_uv(venv: str, version: str, background: bool = False):
    """The deploy tools virtualenv with uv `version` (tools_install_command), unless it has it.
    With `background`, the install is started in the background (work that does not need uv goes
    on meanwhile) and tools_ready waits for it."""
    if host.get_fact(UvVersion, uv=f"{venv}/bin/uv") == version:
        host.noop(f"uv {version} is in {venv}")
        return
    if background:
        _tools_started.add(host.name)
        yield background_command(tools_install_command(venv, version), RUN_TOKEN)
    else:
        yield tools_install_command(venv, version)


@operation(is_idempotent=False)
def tools_ready(version: str):
    """Wait for the install of uv this run started in the background on this host, if it did."""
    if host.name not in _tools_started:
        host.noop(f"uv {version} was not being installed")
        return
    yield wait_command(RUN_TOKEN, f"installing uv {version}")


def _deploy_user(settings: Settings):
    """A user to deploy as from now on (ssh_user + _sudo in the inventory), so root logins can go."""
    server.user(name=f"Deploy user {settings.deploy_user}", user=settings.deploy_user, shell="/bin/bash",
                create_home=True, public_keys=settings.deploy_user_ssh_keys)
    files.put(name=f"Passwordless sudo for {settings.deploy_user}",
              src=StringIO(f"{settings.deploy_user} ALL=(ALL:ALL) NOPASSWD: ALL\n"),
              dest=f"/etc/sudoers.d/django-deploy-{settings.deploy_user}", user="root", group="root", mode="440")


@deploy("Prepare host")
def prepare_host(tools_in_background: bool = False):
    """With `tools_in_background`, uv installs while the next deploy works (app_skeleton: it does
    not use uv); a release waits for it (tools_ready) before it builds."""
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
        tools_with_uv(name=f"uv {UV_VERSION} in the deploy tools virtualenv"
                      + (" (in the background)" if tools_in_background else ""),
                      venv=TOOLS_VENV, version=UV_VERSION, background=tools_in_background, _env=proxy)
    if settings.deploy_user:
        _deploy_user(settings)
    files.directory(name="Create the deployment root", path=settings.django_deployment_root_folder,
                    user="root", group="root", mode="755")
