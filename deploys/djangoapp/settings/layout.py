"""Where a project's things are on a host, derived from its settings: folders, files, units and
sockets. Mixed into Settings, so a deploy reads them as `settings.project_root` and so on."""

from __future__ import annotations

import shlex
from hashlib import sha1

from .environment import host_in_url


# A folder no host has: where Django started as root is told the app's database and uploads are.
ROOT_HAS_NONE = "/nonexistent/django-deploy"


def unix_name(prefix: str, project: str) -> str:
    """`<prefix>-<project>` as a user or group name: at most 32 characters, shortened with a hash
    of the whole so that two long project names never meet."""
    name = f"{prefix}-{project}"
    if len(name) <= 32:
        return name
    return f"{prefix}-{project[:31 - len(prefix) - 9]}-{sha1(name.encode()).hexdigest()[:8]}"


def as_user(user: str, group: str, keep_environment: bool = False) -> str:
    """Shell prefix: the rest of the command runs as `user` and `group` (and the user's other
    groups), root's rights given up (setpriv, util-linux), and its environment too unless kept."""
    return (f"/usr/bin/setpriv --reuid={shlex.quote(user)} --regid={shlex.quote(group)} --init-groups "
            f"{'' if keep_environment else '--reset-env '}--")


def database_name(project: str) -> str:
    """A project's PostgreSQL database and role: its name, '-' made '_' (a plain SQL name)."""
    return project.replace("-", "_")


def kit_app_user(project: str) -> str:
    """The user (and group) a project's app runs as unless uwsgi_user names one (app_user.py)."""
    return unix_name("django", project)


