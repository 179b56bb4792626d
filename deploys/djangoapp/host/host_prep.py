"""Host preparation: the system packages each host needs for its roles (web: the webserver and
uWSGI; web and worker: Python for the releases; db: PostgreSQL, and Redis for Celery; lb:
HAProxy)."""

from dataclasses import dataclass

from pyinfra import host, state
from pyinfra.api import FactBase, deploy, operation
from pyinfra.operations import apt, files, systemd

from ..core.context import current_settings, write_files
from ..core.host_files import HostFile, absent
from ..core.lock import RUN_TOKEN
from ..core.shell import q, wait_until
from ..settings import Settings
from .deploy_user import deploy_users, refuse_locking_this_login_out
from .proxy import APT_PROXY_CONF, PROXY_ENV, apt_proxy_content, load_proxy_env, uv_files

# uv builds the release virtualenvs (much faster than pip, and it caches wheels on the host).
UV_VERSION = "0.13.8"
TOOLS_VENV = "/opt/django-deploy-tools"
UV_BINARY = f"{TOOLS_VENV}/bin/uv"
# What the deploys run as uv: uv through site_proxy (proxy.py).
UV = f"{TOOLS_VENV}/uv"

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
    packages += ["certbot"] if settings.uses_acme else []
    # ssh fetches the certificate from the host that gets it from the CA.
    packages += ["openssh-client"] if settings.fetches_certificate else []
    # socat speaks to HAProxy's runtime API (drain a web host, ready it, show the backends).
    packages += ["socat"] if settings.is_lb else []
    packages += ["restic"] if settings.backs_up else []
    # restic reaches an SFTP target with ssh.
    packages += ["openssh-client"] if settings.backs_up and settings.backup_repository.startswith("sftp:") else []
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
    if settings.is_lb:
        services["haproxy"] = ["haproxy"]
    return services


class UvVersion(FactBase):
    """The version of the uv at a path (e.g. "0.13.8"), or None when there is none."""

    def command(self, uv: str) -> str:
        return f"{q(uv)} --version 2>/dev/null || true"

    def process(self, output):
        words = " ".join(output).split()
        return words[1] if len(words) > 1 and words[0] == "uv" else None


def tools_install_command(venv: str, version: str, pip_wheels: str = DEBIAN_PIP_WHEELS,
                          proxy_env: str = PROXY_ENV) -> str:
    """Shell: a virtualenv at `venv` (kept if there is one) with uv `version` in it. The
    virtualenv gets no pip of its own (ensurepip takes seconds): Debian's pip wheel installs uv,
    run by the virtualenv's Python, so it installs there, through the proxy of `proxy_env`."""
    return (f"{load_proxy_env(proxy_env)} && "
            f"{{ [ -x {q(venv)}/bin/python ] || /usr/bin/python3 -m venv --without-pip {q(venv)}; }} && "
            f"wheel=$(ls -d {pip_wheels} | tail -n 1) && [ -n \"$wheel\" ] && "
            f"{q(venv)}/bin/python \"$wheel/pip\" install --quiet --disable-pip-version-check --no-input "
            f"{q('uv==' + version)}")


@dataclass(frozen=True)
class BackgroundJob:
    """An install all.py starts in the background on a host and a later step waits for; one such
    job of a kind at a time (its lock). Its output goes to `log`, its end ("<run token> <exit
    status>") to `status`."""

    kind: str
    what: str
    timeout: int
    folder: str = "/run"

    @property
    def log(self) -> str:
        return f"{self.folder}/django-deploy-{self.kind}.log"

    @property
    def status(self) -> str:
        return f"{self.folder}/django-deploy-{self.kind}.status"

    @property
    def lock(self) -> str:
        return f"{self.folder}/django-deploy-{self.kind}.lock"


PACKAGES_JOB = BackgroundJob("packages", "installing the system packages", 1800)
UV_JOB = BackgroundJob("uv", f"installing uv {UV_VERSION}", 900)
# (host, job kind) where this run started the job and no step has waited for it yet: known as
# the steps run (pyinfra runs an operation's code when its turn comes).
_started: set[tuple[str, str]] = set()
# Hosts whose host preparation has steps left for after the packages (finish_host_prep): known as
# the deploy code runs, before any step does.
_unfinished: set[str] = set()


def background_command(command: str, token: str, job: BackgroundJob) -> str:
    """Shell: `command` run in the background, detached from the SSH session, its output in the
    job's log and, at its end, "`token` <exit status>" in its status file."""
    job_shell = (f"({command}) > {q(job.log)} 2>&1; printf '%s %s\\n' {q(token)} $? > {q(job.status)}.new && "
                 f"mv -f {q(job.status)}.new {q(job.status)}")
    return f"nohup flock {q(job.lock)} sh -c {q(job_shell)} < /dev/null > /dev/null 2>&1 &"


