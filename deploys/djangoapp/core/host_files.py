"""Files the kit writes whole (configs, units, scripts rendered from templates/), several in one
step: one look at all of them; when any is not as it should be, each of those uploaded (SFTP,
no command) to a folder only root may enter, then one command puts them in place, each with its
owner and mode before it gets its name (a new file renamed over the old one).

files.template costs five commands per file on a new host and two on a host where the file is
already right; a command is a round trip and a login session on the host (about 50 ms on
loopback, more across a network). Here: one command when all are right, three when any is not.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass
from io import BytesIO

from pyinfra import host, logger, state
from pyinfra.api import FactBase, FileUploadCommand, StringCommand, operation
from pyinfra.api.output import format_text
from pyinfra.facts.files import FileContents, Sha256File
from pyinfra.operations.util.files import generate_color_diff

from .shell import each_path, q

# Where uploads wait to be put in place: root's alone.
STAGING_ROOT = "/var/lib/django-deploy/uploads"


@dataclass(frozen=True)
class HostFile:
    path: str
    content: bytes
    mode: str          # octal, as chmod takes it: "644"
    user: str = "root"
    group: str = "root"
    secret: bool = False   # never shown: no diff with --diff

    @property
    def state(self) -> tuple[str, str, str, str]:
        """What FileStates reads for this file when it is as it should be."""
        return hashlib.sha256(self.content).hexdigest(), self.user, self.group, f"{int(self.mode, 8):o}"


class FileStates(FactBase):
    """sha256 of the content, owner, group and mode ("644") of each of `paths` that is a regular
    file (not a link), by path; the others are missing."""

    default = dict

    def command(self, paths: list[str]) -> str:
        return each_path(paths, '[ -f "$path" ] && [ ! -L "$path" ] && '
                                'echo "$(sha256sum < "$path" | cut -c1-64) $(stat -c \'%U %G %a\' "$path") $path"')

    def process(self, output):
        found = {}
        for line in output:
            digest, user, group, mode, path = line.split(" ", 4)
            found[path] = (digest, user, group, mode)
        return found


def put_in_place_command(files: list[HostFile], staging: str) -> str:
    """Shell: the uploads staging/0, staging/1, ... become `files`, in that order: each copied
    beside its path with its owner and mode (install creates it readable by root alone until
    then) and renamed over it; the staging folder goes. Missing parent folders are made, as
    files.put makes them (root's, 755)."""
    parents = sorted({os.path.dirname(f.path) for f in files})
    steps = [f"mkdir -p {' '.join(q(parent) for parent in parents)}"]
    steps += [f"install -m {q(f.mode)} -o {q(f.user)} -g {q(f.group)} {q(f'{staging}/{number}')} {q(f.path + '.new')} "
              f"&& mv -f {q(f.path + '.new')} {q(f.path)}" for number, f in enumerate(files)]
    return " && ".join([*steps, f"rm -rf {q(staging)}"])


def staging_dir() -> str:
    """The uploads' folder: a new one for each step, so that no two steps share one (two runs
    writing the same host-wide file at once, say)."""
    return f"{STAGING_ROOT}/{uuid.uuid4().hex}"


def make_staging_command(staging: str) -> str:
    """Shell: the uploads' folder made, root's alone; those a killed run left a day ago go."""
    return (f"install -d -m 700 {q(STAGING_ROOT)} && "
            f"find {q(STAGING_ROOT)} -mindepth 1 -maxdepth 1 -mmin +1440 -exec rm -rf {{}} + && "
            f"install -d -m 700 {q(staging)}")


def show_diff(f: HostFile, exists: bool) -> None:
    """With --diff, what writing `f` changes, as files.template shows it; a secret one is named only."""
    host.log(f"Will {'modify' if exists else 'create'} {format_text(f.path, bold=True)}", logger.info)
    if f.secret:
        logger.info("  (secret: its content is not shown)")
        return
    current = [line + "\n" for line in host.get_fact(FileContents, path=f.path) or []] if exists else []
    for line in generate_color_diff(current, f.content.decode().splitlines(keepends=True)):
        logger.info("  %s", line)
    logger.info("")


@operation()
def host_files(files: list[HostFile]):
    """`files` on the host, as the module says."""
    found = host.get_fact(FileStates, paths=[f.path for f in files])
    wrong = [f for f in files if found.get(f.path) != f.state]
    if not wrong:
        host.noop(f"{', '.join(f.path for f in files)} as they should be" if len(files) < 3
                  else f"{len(files)} files as they should be")
        return
    if state.config.DIFF:
        for f in wrong:
            show_diff(f, exists=f.path in found)
    staging = staging_dir()
    yield make_staging_command(staging)
    uploads = [(f, f"{staging}/{number}", f"/tmp/.deploy-upload-{uuid.uuid4().hex}") for number, f in enumerate(wrong)]
    if (host.current_op_global_arguments or {}).get("_sudo"):
        # Under sudo pyinfra uploads through a file of the login user's in /tmp, then copies it:
        # each made private before the upload, as a file may hold secrets.
        yield StringCommand("umask 077 && " + " && ".join(f": > {temp}" for _, _, temp in uploads), _sudo=False)
    for f, destination, temp in uploads:
        yield FileUploadCommand(BytesIO(f.content), destination, remote_temp_filename=temp)
    yield put_in_place_command(wrong, staging)


class ExistingPaths(FactBase):
    """Those of `paths` that exist (a dangling link counts), in the order given."""

    default = list

    def command(self, paths: list[str]) -> str:
        return each_path(paths, '{ [ -e "$path" ] || [ -L "$path" ]; } && echo "$path"')

    def process(self, output):
        return [line for line in output if line]


@operation()
def absent(paths: list[str]):
    """None of `paths` (files, links or whole folders) on the host: one look at all of them, one
    command for those that exist."""
    found = host.get_fact(ExistingPaths, paths=paths)
    if not found:
        host.noop(f"none of {', '.join(paths)}" if len(paths) < 3 else f"none of the {len(paths)} paths")
        return
    yield f"rm -rf {' '.join(q(path) for path in found)}"


@operation()
def install_tested_config(staged: str, dest: str, test_command: str):
    """Put the staged copy of a webserver config in place when the config there differs from it
    (a new version, or a hand edit), if the webserver's config test accepts it; a rejected one is
    taken back out and the staged copy dropped (so the next run tries again), and the run fails."""
    staged_sum = host.get_fact(Sha256File, path=staged)
    if staged_sum and staged_sum == host.get_fact(Sha256File, path=dest):
        host.noop(f"{dest} is as rendered")
        return
    yield install_config_command(staged, dest, test_command)


def install_config_command(staged: str, dest: str, test_command: str) -> str:
    """Shell: the staged config in place if `test_command` accepts it; else the one before back
    (or none, if there was none), the staged copy dropped, and a failure naming the file."""
    rejected = f"the webserver rejected the new {dest}: the previous one stays"
    return (f"if [ -f {q(dest)} ]; then cp -a {q(dest)} {q(dest)}.previous; fi && "
            f"install -m 644 {q(staged)} {q(dest)} && "
            f"if ! {test_command}; then "
            f"if [ -f {q(dest)}.previous ]; then mv -f {q(dest)}.previous {q(dest)}; else rm -f {q(dest)}; fi; "
            f"rm -f {q(staged)}; echo {q(rejected)} >&2; exit 1; fi; rm -f {q(dest)}.previous")


@operation()
def secret_file(path: str, content: str, user: str, group: str, mode: str):
    """Install a file holding secrets without its content ever appearing in pyinfra's output (only
    hashes are compared: files.template/put would print it with --diff), the file readable by
    root alone until it has its final owner and mode (host_files)."""
    yield from host_files._inner(files=[HostFile(path, content.encode(), mode, user, group, secret=True)])
