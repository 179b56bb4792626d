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
import shlex
from functools import cached_property
from typing import Any, Literal, Optional

from pydantic import (
    BaseModel,
    ConfigDict,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pyinfra.api.exceptions import PyinfraError

from .app_server_layout import AppServerPlace, option_problem
from .environment import split_environment
from .fleet import Fleet, FleetPlace, plan_fleet
from .layout import Layout

SAFE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
DOTTED_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
RELEASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
UNIX_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
URL_PATH = re.compile(r"^/[A-Za-z0-9._~/?=&%+,:@-]*$")
EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
JOURNAL_TIME = re.compile(r"^[A-Za-z0-9 :+.-]{1,40}$")
MANAGEMENT_COMMAND = re.compile(r"^[a-z][a-z0-9_]*$")
REDIS_PASSWORD = re.compile(r"^[A-Za-z0-9_.~-]{16,128}$")

# Data keys with these prefixes belong to us: one we do not know is most likely a typo.
OWN_PREFIXES = ("django_", "uwsgi_", "app_server", "manage_", "acme_", "nginx_", "apache2_", "site_", "celery_", "release_", "deploy_", "rollback_",
                "confirm_")


# Where a release comes from: exactly one of these (see source.py).
SOURCES = ("django_source_dir", "django_release_archive", "django_git_repo")

class DeploySettingsError(PyinfraError):
    """Raised before any operation is added: the message lists every bad variable of every host."""


class DeployRefused(PyinfraError):
    """Raised before any operation is added when the host's state does not allow the deploy
    (nothing to roll back to, removal not confirmed): nothing was changed."""


# Paths and commands reach shell commands, units and configs: letters, digits and . _ - / only.
PLAIN_PATH = re.compile(r"^[A-Za-z0-9._/-]+$")


def _absolute_clean_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"must be an absolute path (got {value!r})")
    if ".." in value.split("/"):
        raise ValueError(f"must not contain '..' (got {value!r})")
    if not PLAIN_PATH.match(value):
        raise ValueError(f"must be letters, digits, '.', '_', '-' and '/' only: no spaces or quotes (got {value!r})")
    return value.rstrip("/") or "/"


class Settings(FleetPlace, Layout, AppServerPlace, BaseModel):
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

    # --- App server (app_server.py) ---
    app_server: Literal["uwsgi", "gunicorn", "asgi"] = "uwsgi"
    app_server_workers: int = 2
    app_server_options: list[str] = []
    django_asgi_module: Optional[str] = None

    # --- Certificates from ACME (certificates.py) ---
    acme_email: Optional[str] = None
    acme_directory: str = "https://acme-v02.api.letsencrypt.org/directory"
    acme_ca_certificate: Optional[str] = None
    acme_extra_domains: list[str] = []

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
    lock_wait: int = 0
    rollback_to: Optional[str] = None
    rollback_restore_snapshot: bool = False
    confirm_remove: Optional[str] = None
    manage: Optional[str] = None
    manage_on: Literal["migration_host", "all"] = "migration_host"
    since: str = "1 hour ago"
    lines: int = 100
    grep: Optional[str] = None
    unit: Optional[Literal["app", "celery", "beat", "webserver"]] = None
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

    @field_validator("apache2_check_binary_name")
    @classmethod
    def _command_name(cls, value: str) -> str:
        if not PLAIN_PATH.match(value) or value.startswith("-"):
            raise ValueError(f"must be a command name or path: letters, digits, '.', '_', '-' and '/' (got {value!r})")
        return value

    @field_validator("app_server_options")
    @classmethod
    def _app_server_options(cls, value: list[str]) -> list[str]:
        found = [problem for problem in map(option_problem, value) if problem]
        if found:
            raise ValueError("; ".join(found))
        return value

    @field_validator("django_settings_folder", "django_settings_file", "celery_app", "django_asgi_module")
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

    @field_validator("uwsgi_number_workers", "app_server_workers", "keep_releases", "celery_concurrency",
                     "rolling_batch_size", "health_check_timeout", "lines", mode="before")
    @classmethod
    def _positive_int(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"must be a positive whole number (got {value!r})")
        return value

    @field_validator("lock_wait", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"must be a whole number of seconds, 0 or more (got {value!r})")
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

    @field_validator("manage")
    @classmethod
    def _management_command(cls, value: Optional[str]) -> Optional[str]:
        if value is None:
            return value
        try:
            words = shlex.split(value)
        except ValueError as error:
            raise ValueError(f"cannot be split into words ({error}): {value!r}")
        if not words or not MANAGEMENT_COMMAND.match(words[0]):
            raise ValueError(f"must start with the name of a management command, e.g. createsuperuser (got {value!r})")
        if any(ord(character) < 32 for character in value):
            raise ValueError("must be one line without control characters")
        return value

    @field_validator("since")
    @classmethod
    def _journal_time(cls, value: str) -> str:
        if not JOURNAL_TIME.match(value):
            raise ValueError(f'must be a time journalctl reads, e.g. "1 hour ago", "today" or "2026-11-25 14:00" '
                             f"(got {value!r})")
        return value

    @field_validator("grep")
    @classmethod
    def _one_line(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and (not value or any(ord(character) < 32 for character in value)):
            raise ValueError("must be some text on one line")
        return value

    @field_validator("django_source_dir")
    @classmethod
    def _source_dir_exists(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not os.path.isdir(value):
            raise ValueError(f"no such directory on this machine: {value!r}")
        return value

    @field_validator("acme_email")
    @classmethod
    def _email(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not EMAIL.match(value):
            raise ValueError(f"must be an email address (got {value!r})")
        return value

    @field_validator("acme_directory")
    @classmethod
    def _https_url(cls, value: str) -> str:
        if not re.match(r"^https://[A-Za-z0-9.-]+(:\d+)?(/[A-Za-z0-9._~/-]*)?$", value):
            raise ValueError(f"must be the https:// URL of an ACME directory (got {value!r})")
        return value

    @field_validator("acme_extra_domains")
    @classmethod
    def _host_names(cls, value: list[str]) -> list[str]:
        bad = [name for name in value if not HOSTNAME.match(name)]
        if bad:
            raise ValueError(f"must be host names (got {bad!r})")
        return value

    @field_validator("site_certificate", "site_key", "acme_ca_certificate")
    @classmethod
    def _pem_or_file(cls, value: Optional[str], info) -> Optional[str]:
        if value is None:
            return None
        kind = "PRIVATE KEY" if info.field_name == "site_key" else "CERTIFICATE"
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
        if self.acme_email and self.site_certificate:
            raise ValueError("acme_email: a certificate from ACME and site_certificate/site_key exclude each other; "
                             "give one or the other")
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

    # ------------------------------------------------------------------ the app's environment

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