def wait_command(token: str, job: BackgroundJob) -> str:
    """Shell: wait for the job of run `token` to end; when it failed (or did not end within its
    timeout), show its output and fail; else its files go."""
    ended = f"[ \"$(cut -d ' ' -f 1 {q(job.status)} 2>/dev/null)\" = {q(token)} ]"
    late = f"echo {q(f'{job.what} did not end within {job.timeout} s:')} >&2; cat {q(job.log)} >&2; exit 1"
    return (f"{wait_until(ended, job.timeout, late)}; "
            f"if [ \"$(cut -d ' ' -f 2 {q(job.status)})\" != 0 ]; then echo {q(f'{job.what} failed:')} >&2; "
            f"cat {q(job.log)} >&2; exit 1; fi; rm -f {q(job.status)} {q(job.log)}")


def _in_background(command: str, job: BackgroundJob):
    _started.add((host.name, job.kind))
    yield background_command(command, RUN_TOKEN, job)


@operation()
def packages_in_background(packages: list[str]):
    """apt.packages' install of those of `packages` missing, in the background (PACKAGES_JOB)."""
    commands = list(apt.packages._inner(packages=packages, no_recommends=True))
    if commands:
        yield from _in_background(" && ".join(commands), PACKAGES_JOB)


@operation()
def tools_with_uv(venv: str, version: str, background: bool = False):
    """The deploy tools virtualenv with uv `version` (tools_install_command), unless it has it;
    with `background`, installed in the background (UV_JOB)."""
    if host.get_fact(UvVersion, uv=UV_BINARY) == version:
        host.noop(f"uv {version} is in {venv}")
    elif background:
        yield from _in_background(tools_install_command(venv, version), UV_JOB)
    else:
        yield tools_install_command(venv, version)


@operation(is_idempotent=False)
def job_done(job: BackgroundJob):
    """Wait for the job this run started in the background on this host, if it did."""
    if (host.name, job.kind) not in _started:
        host.noop(f"this run did not start {job.what} in the background")
        return
    _started.discard((host.name, job.kind))
    yield wait_command(RUN_TOKEN, job)


# (run, host) whose uv program and proxy file a step of this run writes already.
_uv_written: set[tuple[int, str]] = set()


def uv_through_proxy(settings: Settings):
    """UV and the proxy file it reads, as site_proxy says now (once per run and host)."""
    key = (id(state), host.name)
    if settings.holds_releases and key not in _uv_written:
        _uv_written.add(key)
        write_files(f"{UV} and the proxy file it reads", uv_files(settings.site_proxy, UV, UV_BINARY))


def apt_through_proxy(settings: Settings):
    """apt's proxy configuration, as site_proxy says."""
    if settings.site_proxy:
        write_files("apt's proxy configuration", [
            HostFile(APT_PROXY_CONF, apt_proxy_content(settings.site_proxy).encode(), "600", secret=True)])
    else:
        absent(name="No proxy for apt (no site_proxy)", paths=[APT_PROXY_CONF])


def tools_ready():
    """Before uv is used: UV as site_proxy says (a release may change it), and uv's install
    waited for, if all.py started it in the background."""
    uv_through_proxy(current_settings())
    finish_host_prep()
    job_done(name=f"uv {UV_VERSION} installed", job=UV_JOB)


def _after_packages(settings: Settings, tools_in_background: bool):
    """Host preparation's steps that need the packages installed."""
    services = _services(settings)
    for service in services:
        systemd.service(name=f"{service} running and enabled", service=service, running=True, enabled=True)
    if "memcached" not in services and "memcached" not in settings.application_additional_packages:
        # memcached turned off (or never on): the kit installed it for the project alone.
        apt.packages(name="No memcached (memcached is off)", packages=["memcached"], present=False)
    if settings.holds_releases:
        tools_with_uv(name=f"uv {UV_VERSION} in the deploy tools virtualenv"
                      + (" (in the background)" if tools_in_background else ""),
                      venv=TOOLS_VENV, version=UV_VERSION, background=tools_in_background)
    deploy_users(settings)


@deploy("Prepare host")
def prepare_host(in_background: bool = False):
    """With `in_background` (all.py), the packages install in the background while the next deploy
    goes on: app_skeleton calls finish_host_prep before its first step that needs them, which
    waits for them and takes the steps left here; there uv installs in the background in turn,
    and the release waits for it (tools_ready) before it builds."""
    settings = current_settings()
    refuse_locking_this_login_out(settings)
    services = _services(settings)
    packages = _packages(settings) + [package for packages in services.values() for package in packages]

    apt_through_proxy(settings)
    uv_through_proxy(settings)
    apt.update(name="Refresh the package lists (at most hourly)", cache_time=3600)
    if in_background:
        packages_in_background(name="Install system packages (in the background)", packages=packages)
        _unfinished.add(host.name)
    else:
        apt.packages(name="Install system packages", packages=packages, no_recommends=True)
        _after_packages(settings, tools_in_background=False)
    files.directory(name="Create the deployment root", path=settings.django_deployment_root_folder,
                    user="root", group="root", mode="755")


def finish_host_prep():
    """After prepare_host(in_background=True): wait for the packages, then take host preparation's
    last steps. Nothing when they are taken (or were never left)."""
    if host.name in _unfinished:
        _unfinished.discard(host.name)
        job_done(name="Wait for the system packages (installing in the background)", job=PACKAGES_JOB)
        _after_packages(current_settings(), tools_in_background=True)
