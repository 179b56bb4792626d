"""The folders the kit takes as root are its own: looked at before the deploys that make or remove
them add any step, and the run refused (nothing changed) when one is not.

    folder                   what root does to it                  refused when it is
    deployment root          made root's, 755 (host preparation)   holding files, and no project of the kit's
    project root             removed whole (remove.py)             a mount point, or holding files, not the kit's
    local backup repository  given to the backup user (skeleton)   a mount point, or holding files, not restic's

A project root is the kit's when it holds MARKER, which the skeleton writes as it makes the folder,
or (made before there was one) what only the kit leaves there: `releases/`, `current` or, on every
host, `bin/with-secrets`. A mount point is a disk or share of its own: removing or giving away a
folder there reaches all of it. The deployment root may be one (a data disk for the sites): the
kit only makes folders in it.
"""

from __future__ import annotations


from pyinfra import host, state
from pyinfra.api import FactBase, operation

from ..settings import DeployRefused, Settings
from .shell import each_path, q

MARKER = ".django-deploy"
MARKER_TEXT = ("This folder was made by the django deploy kit (pyinfra) for one project: deploys/remove.py "
               "deletes it whole.\n")

DEPLOYMENT_ROOT, PROJECT_ROOT, BACKUP_REPOSITORY = "deployment root", "project root", "backup repository"
VARIABLES = {DEPLOYMENT_ROOT: "django_deployment_root_folder", PROJECT_ROOT: "websiteproject",
             BACKUP_REPOSITORY: "backup_repository"}
# The deploy functions (by their @deploy names) that make or remove these folders, and which ones;
# the first makes the project root, and marks it.
MAKES_PROJECT_ROOT = "App skeleton"
GUARDED = {
    "Prepare host": (DEPLOYMENT_ROOT,),
    MAKES_PROJECT_ROOT: (DEPLOYMENT_ROOT, PROJECT_ROOT, BACKUP_REPOSITORY),
    "Remove": (PROJECT_ROOT,),
}


def folder_states_command(paths: list[str]) -> str:
    """Shell: one line per path, the path then what it is: missing, file (not a folder), mount,
    bare (nothing in it, or only empty folders), marked (MARKER in it), made (what an earlier kit
    left in a project root is in it), restic (a restic repository), projects (a folder in it is a
    project root of the kit's)."""
    made = '{ [ -d "$1/releases" ] || [ -L "$1/current" ] || [ -f "$1/bin/with-secrets" ]; }'
    project = f'{{ [ -e "$1/{MARKER}" ] || {made}; }}'
    return f"made() {{ {made}; }}; is_project() {{ {project}; }}; " + each_path(paths, (
        'line="$path"; '
        'if [ ! -e "$path" ] && [ ! -L "$path" ]; then echo "$line missing"; continue; fi; '
        'if [ ! -d "$path" ]; then echo "$line file"; continue; fi; '
        'mountpoint -q "$path" && line="$line mount"; '
        '[ -z "$(find "$path" -mindepth 1 -maxdepth 1 \\( ! -type d -o ! -empty \\) -print -quit)" ] && '
        'line="$line bare"; '
        f'[ -e "$path/{MARKER}" ] && line="$line marked"; '
        'made "$path" && line="$line made"; '
        '[ -f "$path/config" ] && [ -d "$path/keys" ] && line="$line restic"; '
        'for child in "$path"/*/; do is_project "${child%/}" && { line="$line projects"; break; }; done; '
        'echo "$line"'))


class FolderStates(FactBase):
    """What each of `paths` is (folder_states_command): path -> set of words; a missing one says
    "missing"."""

    default = dict

    def command(self, paths: list[str]) -> str:
        return folder_states_command(paths)

    def process(self, output):
        return {path: set(words) for path, *words in (line.split(" ") for line in output if line)}


def guarded_folders(settings: Settings) -> dict[str, str]:
    """Kind -> path of the folders the kit takes as root for this host."""
    folders = {DEPLOYMENT_ROOT: settings.django_deployment_root_folder, PROJECT_ROOT: settings.project_root}
    if settings.backs_up and settings.backup_repository.startswith("/"):
        folders[BACKUP_REPOSITORY] = settings.backup_repository
    return folders


def folder_problem(kind: str, path: str, words: set[str]) -> str | None:
    """Why the kit may not take the folder `path` (a `kind`, whose state is `words`), or None."""
    if "missing" in words or ("bare" in words and "mount" not in words):
        return None
    if "file" in words:
        return f"{path} is a file, not a folder"
    if "mount" in words and kind != DEPLOYMENT_ROOT:
        return (f"{path} is a mount point (a disk or share of its own), which the kit would "
                f"{'remove' if kind == PROJECT_ROOT else 'give to the backup user'} whole; use a folder on it")
    if kind == DEPLOYMENT_ROOT and not words & {"bare", "projects"}:
        return f"{path} holds files and no project of the kit's; use an empty or new folder"
    if kind == PROJECT_ROOT and not words & {"marked", "made"}:
        return (f"{path} holds files the kit did not make (no {MARKER}, releases/, current or bin/with-secrets "
                "in it); remove.py would delete them; use another websiteproject or deployment root")
    if kind == BACKUP_REPOSITORY and "restic" not in words:
        return (f"{path} holds files and is not a restic repository, and the kit would give it to the "
                "app user; use an empty or new folder")
    return None


def folder_refusals(settings: Settings, kinds: tuple[str, ...], states: dict[str, set[str]]) -> list[str]:
    """The problems of the folders of `kinds`, each naming its variable."""
    found = []
    for kind, path in guarded_folders(settings).items():
        problem = kind in kinds and folder_problem(kind, path, states.get(path, {"missing"}))
        if problem:
            found.append(f"{VARIABLES[kind]}: the {kind} {problem}")
    return found


def marker_command(path: str) -> str:
    """Shell: the folder `path` (made if missing) marked as the kit's."""
    return f"mkdir -p {q(path)} && printf %s {q(MARKER_TEXT)} > {q(path + '/' + MARKER)}"


@operation()
def mark_project_root(path: str, marked: bool):
    """MARKER in the project root `path`, unless it is `marked` already."""
    if marked:
        host.noop(f"{path} is marked as the kit's")
        return
    yield marker_command(path)


_guarded: set[tuple[int, str, str]] = set()


def guard_own_folders(settings: Settings, deploy_name: str | None, states_of) -> None:
    """At the start of a deploy (named `deploy_name`) that makes or removes the kit's folders, once
    per run and host: refuse it when one of them is not the kit's to take; the skeleton then marks
    the project root. `states_of(paths)` reads FolderStates of the host as it was before the run."""
    deploy_name = (deploy_name or "").rsplit(" | ", 1)[-1]  # a deploy called inside another is named after both
    key = (id(state), host.name, deploy_name)
    if deploy_name not in GUARDED or key in _guarded:
        return
    _guarded.add(key)
    states = states_of(sorted(guarded_folders(settings).values()))
    found = folder_refusals(settings, GUARDED[deploy_name], states)
    if found:
        raise DeployRefused(f"host {host.name}: " + "; ".join(found) + "; nothing was changed")
    if deploy_name == MAKES_PROJECT_ROOT:
        mark_project_root(name=f"Mark {settings.project_root} as the kit's", path=settings.project_root,
                          marked="marked" in states.get(settings.project_root, set()))
