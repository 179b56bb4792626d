"""The user the app runs as: by default one of its own per project (`django-<websiteproject>`, a
system user without a password or a shell, and a group of the same name), so that one project's
app reads neither another's secrets nor its database, and reaches no other app's socket.

A user the team names itself (uwsgi_user, e.g. the seed role's www-data) is used as it is: it
must exist; the kit neither makes nor removes it.

A host whose app ran as another user before (www-data, the kit's default before it made one per
project) is moved to the new one by the skeleton, in the same run: what the old user owned in the
app's folders becomes the new user's (`chown --from`, which never follows a link), the releases
are entered through the new group (the webserver's group keeps reading their static files), and
the app server restarts as the new user (app_server.py).
"""

from __future__ import annotations

import shlex

from pyinfra import host, state
from pyinfra.api import FactBase
from pyinfra.operations import server

from .backups import backs_up, cache_dir, state_dir
from .context import fact_before_run
from .settings import DeployRefused, Settings

q = shlex.quote

# (run, host) whose app files this run moves to the app's user (all.py: before its release).
_moved: set[tuple[int, str]] = set()


class FolderOwners(FactBase):
    """The owner and group of each of `paths` that exists (links not followed), by path."""

    default = dict

    def command(self, paths: list[str]) -> str:
        return (f"for path in {' '.join(q(path) for path in paths)}; do "
                "[ -e \"$path\" ] && stat -c '%U %G %n' \"$path\"; done; true")

    def process(self, output):
        return {line.split(" ", 2)[2]: tuple(line.split(" ", 2)[:2]) for line in output}


def app_trees(settings: Settings) -> list[str]:
    """The folders whose content is the app's (its writes, its state): they follow the app user."""
    trees = [settings.shared_dir]
    if settings.app_user_is_the_kits:
        trees.append(settings.app_home)
    if settings.runs_uwsgi:
        trees.append(settings.uwsgi_control_dir)
    if backs_up(settings):
        trees += [state_dir(settings), cache_dir(settings)]
        if settings.backup_repository.startswith("/"):
            trees.append(settings.backup_repository)
    return trees


def previous_owner(settings: Settings) -> tuple[str, str] | None:
    """The user and group the app ran as here before this run, when they are not the ones set now
    (the owner of its database folder, or of its uploads): None on a new host or when unchanged."""
    found = fact_before_run(FolderOwners, paths=[settings.db_dir, settings.media_dir])
    owner = found.get(settings.db_dir) or found.get(settings.media_dir)
    if owner is None or owner == (settings.uwsgi_user, settings.uwsgi_group):
        return None
    return owner


def move_command(settings: Settings, old_user: str, old_group: str) -> str:
    """Shell: what `old_user` owns in the app's folders (and what `old_group` owns there) becomes
    the app user's and group's; each release folder is entered through the app's group, with the
    webserver's group still reading it (its static files). chown -R never follows a link it meets
    (-P, GNU's default), and --from leaves alone what root or anyone else owns there."""
    user, group = settings.uwsgi_user, settings.uwsgi_group
    trees = " ".join(q(tree) for tree in app_trees(settings))
    steps = [
        f"for tree in {trees}; do [ -d \"$tree\" ] || continue; "
        f"chown -R --from={q(old_user)} {q(user)} \"$tree\" && "
        f"chown -R --from=:{q(old_group)} :{q(group)} \"$tree\" || exit 1; done",
        f"for release in {q(settings.releases_dir)}/*/; do [ -d \"$release\" ] || continue; "
        f"chgrp -h {q(group)} \"$release\" || exit 1; "
        + (f"setfacl -m {q('g:' + settings.webserver_group + ':rx')} \"$release\" || exit 1; "
           if settings.is_web and settings.webserver_group != group else "")
        + "done",
    ]
    return " && ".join(steps)


def make_app_user(settings: Settings) -> None:
    """The app's own user and group, when the kit names them (its home is one of the skeleton's
    folders)."""
    if settings.app_user_is_the_kits:
        server.group(name=f"Group {settings.uwsgi_group} of the app", group=settings.uwsgi_group, system=True)
        server.user(name=f"User {settings.uwsgi_user} of the app (no password, no shell)", user=settings.uwsgi_user,
                    group=settings.uwsgi_group, home=settings.app_home, shell="/usr/sbin/nologin", system=True,
                    create_home=False, ensure_home=False)


def move_app_files(settings: Settings) -> bool:
    """On a host whose app ran as another user before, its files moved over to the app's user (under
    the deploy lock). Returns whether the app's user changed in this run."""
    moved_from = previous_owner(settings)
    if moved_from is None:
        return False
    _moved.add((id(state), host.name))
    server.shell(name=f"Move the app's files from {moved_from[0]}:{moved_from[1]} to "
                      f"{settings.uwsgi_user}:{settings.uwsgi_group}",
                 commands=[move_command(settings, *moved_from)])
    return True


def refuse_until_moved(settings: Settings) -> None:
    """A release or rollback on a host whose app still runs as another user than the settings say
    (the kit's default changed from www-data to a user per project): the skeleton moves it first."""
    moved_from = previous_owner(settings)
    if moved_from and (id(state), host.name) not in _moved:
        raise DeployRefused(
            f"host {host.name}: uwsgi_user: the app runs as {moved_from[0]} here and the settings say "
            f"{settings.uwsgi_user}: run deploys/skeleton.py (or all.py) once to move it over; nothing was changed")


def remove_app_user(settings: Settings) -> None:
    """The project removed: its own user and group go (a user the team named stays)."""
    if settings.app_user_is_the_kits:
        server.user(name=f"Remove the app's user {settings.uwsgi_user}", user=settings.uwsgi_user, present=False)
        server.group(name=f"Remove the app's group {settings.uwsgi_group}", group=settings.uwsgi_group,
                     present=False)
