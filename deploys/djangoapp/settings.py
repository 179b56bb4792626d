"""Every variable a deploy reads, with its default, checked before anything touches a host.

The names are those of the Ansible role this project grew from (websiteproject, url, webserver,
uwsgi_number_workers, ...), so its users can bring their variables over as they are. The defaults
here are the documented ones: group_data/all.py repeats them for reading, and a test keeps the
two (and the README's table) in step.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, Optional
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError, field_validator, model_validator
from pyinfra.api.exceptions import PyinfraError

from .environment import mask_credentials, split_environment

SAFE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
DOTTED_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
RELEASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
UNIX_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
URL_PATH = re.compile(r"^/[A-Za-z0-9._~/?=&%+,:@-]*$")
REDIS_PASSWORD = re.compile(r"^[A-Za-z0-9_.~-]{16,128}$")

# Data keys with these prefixes belong to us: one we do not know is most likely a typo.
OWN_PREFIXES = ("django_", "uwsgi_", "nginx_", "apache2_", "site_", "celery_", "release_", "deploy_", "rollback_",
                "confirm_")


# Where a release comes from: exactly one of these (see source.py).
SOURCES = ("django_source_dir", "django_release_archive", "django_git_repo")

# What a host does for the project: the inventory groups of these names say it. A host in none of
# them holds all three (the one-server case).
ROLES = ("web", "worker", "db")

# Variables about the project as a whole: every host of the fleet must have the same value.
FLEET_WIDE = ("websiteproject", "url", "database", "celery", "celery_beat", "redis_url",
              "django_deployment_root_folder", "release_id", "rollback_to", "rolling_batch_size", "migration_host")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class Fleet:
    """The project's hosts, in inventory order, with their roles and private addresses."""

    roles: dict[str, frozenset[str]]
    addresses: dict[str, Optional[str]]
    migration_host: Optional[str]

    @classmethod
    def single(cls, name: str) -> "Fleet":
        return cls({name: frozenset(ROLES)}, {name: None}, name)

    def hosts(self, role: str) -> list[str]:
        return [name for name, roles in self.roles.items() if role in roles]

    @property
    def app_hosts(self) -> list[str]:
        """The hosts that hold releases: web and worker hosts."""
        return [name for name, roles in self.roles.items() if roles & {"web", "worker"}]

    @property
    def db_host(self) -> Optional[str]:
        return next(iter(self.hosts("db")), None)

    def switch_batches(self, size: Optional[int]) -> list[list[str]]:
        """The order in which hosts switch to a release: web hosts `size` at a time (all at once
        when None), worker-only hosts with the first batch."""
        web = self.hosts("web")
        size = size or len(web) or 1
        batches = [web[start:start + size] for start in range(0, len(web), size)] or [[]]
        batches[0] += [name for name in self.hosts("worker") if name not in web]
        return batches


class DeploySettingsError(PyinfraError):
    """Raised before any operation is added: the message lists every bad variable of every host."""


class DeployRefused(PyinfraError):
    """Raised before any operation is added when the host's state does not allow the deploy
    (nothing to roll back to, removal not confirmed): nothing was changed."""


def _absolute_clean_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"must be an absolute path (got {value!r})")
    if ".." in value.split("/"):
        raise ValueError(f"must not contain '..' (got {value!r})")
    return value.rstrip("/") or "/"


