"""A release's build on a host: its source unpacked into releases/<id>, and the virtualenv its
dependencies make (shared by releases with the same dependencies)."""

from __future__ import annotations

import json

from pyinfra import host
from pyinfra.api import FileUploadCommand, operation
from pyinfra.facts.files import Directory, File, Link

from ..core.shell import q
from .switch import link_command


@operation()
def upload_and_unpack(src: str, archive: str, release_dir: str, venv: str, metadata: dict, group: str,
                      readers: list[str]):
    """Upload a source archive and unpack it into a new release folder, complete or not at all:
    it is built under a temporary name (REVISION, .release.json and the link to its virtualenv
    written) and renamed into place. The folder is root's, and only `group` (the app's) and the
    `readers` groups (a webserver of another group, for the static files) may enter it: a file
    that should not have shipped, or bytecode compiled from it, is not for every user. A release
    made again under its id (it failed) keeps its folder, its link to its virtualenv set anew: its
    dependencies may have changed since."""
    if host.get_fact(Directory, path=release_dir):
        if host.get_fact(Link, path=f"{release_dir}/.venv") == venv:
            host.noop(f"{release_dir} exists")
        else:
            yield link_command(f"{release_dir}/.venv", q(venv))
        return
    yield FileUploadCommand(src, archive)
    building = f"{release_dir}.partial"
    yield (f"rm -rf {q(building)} && mkdir -p {q(building)} && "
           f"tar -xzf {q(archive)} -C {q(building)} --no-same-owner && "
           f"printf '%s\\n' {q(metadata['id'])} > {q(building)}/REVISION && "
           f"printf '%s\\n' {q(json.dumps(metadata, sort_keys=True))} > {q(building)}/.release.json && "
           f"ln -s {q(venv)} {q(building)}/.venv && "
           f"chmod -R u=rwX,go=rX {q(building)} && chgrp {q(group)} {q(building)} && chmod 750 {q(building)} && "
           + "".join(f"setfacl -m {q(f'g:{reader}:rx')} {q(building)} && " for reader in readers)
           + f"chmod 640 {q(archive)} && mv -T {q(building)} {q(release_dir)}")


@operation()
def build_virtualenv(path: str, python: str, uv: str, install: list[str], env: dict[str, str] | None = None,
                     python_install_dir: str | None = None):
    """Build a virtualenv for one dependency set, once (`install`: the commands that fill it). A
    folder without the `.complete` marker is a leftover of a build that died: it is thrown away
    and built again. When the install fails for want of a newer Python, one line says so first."""
    if host.get_fact(File, path=f"{path}/.complete"):
        host.noop(f"virtualenv {path} is ready")
        return
    yield from virtualenv_commands(path, python, uv, install, env, python_install_dir)


def virtualenv_commands(path: str, python: str, uv: str, install: list[str],
                        env: dict[str, str] | None = None, python_install_dir: str | None = None) -> list[str]:
    """Shell: a new virtualenv at `path` on `python` (an interpreter's path; with
    `python_install_dir`, a version that uv finds on the host or installs there), filled by the
    `install` commands (each may be a small shell program), with `env` set for them; marked
    complete only when all of them succeeded. A failing one shows its output, after a line naming
    the cause when it wants another Python."""
    prefix = " ".join(f"{name}={q(value)}" for name, value in (env or {}).items())
    prefix = f"export {prefix}; " if prefix else ""
    log = f"{path}/.install.log"
    create = f"{uv} venv --quiet --python {q(python)} {q(path)}"
    if python_install_dir:
        # The host's own interpreter first (Debian keeps it patched), else one uv installed before,
        # else uv downloads one into the project's folder.
        unavailable = (f"python_interpreter: Python {python} is not on this host, and uv could not install it "
                       "(its error is above)")
        create = (f"{{ {prefix}UV_PYTHON_INSTALL_DIR={q(python_install_dir)} {uv} venv --quiet "
                  f"--python-preference system --no-project --python {q(python)} {q(path)} "
                  f"|| {{ echo {q(unavailable)} >&2; exit 1; }}; }}")
    commands = [f"rm -rf {q(path)} && {create}"]
    for command in install:
        commands.append(
            f"if ! ({prefix}{command}) > {q(log)} 2>&1; then "
            f"if grep -qiE 'current Python version|requires-python|Requires-Python' {q(log)}; then "
            f"echo \"the dependencies need another Python than {python} ($({q(path)}/bin/python -V 2>&1)): set "
            f"python_interpreter, or use a newer Debian release\" >&2; fi; cat {q(log)} >&2; exit 1; fi")
    commands.append(f"rm -f {q(log)} && touch {q(path)}/.complete")
    return commands
