"""Run a management command of the live release (deploys/manage.py): `createsuperuser`, a data
fix, a cache warm-up. It runs as the app's user with the app's environment and secrets
(bin/manage), on migration_host, or on every host that holds releases with manage_on=all. Its
output is shown with every secret value masked, and a command that fails fails the run.

The command line is split as a shell would split it and each word passed on quoted: no shell
reads it on the host. `--dry` shows where it would run and runs nothing.
"""

from __future__ import annotations

import shlex

from pyinfra import host, logger, state
from pyinfra.api import deploy
from pyinfra.api.arguments import CONNECTOR_ARGUMENT_KEYS
from pyinfra.api.exceptions import OperationError
from pyinfra.operations import python

from . import audit, failure
from .context import current_settings
from .environment import mask_credentials
from .operations import ReleaseInfo
from .settings import DeployRefused, Settings

q = shlex.quote


def management_command(settings: Settings) -> str:
    """Shell: bin/manage with the words of `manage`, each quoted."""
    return " ".join([q(settings.manage_command), *(q(word) for word in shlex.split(settings.manage))])


def mask_secrets(text: str, secrets: dict[str, str]) -> str:
    """`text` with every secret value (and any URL's password) replaced by ***."""
    for value in sorted(secrets.values(), key=len, reverse=True):
        if len(value) >= 4:
            text = text.replace(value, "***")
    return mask_credentials(text)


def runs_here(settings: Settings) -> bool:
    return settings.runs_migrations or (settings.manage_on == "all" and settings.holds_releases)


def run_as_operation(host, command: str):
    """In a python.call callback: run `command` as the operation runs its commands (pyinfra hands a
    callback none of the operation's _sudo, _sudo_user, ...: they are taken from the operation
    here, so a sudo login works). pyinfra's (succeeded, output)."""
    arguments = host.current_op_global_arguments or {}
    return host.run_shell_command(command, **{key: arguments[key] for key in CONNECTOR_ARGUMENT_KEYS
                                              if key in arguments})


def run_shown(state, host, command: str, secrets: dict[str, str], what: str) -> None:
    """A python.call callback: run `command` as the operation would (run_as_operation), show what
    it printed with secrets masked, fail if it did."""
    done, output = run_as_operation(host, command)
    for line in output.output_lines:
        logger.info(f"{host.print_prefix}{mask_secrets(line, secrets)}")
    if not done:
        raise OperationError(f"{what} failed (its output is above)")


@deploy("Manage")
def run_management_command():
    settings = current_settings()
    if not settings.manage:
        raise DeployRefused('manage: give the command to run, e.g. --data manage="createsuperuser --noinput '
                            '--username admin"; nothing was changed')
    if not runs_here(settings):
        host.noop(f"runs on {settings.fleet.migration_host} (manage_on=all: on every app host)")
        return
    if not host.get_fact(ReleaseInfo, link=settings.current_link):
        raise DeployRefused(f"host {host.name}: no live release to run manage.py in; nothing was changed")
    shown = mask_secrets(settings.manage, settings.secrets)
    failure.on_failure(state, host, audit.failure_command(settings, "manage", shown))
    python.call(name=f"manage.py {shown}", function=run_shown, command=management_command(settings),
                secrets=settings.secrets, what="the management command")
    audit.record(settings, "manage", shown)