class Settings(BaseModel):
    """One host's deploy settings. Field order follows the README's table."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    # --- Project (seed role) ---
    websiteproject: str
    url: str
    webserver: Literal["nginx", "apache2"]
    django_deployment_root_folder: str
    django_settings_folder: str
    django_settings_file: str
    django_source_folder: str = ""
    django_archives_to_deflate: list[str] = []
    django_dependencies: list[str] = []
    django_pip_install_requirements: bool = False
    django_dependency_file: str = "auto"
    django_linked_dirs: list[str] = []
    django_linked_files: list[str] = []
    django_environment_variables: dict[str, str] = {}
    django_webapplication_additional_environment_settings: dict[str, str] = {}
    django_revision_file_pattern: Optional[str] = None
    application_additional_packages: list[str] = []
    site_certificate: Optional[str] = None
    site_key: Optional[str] = None
    site_proxy: Optional[str] = None

    # --- uWSGI (seed role) ---
    uwsgi_number_workers: int = 2
    uwsgi_user: str = "www-data"
    uwsgi_group: str = "www-data"
    uwsgi_additional_options: list[str] = []

    # --- Webservers (seed role) ---
    nginx_binary_name: str = "/usr/sbin/nginx"
    nginx_user: str = "www-data"
    nginx_group: str = "www-data"
    apache2_check_binary_name: str = "a2ensite"
    apache2_user: str = "www-data"
    apache2_group: str = "www-data"

    # --- Added by this project ---
    database: Literal["sqlite", "postgresql"] = "sqlite"
    celery: bool = False
    celery_beat: bool = False
    celery_app: Optional[str] = None
    celery_concurrency: int = 2
    redis_url: str = "redis://127.0.0.1:6379/0"
    memcached: bool = False
    deploy_user: Optional[str] = None
    deploy_user_ssh_keys: list[str] = []
    keep_releases: int = 5
    health_check_path: Optional[str] = None
    health_check_timeout: int = 60
    django_source_dir: Optional[str] = None
    django_release_archive: Optional[str] = None
    django_git_repo: Optional[str] = None
    django_git_ref: str = "HEAD"
    release_id: Optional[str] = None
    release_break_lock: bool = False
    rollback_to: Optional[str] = None
    rollback_restore_snapshot: bool = False
    confirm_remove: Optional[str] = None
    python_interpreter: str = "/usr/bin/python3"

    # --- Several hosts ---
    private_address: Optional[str] = None
    migration_host: Optional[str] = None
    rolling_batch_size: Optional[int] = None

    # Set by validate_inventory: which host of which fleet these settings are for.
    _host: Optional[str] = PrivateAttr(default=None)
    _fleet: Optional[Fleet] = PrivateAttr(default=None)

    # ------------------------------------------------------------------ validation

    @field_validator("webserver", mode="before")
    @classmethod
    def _apache_alias(cls, value: Any) -> Any:
        return "apache2" if value == "apache" else value

    @field_validator("websiteproject")
    @classmethod
    def _safe_project_name(cls, value: str) -> str:
        if not SAFE_NAME.match(value):
            raise ValueError(
                "must be a short safe name: lowercase letters, digits, '_' or '-', starting with a "
                f"letter, at most 32 characters (got {value!r})"
            )
        return value

    @field_validator("url")
    @classmethod
    def _host_name(cls, value: str) -> str:
        if not HOSTNAME.match(value):
            raise ValueError(f"must be a host name such as app.example.com, no scheme or path (got {value!r})")
        return value

    @field_validator("django_deployment_root_folder", "python_interpreter", "nginx_binary_name")
    @classmethod
    def _absolute(cls, value: str) -> str:
        return _absolute_clean_path(value)

    @field_validator("django_settings_folder", "django_settings_file", "celery_app")
    @classmethod
    def _dotted(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not DOTTED_MODULE.match(value):
            raise ValueError(f"must be a dotted Python module path such as mysite.settings (got {value!r})")
        return value

    @field_validator("django_source_folder")
    @classmethod
    def _relative_inside(cls, value: str) -> str:
        value = value.strip("/") if value else ""
        if value.startswith("~") or ".." in value.split("/"):
            raise ValueError(f"must be a relative path inside the source tree, without '..' (got {value!r})")
        return value

    @field_validator("django_dependency_file")
    @classmethod
    def _dependency_file(cls, value: str) -> str:
        if value in ("auto", "none"):
            return value
        if not value or value.startswith("/") or ".." in value.split("/"):
            raise ValueError(f'must be "auto", "none" or a path inside the source tree (got {value!r})')
        return value

    @field_validator("django_archives_to_deflate", "django_linked_dirs", "django_linked_files")
    @classmethod
    def _paths_inside(cls, value: list[str]) -> list[str]:
        for path in value:
            if path.startswith("/") or ".." in path.split("/"):
                raise ValueError(f"entries must be paths inside the release, without '..' (got {path!r})")
        return value

    @field_validator("django_environment_variables", "django_webapplication_additional_environment_settings")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not ENV_NAME.match(name):
                raise ValueError(f"{name!r} is not a valid environment variable name")
        return value

    @field_validator("uwsgi_user", "uwsgi_group", "nginx_user", "nginx_group", "apache2_user", "apache2_group",
                     "deploy_user")
    @classmethod
    def _unix_name(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not UNIX_NAME.match(value):
            raise ValueError(f"must be a user or group name (got {value!r})")
        return value

    @field_validator("private_address")
    @classmethod
    def _ip_address(cls, value: Optional[str]) -> Optional[str]:
        if value is None:
            return None
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise ValueError(f"must be an IP address on the fleet's private network (got {value!r})") from None

    @field_validator("uwsgi_number_workers", "keep_releases", "celery_concurrency", "rolling_batch_size",
                     "health_check_timeout", mode="before")
    @classmethod
    def _positive_int(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"must be a positive whole number (got {value!r})")
        return value

    @field_validator("health_check_path")
    @classmethod
    def _url_path(cls, value: Optional[str]) -> Optional[str]:
        # It goes into a shell command and a URL: letters, digits and URL punctuation only.
        if value is not None and not URL_PATH.match(value):
            raise ValueError(f"must be a URL path starting with '/', without spaces or quotes (got {value!r})")
        return value

    @field_validator("release_id", "rollback_to", mode="before")
    @classmethod
    def _release_id_text(cls, value: Any) -> Any:
        # `--data release_id=20260101` arrives as an int: it is still a name.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("release_id", "rollback_to")
    @classmethod
    def _release_id(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not RELEASE_ID.match(value):
            raise ValueError(
                f"must be letters, digits, '.', '_' or '-' (no '/'), at most 64 characters (got {value!r})"
            )
        return value

    @field_validator("django_source_dir")
    @classmethod
    def _source_dir_exists(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not os.path.isdir(value):
            raise ValueError(f"no such directory on this machine: {value!r}")
        return value

    @field_validator("site_certificate", "site_key")
    @classmethod
    def _pem_or_file(cls, value: Optional[str], info) -> Optional[str]:
        if value is None:
            return None
        kind = "CERTIFICATE" if info.field_name == "site_certificate" else "PRIVATE KEY"
        text = value
        if "-----BEGIN" not in value:
            if not os.path.isfile(value):
                raise ValueError("must be PEM text or the path of a PEM file on this machine")
            with open(value, encoding="utf-8") as pem_file:
                text = pem_file.read()
        if not re.search(rf"-----BEGIN [A-Z ]*{kind}-----.+-----END [A-Z ]*{kind}-----", text, re.S):
            raise ValueError(f"is not a PEM {kind.lower()}")
        return text

    @field_validator("django_git_ref")
    @classmethod
    def _git_ref(cls, value: str) -> str:
        if not value or value.startswith("-") or any(c.isspace() or c in "~^:?*[\\" for c in value) or ".." in value:
            raise ValueError(f"is not a valid git ref (got {value!r})")
        return value

    @model_validator(mode="after")
    def _certificate_pair(self) -> "Settings":
        if (self.site_certificate is None) != (self.site_key is None):
            missing = "site_key" if self.site_key is None else "site_certificate"
            raise ValueError(f"{missing}: site_certificate and site_key go together; give both or neither")
        return self

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if not re.match(r"^rediss?://[^\s]+$", value):
            raise ValueError(f"must be a redis:// URL (got {value!r})")
        return value

    @model_validator(mode="after")
    def _database_password(self) -> "Settings":
        if self.database == "postgresql" and not self.django_environment_variables.get("DJANGO_DB_PASSWORD"):
            raise ValueError("django_environment_variables: needs DJANGO_DB_PASSWORD when database is postgresql")
        return self

    @model_validator(mode="after")
    def _redis_password(self) -> "Settings":
        password = self.django_environment_variables.get("REDIS_PASSWORD")
        if password is not None and not REDIS_PASSWORD.match(password):
            raise ValueError("django_environment_variables: REDIS_PASSWORD must be 16 to 128 letters, digits or "
                             "'_.~-' (it goes into a URL and Redis's configuration as it is)")
        return self

    @model_validator(mode="after")
    def _beat_needs_celery(self) -> "Settings":
        if self.celery_beat and not self.celery:
            raise ValueError("celery_beat: needs celery = True")
        return self

    @model_validator(mode="after")
    def _one_release_source(self) -> "Settings":
        given = [name for name in SOURCES if getattr(self, name)]
        if len(given) > 1:
            raise ValueError(f"{given[0]}: give one release source, not {' and '.join(given)}")
        return self

    # ------------------------------------------------------------------ the fleet

    @property
    def host_name(self) -> str:
        return self._host or "localhost"

    @property
    def fleet(self) -> Fleet:
        return self._fleet or Fleet.single(self.host_name)

    @property
    def roles(self) -> frozenset[str]:
        return self.fleet.roles[self.host_name]

    @property
    def is_web(self) -> bool:
        return "web" in self.roles

    @property
    def is_worker(self) -> bool:
        return "worker" in self.roles

    @property
    def is_db(self) -> bool:
        return "db" in self.roles

    @property
    def holds_releases(self) -> bool:
        return self.is_web or self.is_worker

    @property
    def runs_migrations(self) -> bool:
        """This host takes the snapshot and runs the migrations of a release (once per fleet)."""
        return self.fleet.migration_host == self.host_name

    @property
    def database_host(self) -> str:
        """Where this host reaches the db host's services (PostgreSQL, Redis)."""
        db_host = self.fleet.db_host
        return "127.0.0.1" if db_host in (None, self.host_name) else self.fleet.addresses[db_host]

    @property
    def redis_on_db_host(self) -> bool:
        """Redis is installed on the db host when redis_url names the loopback; any other address
        is a Redis run elsewhere, which the deploy leaves alone."""
        return self.celery and urlsplit(self.redis_url).hostname in LOOPBACK

    @property
    def redis_password(self) -> Optional[str]:
        """The password of the Redis installed on the db host (REDIS_PASSWORD of the secrets)."""
        return self.django_environment_variables.get("REDIS_PASSWORD") if self.redis_on_db_host else None

    @property
    def broker_url(self) -> str:
        """redis_url as this host reaches it: a loopback Redis is the db host's, with its password
        (so this URL is a secret when there is one)."""
        if not self.redis_on_db_host:
            return self.redis_url
        parts = urlsplit(self.redis_url)
        host = self.database_host
        netloc = parts.netloc.rsplit("@", 1)
        address = f"[{host}]" if ":" in host else host
        location = f"{address}:{parts.port}" if parts.port else address
        user = f":{self.redis_password}" if self.redis_password else netloc[0] if len(netloc) == 2 else ""
        return urlunsplit(parts._replace(netloc=f"{user}@{location}" if user else location))

    @property
    def fleet_addresses(self) -> list[str]:
        """Private addresses of the other hosts that use the database and Redis."""
        return [address for name, address in self.fleet.addresses.items()
                if name != self.host_name and address and name in self.fleet.app_hosts]

    # ------------------------------------------------------------------ derived values

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
        return f"/run/{self.uwsgi_service}/uwsgi.sock"

    @property
    def webserver_user(self) -> str:
        return self.nginx_user if self.webserver == "nginx" else self.apache2_user

    @property
    def webserver_group(self) -> str:
        return self.nginx_group if self.webserver == "nginx" else self.apache2_group

    @property
    def ssl_dir(self) -> str:
        return f"/etc/{self.webserver}/ssl"

    @property
    def ssl_certificate_path(self) -> str:
        return f"{self.ssl_dir}/{self.websiteproject}.crt"

    @property
    def ssl_key_path(self) -> str:
        return f"{self.ssl_dir}/{self.websiteproject}.key"

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
        return self.websiteproject.replace("-", "_")

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

    @cached_property
    def secrets(self) -> dict[str, str]:
        """What the secret file holds: django_environment_variables, and every value of the app's
        environment that carries a credential (environment.py)."""
        return split_environment(self)[1]

    @cached_property
    def app_environment(self) -> dict[str, str]:
        """The environment every process of the app gets (uWSGI, Celery, manage.py): no secrets here."""
        return split_environment(self)[0]


