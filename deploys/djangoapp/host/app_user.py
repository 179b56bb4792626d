"""The user the app runs as: by default one of its own per project (`django-<websiteproject>`, a
system user without a password or a shell, and a group of the same name), so that one project's
app reads neither another's secrets nor its database, and reaches no other app's socket.

A user the team names itself (uwsgi_user, e.g. the seed role's www-data) is used as it is: it
must exist; the kit neither makes nor removes it.

A host whose app ran as another user before (www-data, the kit's default before it made one per
project) is moved to the new one by the skeleton, in the same run: the new user is let in beside
the old one first (let_in_command), the app server and Celery restart as the new user once the
webserver step is done (skeleton.py), then what the old user owned in the app's folders becomes
the new user's and the releases are entered through the new group (the webserver's group keeps
reading their static files). Release and rollback refuse until then.
"""

from __future__ import annotations


from pyinfra import host, state
from pyinfra.operations import server

from ..core.context import fact_before_run
from ..core.host_state import FolderStates
from ..core.shell import q
from ..core.units import stamps_command
from ..settings import DeployRefused, Settings

# (run, host) whose app files this run moves to the app's user (all.py: before its release).
_moved: set[tuple[int, str]] = set()


def app_trees(settings: Settings) -> list[str]:
    """The folders whose content is the app's (its writes, its state): they follow the app user.
    shared/ itself is root's: only what the app owns in it is listed."""
    linked = [f"{settings.shared_dir}/{path}" for path in settings.django_linked_dirs + settings.django_linked_files]
    trees = [settings.media_dir, settings.db_dir, settings.log_dir, *linked]
    if settings.app_user_is_the_kits:
        trees.append(settings.app_home)
    if settings.runs_uwsgi:
        trees.append(settings.uwsgi_control_dir)
    return trees


def previous_owner(settings: Settings) -> tuple[str, str] | None:
    """The user and group the app ran as here before this run, when they are not the ones set now
    (the owner of its database folder, or of its uploads): None on a new host or when unchanged."""
    found = fact_before_run(FolderStates, paths=[settings.db_dir, settings.media_dir])
    state = found.get(settings.db_dir) or found.get(settings.media_dir)
    if state is None or state[:2] == (settings.uwsgi_user, settings.uwsgi_group):
        return None
    return state[:2]


def _each(kind: str, settings: Settings) -> str:
    """Shell: the head of a loop over the app's trees (app_trees; not through a link) or releases."""
    if kind == "tree":
        trees = " ".join(q(tree) for tree in app_trees(settings))
        return f'for tree in {trees}; do [ -e "$tree" ] && [ ! -L "$tree" ] || continue; '
    return f'for release in {q(settings.releases_dir)}/*/; do [ -d "$release" ] || continue; '


def let_in_command(settings: Settings) -> str:
    """Shell: the app's user and group let in beside the old ones (ACL entries on the app's trees,
    inherited by what the old processes write meanwhile; the releases entered through the new
    group), so that both the old processes, finishing their requests, and the new ones work.
    setfacl -R never follows a link."""
    user, group = settings.uwsgi_user, settings.uwsgi_group
    both = f"u:{user}:rwX,g:{group}:rwX"
    return (f"{_each('tree', settings)}setfacl -R -m {q(both + ',d:' + both.replace(',', ',d:'))} \"$tree\" "
            "|| exit 1; done && "
            f"{_each('release', settings)}setfacl -m {q(f'g:{group}:rx')} \"$release\" || exit 1; done")


def move_command(settings: Settings, old_user: str, old_group: str, restart: str) -> str:
    """Shell, once let_in_command ran: the app's processes restarted as the app's user (`restart`)
    with no request failing (the listen socket held by systemd meanwhile), then what `old_user`
    and `old_group` own in the app's folders made the app's and the extra entries gone. find and
    chown -h never follow a link; a file with other hard links (the old user may have linked
    another project's file in) keeps its owner, and the run says how many did."""
    user, group = settings.uwsgi_user, settings.uwsgi_group
    each_tree, each_release = _each("tree", settings), _each("release", settings)
    alone = r"\( -type d -o -links 1 \)"
    steps = [
        restart,
        f"{each_tree}find \"$tree\" {alone} -user {q(old_user)} -exec chown -h {q(user)} {{}} + && "
        f"find \"$tree\" {alone} -group {q(old_group)} -exec chgrp -h {q(group)} {{}} + && "
        f"setfacl -R -b \"$tree\" || exit 1; "
        f"linked=$(find \"$tree\" ! -type d -links +1 -user {q(old_user)} | wc -l); "
        f'[ "$linked" = 0 ] || echo "$linked file(s) in $tree with other hard links stay {old_user}\'s" >&2; done',
        f"{each_release}chgrp {q(group)} \"$release\" && setfacl -x {q(f'g:{group}')} \"$release\" || exit 1; done",
    ]
    if settings.is_web and settings.webserver_group != group:
        # The webserver's group reads the releases' static files (as a release gives it).
        steps.append(f"{each_release}setfacl -m {q(f'g:{settings.webserver_group}:rx')} \"$release\" || exit 1; done")
    return " && ".join(steps)


def system_user(user: str, home: str, purpose: str, groups: tuple[str, ...] = ()) -> None:
    """A system user of the kit's (no password, no shell) with a group of its name, and `groups`."""
    server.group(name=f"Group {user} of {purpose}", group=user, system=True)
    server.user(name=f"User {user} of {purpose} (no password, no shell)", user=user, group=user, groups=list(groups),
                home=home, shell="/usr/sbin/nologin", system=True, create_home=False, ensure_home=False)


def no_system_user(user: str, purpose: str) -> None:
    """The system user of `purpose` and its group gone."""
    server.user(name=f"No user {user} of {purpose}", user=user, present=False)
    server.group(name=f"No group {user} of {purpose}", group=user, present=False)


def make_app_user(settings: Settings) -> None:
    """The app's own user and group, when the kit names them (its home is one of the skeleton's
    folders)."""
    if settings.app_user_is_the_kits:
        system_user(settings.uwsgi_user, settings.app_home, "the app")


def moving_from(settings: Settings) -> tuple[str, str] | None:
    """The user and group the app moves from in this run (previous_owner), noted so that a release
    in the same run (all.py) goes ahead."""
    moved_from = previous_owner(settings)
    if moved_from:
        _moved.add((id(state), host.name))
    return moved_from


def let_app_in(settings: Settings, moved_from: tuple[str, str]) -> None:
    """The step that lets the app's user in beside the one it moves from (let_in_command), before
    any process of the app starts as it."""
    server.shell(name=f"Let {settings.uwsgi_user}:{settings.uwsgi_group} in beside {moved_from[0]}:{moved_from[1]}",
                 commands=[let_in_command(settings)])


def move_app(settings: Settings, moved_from: tuple[str, str], restart: str, services: list[str]) -> None:
    """The step that moves the app to its user (move_command), once its units are written and
    the webserver is set up; the restarted services' refresh stamps touched, as their refresh did
    not run."""
    server.shell(name=f"Move the app from {moved_from[0]}:{moved_from[1]} to {settings.uwsgi_user}:"
                      f"{settings.uwsgi_group} (restarting {', '.join(services) or 'nothing'})",
                 commands=[move_command(settings, *moved_from, restart)
                           + (f" && {stamps_command(services)}" if services else "")])


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
        no_system_user(settings.uwsgi_user, "the app")
