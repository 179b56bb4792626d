"""Run a management command of the live release (deploys/manage.py): `createsuperuser`, a data
fix, a cache warm-up. It runs as the app's user with the app's environment and secrets
(bin/manage), on migration_host, or on every host that holds releases with manage_on=all. Its
output is shown with every secret value masked, and a command that fails fails the run.

The command line is split as a shell would split it and each word passed on quoted: no shell
reads it on the host. `--dry` shows where it would run and runs nothing.
"""

from __future__ import annotations

import shlex

from pyinfra import host, state
from pyinfra.api import deploy
from pyinfra.operations import python

from ..core import audit, failure
from ..core.callbacks import mask_secrets, run_shown
from ..core.context import current_settings
from ..core.host_state import ReleaseInfo
from ..core.shell import q
from ..settings import DeployRefused, Settings


def management_command(settings: Settings) -> str:
    """Shell: bin/manage with the words of `manage`, each quoted."""
    return " ".join([q(settings.manage_command), *(q(word) for word in shlex.split(settings.manage))])


def runs_here(settings: Settings) -> bool:
    return settings.runs_migrations or (settings.manage_on == "all" and settings.holds_releases)


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
