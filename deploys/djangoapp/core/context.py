"""What every deploy function needs: this host's validated settings and the template helper."""

from __future__ import annotations

import sys
from pathlib import Path

import jinja2

from pyinfra import host, inventory, state

from ..settings import DeployRefused, Settings, validate_inventory
from ..settings.environment import host_in_url
from .host_files import HostFile, host_files

TEMPLATES = Path(__file__).resolve().parents[3] / "templates"

_validated: dict[int, dict[str, Settings]] = {}


def current_settings() -> Settings:
    """This host's settings. The first call of a run validates every host of the inventory and
    the fleet they make, so one error lists all the problems, raised before any operation is added;
    the first of a deploy that makes or removes the kit's folders refuses it when one of them is
    not the kit's to take (own_folders.py)."""
    key = id(inventory)
    if key not in _validated:
        _validated[key] = validate_inventory(list(inventory))
    settings = _validated[key][host.name]
    # The deploys that make or remove the kit's folders look at them first. (Imported here:
    # own_folders reaches this module through the deploy modules it reads.)
    from .own_folders import FolderStates, guard_own_folders
    guard_own_folders(settings, host.current_deploy_name, lambda paths: fact_before_run(FolderStates, paths=paths))
    return settings


def settings_of(other) -> Settings:
    """The settings of another host of the inventory (validated with this host's)."""
    current_settings()
    return _validated[id(inventory)][other.name]


def require_whole_fleet(action: str) -> None:
    """A release or rollback changes the fleet as one: refuse it when a host is not in the run."""
    missing = [other.name for other in inventory if other not in state.active_hosts]
    if missing:
        raise DeployRefused(f"{', '.join(missing)} not in this run (unreachable, or left out by --limit): "
                            f"a {action} runs on every host of the fleet; nothing was changed")


def render_template(name: str, **context) -> str:
    """templates/<name> rendered with `context`, for content put on a host by other means than
    files.template (and for unit tests)."""
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), trim_blocks=True,
                                     lstrip_blocks=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    environment.filters["host_in_url"] = host_in_url
    return environment.get_template(name).render(**context)


def rendered(name: str, dest: str, settings: Settings, mode: str, user="root", group="root", **context) -> HostFile:
    """templates/<name>, rendered with `s` bound to the settings, as the file `dest` on the host."""
    return HostFile(dest, render_template(name, s=settings, **context).encode(), mode, user, group)


def write_files(label: str, files: list[HostFile]):
    """One step that writes `files` (host_files.py): "Write <label>"."""
    return host_files(name=f"Write {label}", files=files)


def template(name: str, dest: str, settings: Settings, mode: str, user="root", group="root", **context):
    """Render templates/<name> to `dest` on the host, with `s` bound to the settings."""
    return write_files(dest, [rendered(name, dest, settings, mode, user, group, **context)])


_facts_before_run: dict[tuple, object] = {}


def fact_before_run(fact, **arguments):
    """A fact of this host as it was before the run changed anything, read once. For deploy code
    only: pyinfra reads the deploy files whole before the first operation runs, so a second read
    of the same fact there gives the same answer, one round trip later."""
    key = (id(state), host.name, fact, repr(sorted(arguments.items())))
    if key not in _facts_before_run:
        _facts_before_run[key] = host.get_fact(fact, **arguments)
    return _facts_before_run[key]


def only(condition: bool):
    """`_if` for an operation that every host of the fleet adds but only some run. pyinfra orders a
    run's operations by each host's own sequence: when every host adds the same operations, a
    step on one host (the migrations) or on one batch cannot slip ahead of another host's."""
    return lambda: condition


def dry_run() -> bool:
    """Whether this is `pyinfra --dry`: operations are listed, none runs. pyinfra keeps the flag to
    its command line, so it is read from there."""
    return "--dry" in sys.argv[1:]
