"""The deploy user (deploy_user): a login with passwordless sudo, so root logins can go. What it may
do follows the settings both ways: its authorized_keys are deploy_user_ssh_keys, no more (a key
taken off the list is taken off the host), and a user deploy_user no longer names loses the sudo
the deploys gave it (its sudoers file; the account stays, with its files).

The run never takes away its own way in: when it logs in as a user whose sudo would go, or whose
keys would all go, it is refused before any change.
"""

from __future__ import annotations

from typing import Optional

from pyinfra import host
from pyinfra.api import FactBase
from pyinfra.operations import server

from ..core.context import fact_before_run, write_files
from ..core.host_files import HostFile, absent
from ..core.shell import q
from ..settings import DeployRefused, Settings

SUDOERS_DIR = "/etc/sudoers.d"
SUDOERS_PREFIX = "django-deploy-"


def sudoers_file(user: str) -> str:
    return f"{SUDOERS_DIR}/{SUDOERS_PREFIX}{user}"


def sudo_users_command(folder: str = SUDOERS_DIR) -> str:
    """Shell: "sudo <user>" for each sudoers file the deploys wrote (by its name), then "login
    <user>" for the user this run logs in as (sudo tells it; without sudo, the user itself)."""
    return (f"for path in {q(folder)}/{SUDOERS_PREFIX}*; do [ -f \"$path\" ] && "
            f"echo \"sudo ${{path##*/{SUDOERS_PREFIX}}}\"; done; echo \"login ${{SUDO_USER:-$(id -un)}}\"")


class SudoUsers(FactBase):
    """{"sudo": users the deploys gave sudo, "login": the user this run logs in as}."""

    def command(self) -> str:
        return sudo_users_command()

    def process(self, output):
        found = {"sudo": [], "login": []}
        for line in output:
            kind, _, user = line.partition(" ")
            found.setdefault(kind, []).append(user)
        return found


def login_users(found: dict[str, list[str]]) -> set[str]:
    """The user this run logs in as: as the host says, and as the inventory says (ssh_user)."""
    return {*found.get("login", []), *filter(None, [host.data.get("ssh_user")])}


def deploy_user_plan(settings: Settings, sudo_users: list[str], logins: set[str]) -> tuple[list[str], Optional[str]]:
    """(the users whose sudo goes, why the run is refused or None)."""
    stale = sorted(user for user in sudo_users if user != settings.deploy_user)
    own = [user for user in stale if user in logins]
    if own:
        now = f"is {settings.deploy_user}" if settings.deploy_user else "is not set"
        return [], (f"deploy_user: this run logs in as {own[0]}, whose passwordless sudo the deploys gave "
                    f"({sudoers_file(own[0])}) and deploy_user no longer names (it {now}): taking it away would "
                    f"leave this login without root; set deploy_user = \"{own[0]}\" to keep it, or run as "
                    "another user (root) to take it away")
    if settings.deploy_user in logins and not settings.deploy_user_ssh_keys:
        return [], (f"deploy_user_ssh_keys: is empty, and this run logs in as {settings.deploy_user}: its "
                    "authorized_keys are deploy_user_ssh_keys, and emptied would lock this login out; list its keys")
    return stale, None


def _plan(settings: Settings) -> tuple[list[str], Optional[str]]:
    found = fact_before_run(SudoUsers)
    return deploy_user_plan(settings, found["sudo"], login_users(found))


def refuse_locking_this_login_out(settings: Settings) -> None:
    """Before host preparation's first step: refused when it would take away this run's login."""
    refusal = _plan(settings)[1]
    if refusal:
        raise DeployRefused(f"host {host.name}: {refusal}; nothing was changed")


def deploy_users(settings: Settings) -> None:
    """deploy_user with its keys and sudo, and no sudo left to a user it no longer names (as the
    host was before the run; refuse_locking_this_login_out has checked the plan)."""
    stale = _plan(settings)[0]
    if settings.deploy_user:
        server.user(name=f"Deploy user {settings.deploy_user}", user=settings.deploy_user, shell="/bin/bash",
                    create_home=True, public_keys=settings.deploy_user_ssh_keys, delete_keys=True)
        write_files(f"passwordless sudo for {settings.deploy_user}", [HostFile(
            sudoers_file(settings.deploy_user), f"{settings.deploy_user} ALL=(ALL:ALL) NOPASSWD: ALL\n".encode(),
            "440")])
    if stale:
        absent(name=f"No sudo for {', '.join(stale)} (no longer deploy_user)", paths=[sudoers_file(u) for u in stale])