# Every variable, in the order of the model; group_data/all.py and the README follow it.
VARIABLES = tuple(Settings.model_fields)
REQUIRED = tuple(name for name, field in Settings.model_fields.items() if field.is_required())


def _describe(error: dict) -> str:
    variable = str(error["loc"][0]) if error["loc"] else ""
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "missing":
        message = "is required and not set"
    elif error["type"] == "literal_error":
        message = f"{message} (got {error['input']!r})"
    elif not variable and ":" in message:
        variable, message = (part.strip() for part in message.split(":", 1))
    return f"{variable}: {message}" if variable else message


def problems(data: dict[str, Any]) -> tuple[Optional[Settings], list[str]]:
    """Validate one host's data: the settings, or every problem found, each naming its variable."""
    unknown = sorted(
        key for key in data if key.startswith(OWN_PREFIXES) and key not in Settings.model_fields
    )
    found = [f"{key}: is not a variable of this project (a typo?)" for key in unknown]
    # pyinfra gives unset data as None: treat it as not given, so defaults and "required" apply.
    given = {key: value for key, value in data.items() if value is not None}
    try:
        settings = Settings(**given)
    except ValidationError as error:
        return None, found + [_describe(item) for item in error.errors()]
    return (None, found) if found else (settings, [])


def plan_fleet(hosts: dict[str, tuple[set[str], Settings]]) -> tuple[Optional[Fleet], list[str]]:
    """The fleet the inventory describes (hosts in order, each with its groups and valid settings),
    or every problem with it, each naming its variable or inventory group."""
    found = []
    for variable in FLEET_WIDE:
        values = {name: getattr(settings, variable) for name, (_, settings) in hosts.items()}
        if len({repr(value) for value in values.values()}) > 1:
            found.append(f"{variable}: must be the same on every host of the fleet ("
                         + ", ".join(f"{name}: {mask_credentials(repr(value))}" for name, value in values.items())
                         + ")")
    if found:
        return None, found
    project = next(iter(hosts.values()))[1]
    roles = {name: frozenset(groups & set(ROLES)) or frozenset(ROLES) for name, (groups, _) in hosts.items()}

    def holding(*wanted: str) -> list[str]:
        return [name for name, held in roles.items() if held & set(wanted)]

    app_hosts, db_hosts = holding("web", "worker"), holding("db")
    if not holding("web"):
        found.append("inventory group web: no host serves the site; put at least one host in it")
    if project.celery and not holding("worker"):
        found.append("inventory group worker: celery is on but no host runs it; put at least one host in it")
    if project.database == "sqlite":
        if len(app_hosts) > 1:
            found.append(f"database: sqlite keeps the database in a file on one host, but {', '.join(app_hosts)} "
                         'run the app; use database = "postgresql"')
        elif app_hosts and not db_hosts:
            # The sqlite file, and Redis, live with the app.
            roles[app_hosts[0]] |= {"db"}
    elif len(db_hosts) != 1:
        found.append(f"inventory group db: database postgresql needs exactly one host in it (found: "
                     f"{', '.join(db_hosts) or 'none'})")
    if len(hosts) > 1:
        found += [f"private_address: host {name} needs one: the project runs on several hosts, which reach each "
                  "other at these addresses" for name, (_, settings) in hosts.items() if not settings.private_address]
    if (project.redis_on_db_host and len(hosts) > 1
            and not project.django_environment_variables.get("REDIS_PASSWORD")):
        found.append("django_environment_variables: needs REDIS_PASSWORD: the Redis on the db host serves the "
                     "other hosts over the network")
    if project.migration_host and project.migration_host not in app_hosts:
        found.append(f"migration_host: {project.migration_host!r} is not a web or worker host of this inventory "
                     f"({', '.join(app_hosts) or 'there is none'})")
    if found:
        return None, found
    migration_host = project.migration_host or next(iter(holding("web") + app_hosts), None)
    addresses = {name: settings.private_address for name, (_, settings) in hosts.items()}
    return Fleet(roles, addresses, migration_host), []


def validate_inventory(hosts) -> dict[str, Settings]:
    """Validate every host, then the fleet they make, and raise one error listing all problems, or
    return each host's settings (which know the fleet)."""
    valid: dict[str, tuple[set[str], Settings]] = {}
    report: list[str] = []
    for host in hosts:
        host_settings, host_problems = problems(host.data.dict())
        if host_problems:
            report.append(f"host {host.name}:")
            report.extend(f"  - {line}" for line in host_problems)
        else:
            valid[host.name] = (set(host.groups), host_settings)
    if not report and valid:
        fleet, fleet_problems = plan_fleet(valid)
        if fleet_problems:
            report.append("the fleet:")
            report.extend(f"  - {line}" for line in fleet_problems)
    if report:
        raise DeploySettingsError("invalid deploy settings, nothing was changed:\n" + "\n".join(report))
    for name, (_, settings) in valid.items():
        settings._host, settings._fleet = name, fleet
    return {name: settings for name, (_, settings) in valid.items()}
