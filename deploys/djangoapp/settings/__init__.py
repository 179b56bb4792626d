"""Every variable a deploy reads, with its default, checked before anything touches a host.

The names are those of the Ansible role this project grew from (websiteproject, url, webserver,
uwsgi_number_workers, ...), so its users can bring their variables over as they are. The defaults
here are the documented ones: group_data/all.py repeats them for reading, and a test keeps the
two (and the README's table) in step.

Each concern declares its own variables and checks in a module of this package (project.py,
services.py, app_server.py, certificates.py, releases.py, day2.py, schedules.py, backups.py,
maintenance.py, notifications.py, fleet.py; secret_sources.py reads the secrets the others' values
refer to); Settings puts them together with what is derived from
them (paths in layout.py, the fleet's places in placement.py, the app server's names in
app_server_layout.py, the app's environment in environment.py).
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Optional

from pydantic import ConfigDict, PrivateAttr, ValidationError
from pyinfra.api.exceptions import PyinfraError

from .app_server import AppServerInputs
from .app_server_layout import AppServerPlace
from .backups import BackupInputs
from .certificates import CertificateInputs
from .day2 import Day2Inputs
from .environment import mask_credentials, split_environment
from .fleet import FleetInputs
from .layout import Layout
from .maintenance import MaintenanceInputs
from .notifications import NotificationInputs
from .placement import Fleet, FleetPlace, plan_fleet
from .project import ProjectInputs
from .releases import ReleaseInputs
from .schedules import ScheduleInputs
from .secret_sources import SecretSourceInputs, resolve_secrets
from .services import ServiceInputs

# Data keys with these prefixes belong to us: one we do not know is most likely a typo.
OWN_PREFIXES = ("django_", "uwsgi_", "app_server", "manage_", "acme_", "nginx_", "apache2_", "site_", "celery_",
                "release_", "deploy_", "rollback_", "confirm_", "maintenance_", "backup_", "restore_")


# Variables a version of the kit renamed or removed: old name -> what to write instead. A copy of
# the repository that takes a new version keeps its group_data/ and inventories/; a variable they
# still set under its old name is refused with its new one, never ignored (CHANGELOG.md lists them).
RENAMED: dict[str, str] = {}


class DeploySettingsError(PyinfraError):
    """Raised before any operation is added: the message lists every bad variable of every host."""


class DeployRefused(PyinfraError):
    """Raised before any operation is added when the host's state does not allow the deploy
    (nothing to roll back to, removal not confirmed): nothing was changed."""


# pydantic orders the fields of several bases from the last base to the first: the variables of
# the inputs below come in the order project, services, app server, ..., backups, fleet (the README's).
class Settings(FleetPlace, Layout, AppServerPlace,
               FleetInputs, NotificationInputs, MaintenanceInputs, BackupInputs, ScheduleInputs, Day2Inputs,
               ReleaseInputs, CertificateInputs, AppServerInputs, ServiceInputs, SecretSourceInputs, ProjectInputs):
    """One host's deploy settings."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    # Set by validate_inventory: which host of which fleet these settings are for.
    _host: Optional[str] = PrivateAttr(default=None)
    _fleet: Optional[Fleet] = PrivateAttr(default=None)
    # The values read from secrets_files or secrets_command, as a message could show them: masked.
    _secret_values: list[str] = PrivateAttr(default_factory=list)

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

    # ------------------------------------------------------------------ derived roles

    @property
    def backs_up(self) -> bool:
        """This host runs the project's backups (services/backups.py)."""
        return bool(self.backup_repository) and self.runs_migrations


# Every variable, in the order of the model; group_data/all.py and the README follow it.
VARIABLES = tuple(Settings.model_fields)
REQUIRED = tuple(name for name, field in Settings.model_fields.items() if field.is_required())


def _describe(error: dict) -> str:
    """One problem, as `variable: message`; the credentials of any URL in it masked (a refused value
    is shown to say what was wrong with it, and may carry a password or token)."""
    variable = str(error["loc"][0]) if error["loc"] else ""
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "missing":
        message = "is required and not set"
    elif error["type"] == "literal_error":
        message = f"{message} (got {error['input']!r})"
    elif not variable and ":" in message:
        variable, message = (part.strip() for part in message.split(":", 1))
    return mask_credentials(f"{variable}: {message}" if variable else message)


def _masked(problem: str, secret_values: list[str]) -> str:
    """A problem with any secret value read from secrets_files or secrets_command in it masked
    (secret_values: as shown_forms gives them)."""
    for value in secret_values:
        problem = problem.replace(value, "(a secret)")
    return problem


def problems(data: dict[str, Any]) -> tuple[Optional[Settings], list[str]]:
    """Validate one host's data: the settings, or every problem found, each naming its variable."""
    found = [f"{key}: {RENAMED[key]}" for key in sorted(data) if key in RENAMED and data[key] is not None]
    unknown = sorted(
        key for key in data if key.startswith(OWN_PREFIXES) and key not in Settings.model_fields and key not in RENAMED
    )
    found += [f"{key}: is not a variable of this project (a typo?)" for key in unknown]
    # pyinfra gives unset data as None: treat it as not given, so defaults and "required" apply.
    given = {key: value for key, value in data.items() if value is not None}
    # `{{ name }}` in a value: the secret of that name, from secrets_files or secrets_command.
    given, secret_values, secret_problems = resolve_secrets(given, Settings.model_fields)
    if secret_problems:
        return None, found + secret_problems
    try:
        settings = Settings(**given)
    except ValidationError as error:
        return None, found + [_masked(_describe(item), secret_values) for item in error.errors()]
    settings._secret_values = secret_values
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
            secret_values = sorted({value for _, settings in valid.values() for value in settings._secret_values},
                                   key=len, reverse=True)
            report.append("the fleet:")
            report.extend(f"  - {_masked(line, secret_values)}" for line in fleet_problems)
    if report:
        raise DeploySettingsError("invalid deploy settings, nothing was changed:\n" + "\n".join(report))
    for name, (_, settings) in valid.items():
        settings._host, settings._fleet = name, fleet
    return {name: settings for name, (_, settings) in valid.items()}