class Layout:
    """Derived paths and names; the fields they come from are Settings'."""

    @property
    def app_user_is_the_kits(self) -> bool:
        """The app runs as the user the kit makes for the project (not one the team named)."""
        return self.uwsgi_user == kit_app_user(self.websiteproject)

    @property
    def app_home(self) -> str:
        """The home of the kit's app user (its ~/.ssh for an SFTP backup target, for one)."""
        return f"{self.project_root}/home"

    @property
    def project_root(self) -> str:
        return f"{self.django_deployment_root_folder}/{self.websiteproject}"

    @property
    def releases_dir(self) -> str:
        return f"{self.project_root}/releases"

    @property
    def current_link(self) -> str:
        return f"{self.project_root}/current"

    @property
    def versions_dir(self) -> str:
        """Uploaded source archives, kept beside the releases as the seed role keeps them."""
        return f"{self.project_root}/versions"

    @property
    def venvs_dir(self) -> str:
        """Virtualenvs, one per dependency set, shared by the releases that use the same set."""
        return f"{self.project_root}/venvs"

    @property
    def python_install_dir(self) -> str:
        """Interpreters uv installs when python_interpreter is a version the host lacks."""
        return f"{self.project_root}/python"

    @property
    def shared_dir(self) -> str:
        return f"{self.project_root}/shared"

    @property
    def media_dir(self) -> str:
        return f"{self.shared_dir}/media"

    @property
    def db_dir(self) -> str:
        return f"{self.shared_dir}/db"

    @property
    def log_dir(self) -> str:
        return f"{self.shared_dir}/log"

    @property
    def snapshots_dir(self) -> str:
        """Database snapshots taken before migrations, named after the release that migrated."""
        return f"{self.project_root}/snapshots"

    @property
    def history_file(self) -> str:
        """One JSON line per release event: built, live, failed, ..."""
        return f"{self.project_root}/history.jsonl"

    @property
    def maintenance_dir(self) -> str:
        """The maintenance page and the flags that put it up (maintenance.py)."""
        return f"{self.project_root}/maintenance"

    @property
    def maintenance_flag(self) -> str:
        """Present while deploys/maintenance.py has put the site in maintenance."""
        return f"{self.maintenance_dir}/on"

    @property
    def migrating_flag(self) -> str:
        """Present while a release with maintenance=during_migrations migrates."""
        return f"{self.maintenance_dir}/migrating"

    @property
    def maintenance_page_path(self) -> str:
        return f"{self.maintenance_dir}/page.html"

    @property
    def migration_lock(self) -> str:
        """flock(1)'s file: migrations hold it exclusively, scheduled jobs shared (schedules.py). In
        a folder root alone enters: the app cannot take it and hold up every migration."""
        return f"{self.project_root}/.locks/migration"

    @property
    def audit_file(self) -> str:
        """One JSON line per deploy run that changed the project here (audit.py)."""
        return f"{self.project_root}/audit.jsonl"

    @property
    def lock_dir(self) -> str:
        return f"{self.project_root}/.deploy-lock"

    @property
    def secret_file(self) -> str:
        return f"{self.project_root}/secrets.py"

    @property
    def manage_command(self) -> str:
        return f"{self.project_root}/bin/manage"

    @property
    def uwsgi_ini(self) -> str:
        return f"/etc/uwsgi/apps-available/{self.websiteproject}.ini"

    @property
    def uwsgi_service(self) -> str:
        return f"uwsgi-{self.websiteproject}"

    @property
    def uwsgi_socket(self) -> str:
        return f"/run/{self.uwsgi_service}.sock"

    @property
    def as_app_user(self) -> str:
        """Shell prefix: the rest of the command runs as the app's user and group, root's rights
        and environment given up (setpriv, util-linux). A root step's work inside a folder the app
        can write is done this way: a link, FIFO or file the app planted there then reaches only
        what the app could reach anyway."""
        return as_user(self.uwsgi_user, self.uwsgi_group)

    @property
    def backup_user(self) -> str:
        """The user the backups and restic run as: not the app's (whose code must not read the
        repository's credentials), but in its group, to read its database and uploads."""
        return unix_name("backup", self.websiteproject)

    @property
    def root_build_environment(self) -> dict[str, str]:
        """What Django started as root (a release's build commands, collectstatic) is told instead
        of the app's uploads folder and sqlite database: paths that do not exist, so a build
        command that opens them fails, where root would work in the app's folders."""
        environment = {"DJANGO_MEDIA_ROOT": f"{ROOT_HAS_NONE}/media"}
        if self.database == "sqlite":
            stand_in = f"{ROOT_HAS_NONE}/{self.websiteproject}.sqlite3"
            environment.update(DJANGO_DB_NAME=stand_in, DATABASE_URL=f"sqlite:///{stand_in}")
        return environment

    @property
    def root_build_stand_ins(self) -> dict[str, str]:
        """The stand-ins of root_build_environment -> the app's own paths, which the release's
        inspection reports and gives back to Django once it runs as the app user."""
        return {f"{ROOT_HAS_NONE}/media": self.media_dir, f"{ROOT_HAS_NONE}/{self.websiteproject}.sqlite3":
                self.sqlite_path}

    @property
    def uwsgi_control_dir(self) -> str:
        """The app user's folder of uWSGI's master FIFO (the master makes it after it dropped root)."""
        return f"{self.project_root}/uwsgi"

    @property
    def uwsgi_master_fifo(self) -> str:
        return f"{self.uwsgi_control_dir}/master.fifo"

    @property
    def uwsgi_handover_service(self) -> str:
        """The transient uWSGI that serves on uwsgi_socket while a host whose uWSGI bound its own
        socket moves to the one systemd holds (app_server.py)."""
        return f"{self.uwsgi_service}-handover"

    @property
    def uwsgi_handover_ini(self) -> str:
        return f"/etc/uwsgi/apps-available/{self.websiteproject}-handover.ini"

    @property
    def uwsgi_handover_fifo(self) -> str:
        return f"{self.uwsgi_control_dir}/handover.fifo"

    @property
    def webserver_user(self) -> str:
        return self.nginx_user if self.webserver == "nginx" else self.apache2_user

    @property
    def webserver_group(self) -> str:
        return self.nginx_group if self.webserver == "nginx" else self.apache2_group

    @property
    def site_error_log(self) -> str:
        """The site's own error log (the webserver's logrotate rotates it)."""
        return f"/var/log/{self.webserver}/{self.websiteproject}.error.log"

    @property
    def acme_webroot(self) -> str:
        """Where the webserver serves the ACME HTTP-01 challenges from (certificates.py)."""
        return f"/var/lib/django-deploy/acme/{self.websiteproject}"

    @property
    def acme_ca_file(self) -> str:
        return f"/etc/django-deploy/acme/{self.websiteproject}-ca.pem"

    @property
    def acme_deploy_hook(self) -> str:
        return f"/etc/django-deploy/acme/{self.websiteproject}-deploy-hook.sh"

    @property
    def certificate_sync_user(self) -> str:
        """The issuer's user that the other web hosts log in as to read the certificate and key,
        and nothing else (certificate_sync.py); a user name has at most 32 characters."""
        return unix_name("certsync", self.websiteproject)

    @property
    def certificate_sync_home(self) -> str:
        return f"/var/lib/django-deploy/certificate-sync/{self.websiteproject}"

    @property
    def certificate_sync_bundle(self) -> str:
        """On the issuer: the certificate chain and its key in one file, for the other web hosts."""
        return f"{self.certificate_sync_home}/certificate.pem"

    @property
    def certificate_sync_key(self) -> str:
        """On the other web hosts: the SSH key that logs in as certificate_sync_user on the issuer."""
        return f"/etc/django-deploy/acme/{self.websiteproject}-sync-key"

    @property
    def certificate_sync_known_hosts(self) -> str:
        return f"/etc/django-deploy/acme/{self.websiteproject}-sync-known-hosts"

    @property
    def certificate_fetch_script(self) -> str:
        return f"/etc/django-deploy/acme/{self.websiteproject}-fetch-certificate.sh"

    @property
    def certificate_sync_service(self) -> str:
        return f"{self.websiteproject}-certificate-sync"

    @property
    def certificate_renewal_recorder(self) -> str:
        """Run after each renewal (certbot's, or the fetch from the issuer): notes a failure for status.py."""
        return f"/etc/django-deploy/acme/{self.websiteproject}-record-renewal.sh"

    @property
    def certificate_renewal_failure(self) -> str:
        """Present while the certificate's renewal fails: since when, by which unit, and why."""
        return f"/var/lib/django-deploy/certificate-renewal/{self.websiteproject}.failing"

    @property
    def certbot_result_drop_in(self) -> str:
        return f"/etc/systemd/system/certbot.service.d/django-deploy-{self.websiteproject}-result.conf"

    @property
    def ssl_dir(self) -> str:
        return f"/etc/{'haproxy' if self.is_lb else self.webserver}/ssl"

    @property
    def ssl_certificate_path(self) -> str:
        # HAProxy reads the key from a file named as the certificate with .key added.
        return f"{self.ssl_dir}/{self.websiteproject}.{'pem' if self.is_lb else 'crt'}"

    @property
    def ssl_key_path(self) -> str:
        return f"{self.ssl_certificate_path}.key" if self.is_lb else f"{self.ssl_dir}/{self.websiteproject}.key"

    @property
    def lb_config(self) -> str:
        """HAProxy's config on a load balancer: the kit's whole (one project per load balancer)."""
        return "/etc/haproxy/haproxy.cfg"

    @property
    def lb_backend(self) -> str:
        """HAProxy's backend of the project's web hosts (each a server named as its host)."""
        return f"{self.websiteproject}-web"

    @property
    def lb_listener(self) -> str:
        """Where a web host takes the load balancers' requests: its private address, lb_backend_port."""
        return f"{host_in_url(self.private_address or '')}:{self.lb_backend_port}"

    @property
    def lb_admin_socket(self) -> str:
        """HAProxy's runtime API (root's alone): the deploy drains and readies web hosts there."""
        return "/run/haproxy/admin.sock"

    @property
    def app_subdir(self) -> str:
        """Where manage.py sits inside a release folder ("" when at its top)."""
        return f"/{self.django_source_folder}" if self.django_source_folder else ""

    @property
    def sqlite_path(self) -> str:
        return f"{self.db_dir}/{self.websiteproject}.sqlite3"

    @property
    def db_name(self) -> str:
        """PostgreSQL database and role of the project."""
        return database_name(self.websiteproject)

    @property
    def environment_file(self) -> str:
        """The app's environment without its secrets (JSON), read by bin/with-secrets."""
        return f"{self.project_root}/environment.json"

    @property
    def environment_loader(self) -> str:
        """Python that reads the environment file and the secret file into os.environ."""
        return f"{self.project_root}/bin/app_environment.py"

    @property
    def wsgi_entry(self) -> str:
        """uWSGI's WSGI file: the environment loaded anew (at each graceful reload too), then the
        project's own WSGI application."""
        return f"{self.project_root}/bin/wsgi.py"

    @property
    def secrets_loader(self) -> str:
        """Runs a command with the secrets in its environment (uWSGI, Celery, manage.py)."""
        return f"{self.project_root}/bin/with-secrets"

    @property
    def shared_addresses(self) -> list[str]:
        """Where the db host's services listen besides the loopback: its private address, when
        other hosts use them."""
        return [self.private_address] if self.fleet_addresses else []

    @property
    def runs_celery_beat(self) -> bool:
        """Beat runs on the first worker host only: two would send each periodic task twice."""
        return self.celery_beat and self.fleet.hosts("worker")[:1] == [self.host_name]

    @property
    def celery_services(self) -> list[str]:
        """The Celery units this host runs."""
        services = [f"celery-{self.websiteproject}"] if self.celery and self.is_worker else []
        return services + ([f"celery-beat-{self.websiteproject}"] if self.runs_celery_beat else [])
