"""The release's Python dependencies: the file of the source tree that declares them, the
virtualenv they key, the Python they ask for, and the commands that install them.

`django_dependency_file` = "auto" looks at the top of the source tree, in this order:
    uv.lock (+ pyproject.toml)  installed as locked with uv (`uv sync --locked`), no dev groups
    poetry.lock (+ pyproject.toml)  exported by Poetry itself (`poetry export --only main`, run
                                on the host by uv, pinned), the pins and hashes installed by uv
    pyproject.toml              its [project] dependencies, resolved at release time
    requirements.txt            as pip reads it; with `--hash=` lines every requirement must match
A path names the file instead ("requirements/production.txt", "backend/uv.lock"); "none" installs
only `django_dependencies`, which are installed on top of whichever file is used.

The virtualenv is keyed by what decides its content (interpreter, the lock or requirements files,
django_dependencies): releases that share a key share one virtualenv, so a release with an
unchanged lock installs nothing.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import tomllib
from dataclasses import dataclass
from typing import Optional

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from pyinfra.api import FactBase

from ..core.shell import q
from ..settings import DeploySettingsError, Settings
from ..settings.app_server_layout import GUNICORN
from .source import PackedSource

AUTO_ORDER = ("uv.lock", "poetry.lock", "pyproject.toml", "requirements.txt")
# Poetry and its export plugin, run by `uv tool run` on the host (cached by uv) only when a
# virtualenv is built from a poetry.lock: they read the lock, they install nothing.
POETRY = "poetry==2.5.1"
POETRY_EXPORT = "poetry-plugin-export==1.10.1"
# Where the export goes: beside what it describes, in the virtualenv built from it.
POETRY_EXPORTED = "requirements-from-poetry.lock.txt"


@dataclass(frozen=True)
class DependencyPlan:
    kind: str                     # "uv.lock", "poetry.lock", "pyproject.toml", "requirements" or "none"
    file: Optional[str]           # path inside the release of the file installed from
    key_material: bytes           # what, besides interpreter and extras, decides the virtualenv
    requires_python: Optional[str]  # the Python versions the project accepts (a specifier set)
    python_source: Optional[str]  # where requires_python was read
    hashes: bool = False          # a requirements file with --hash lines


def _pyproject(source: PackedSource, path: str) -> dict:
    text = source.read(path)
    if text is None:
        return {}
    try:
        return tomllib.loads(text.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise DeploySettingsError(f"django_dependency_file: {path} is not valid TOML: {error}") from None


def _requires_python(source: PackedSource, folder: str) -> tuple[Optional[str], Optional[str]]:
    """The project's requires-python (pyproject.toml) or the version in .python-version (uv, pyenv)."""
    pyproject_path = posixpath.join(folder, "pyproject.toml")
    pyproject = _pyproject(source, pyproject_path)
    specifier = pyproject.get("project", {}).get("requires-python")
    if specifier:
        return specifier, f"{pyproject_path} requires-python"
    poetry_python = pyproject.get("tool", {}).get("poetry", {}).get("dependencies", {}).get("python")
    if isinstance(poetry_python, str) and poetry_specifier(poetry_python):
        return poetry_specifier(poetry_python), f"{pyproject_path} [tool.poetry.dependencies] python"
    pinned_path = posixpath.join(folder, ".python-version")
    version = (source.read(pinned_path) or b"").decode(errors="replace").strip()
    if re.fullmatch(r"\d+\.\d+", version):
        return f"=={version}.*", pinned_path
    if re.fullmatch(r"\d+\.\d+\.\d+", version):
        return f"=={version}", pinned_path
    return None, None


def poetry_specifier(constraint: str) -> Optional[str]:
    """A Poetry version constraint as a PEP 440 specifier set: "^3.11" is ">=3.11,<4", "~3.11"
    is ">=3.11,<3.12", one already in PEP 440 stays as it is; None for anything else."""
    parts = []
    for clause in constraint.split(","):
        clause = clause.strip()
        caret = re.fullmatch(r"\^(\d+)(\.\d+){0,2}", clause)
        tilde = re.fullmatch(r"~(\d+)\.(\d+)(\.\d+)?", clause)
        if caret and int(caret.group(1)) > 0:
            parts.append(f">={clause[1:]},<{int(caret.group(1)) + 1}")
        elif tilde:
            parts.append(f">={clause[1:]},<{tilde.group(1)}.{int(tilde.group(2)) + 1}")
        else:
            parts.append(clause)
    try:
        return str(SpecifierSet(",".join(parts))) or None
    except InvalidSpecifier:
        return None


def _requirements_material(source: PackedSource, path: str) -> bytes:
    """The requirements file and every requirements file beside it (they `-r` one another)."""
    folder = posixpath.dirname(path)
    siblings = sorted(name for name in source.names
                      if posixpath.dirname(name) == folder and name.endswith(".txt") and "requirements" in name)
    return b"".join(name.encode() + b"\0" + (source.read(name) or b"") + b"\0" for name in sorted({path, *siblings}))


def _chosen_file(settings: Settings, source: PackedSource) -> Optional[str]:
    choice = settings.django_dependency_file
    if choice == "none":
        return None
    if choice != "auto":
        if choice not in source.names:
            raise DeploySettingsError(f"django_dependency_file: {choice} is not in the release source")
        return choice
    if settings.django_pip_install_requirements:
        # The seed role's switch: the requirements.txt at the top of the tree.
        if "requirements.txt" not in source.names:
            raise DeploySettingsError("django_pip_install_requirements: the source has no requirements.txt")
        return "requirements.txt"
    for name in AUTO_ORDER:
        if name == "pyproject.toml" and not _pyproject(source, name).get("project", {}).get("dependencies"):
            continue
        if name in source.names:
            return name
    return None


def plan_dependencies(settings: Settings, source: PackedSource) -> DependencyPlan:
    """Which file the release installs from, and the Python it asks for."""
    path = _chosen_file(settings, source)
    folder = posixpath.dirname(path) if path else ""
    requires_python, python_source = _requires_python(source, folder)
    if path is None:
        return DependencyPlan("none", None, b"", requires_python, python_source)
    name = posixpath.basename(path)
    if name == "uv.lock":
        if posixpath.join(folder, "pyproject.toml") not in source.names:
            raise DeploySettingsError(f"django_dependency_file: {path} has no pyproject.toml beside it")
        return DependencyPlan("uv.lock", path, source.read(path) or b"", requires_python, python_source)
    if name == "poetry.lock":
        pyproject = posixpath.join(folder, "pyproject.toml")
        if pyproject not in source.names:
            raise DeploySettingsError(f"django_dependency_file: {path} has no pyproject.toml beside it")
        # The groups (what "main" holds) are in pyproject.toml: both decide the virtualenv.
        material = (source.read(pyproject) or b"") + b"\0" + (source.read(path) or b"")
        return DependencyPlan("poetry.lock", path, material, requires_python, python_source)
    if name == "pyproject.toml":
        return DependencyPlan("pyproject.toml", path, source.read(path) or b"", requires_python, python_source)
    if not name.endswith(".txt"):
        raise DeploySettingsError(f"django_dependency_file: {path} is not a uv.lock, poetry.lock, pyproject.toml "
                                  "or requirements .txt file")
    material = _requirements_material(source, path)
    return DependencyPlan("requirements", path, material, requires_python, python_source,
                          hashes=b"--hash=" in (source.read(path) or b""))


def dependency_hash(settings: Settings, plan: DependencyPlan) -> str:
    """The virtualenv's key: interpreter, the installed file(s), django_dependencies, and gunicorn
    when it serves the app (installed beside them)."""
    digest = hashlib.sha256(settings.python_interpreter.encode())
    digest.update("\n".join(settings.django_dependencies).encode())
    if settings.runs_gunicorn:
        digest.update(f"\0{GUNICORN}".encode())
    digest.update(f"\0{plan.kind}\0{plan.file}\0".encode() + plan.key_material)
    return digest.hexdigest()[:16]


def python_mismatch(settings: Settings, plan: DependencyPlan, host_version: Optional[str]) -> Optional[str]:
    """Why the host's interpreter cannot run the project, or None when it can (or cannot be told)."""
    if not plan.requires_python or not host_version:
        return None
    try:
        accepted = SpecifierSet(plan.requires_python)
    except InvalidSpecifier:
        return f"django_dependency_file: {plan.python_source} is not a version specifier: {plan.requires_python!r}"
    if accepted.contains(host_version, prereleases=True):
        return None
    return (f"python_interpreter: the project asks for Python {plan.requires_python} ({plan.python_source}), but "
            f"{settings.python_interpreter} on this host is Python {host_version}. Set python_interpreter to a "
            "Python that fits (installed with application_additional_packages), or use a newer Debian "
            "release; nothing was changed")


def install_commands(plan: DependencyPlan, release_dir: str, venv: str, uv: str, extras: list[str]) -> list[str]:
    """Shell commands that install the dependencies into `venv` (created already)."""
    python = f"{q(venv)}/bin/python"
    # No downloaded interpreters: the release runs on the host's Python, which was checked.
    common = "UV_PYTHON_DOWNLOADS=never"
    commands = []
    if plan.kind == "uv.lock":
        project = f"{release_dir}/{posixpath.dirname(plan.file)}".rstrip("/")
        # The project itself is not installed: the release folder holds its code, and the
        # virtualenv is shared by releases whose lock is the same.
        commands.append(f"{common} UV_PROJECT_ENVIRONMENT={q(venv)} {uv} sync --quiet --locked --no-dev "
                        f"--no-install-project --compile-bytecode --python {python} --project {q(project)}")
    elif plan.kind == "poetry.lock":
        project = f"{release_dir}/{posixpath.dirname(plan.file)}".rstrip("/")
        exported = f"{q(venv)}/{POETRY_EXPORTED}"
        # Poetry checks that the lock matches pyproject.toml (as `uv sync --locked` does) and
        # writes the main group's pins with their hashes, which uv verifies as it installs them.
        commands.append(f"{common} {uv} tool run --quiet --from {POETRY} --with {POETRY_EXPORT} poetry export "
                        f"--no-interaction --no-ansi --only main --format requirements.txt --directory {q(project)} "
                        f"--output {exported} && "
                        f"{common} {uv} pip install --quiet --compile-bytecode --python {python} -r {exported}")
    elif plan.kind in ("pyproject.toml", "requirements"):
        hashes = " --require-hashes" if plan.hashes else ""
        commands.append(f"{common} {uv} pip install --quiet --compile-bytecode --python {python}{hashes} "
                        f"-r {q(release_dir + '/' + plan.file)}")
    if extras:
        commands.append(f"{common} {uv} pip install --quiet --compile-bytecode --python {python} "
                        + " ".join(q(extra) for extra in extras))
    return commands


class PythonVersion(FactBase):
    """The version (e.g. "3.11.2") of an interpreter on the host, or None when it is missing."""

    def command(self, interpreter: str) -> str:
        return (f"{q(interpreter)} -c 'import sys; print(\"%d.%d.%d\" % sys.version_info[:3])' "
                "2>/dev/null || true")

    def process(self, output):
        text = "\n".join(output).strip()
        return text or None


class UvPythonVersion(PythonVersion):
    """The version of the interpreter uv picks on the host for a requested version (python_interpreter
    "3.12"): the host's own first, then one uv installed before; None when there is none yet."""

    def command(self, uv: str, version: str, install_dir: str) -> str:
        return (f"python=$(UV_PYTHON_INSTALL_DIR={q(install_dir)} {q(uv)} python find --python-preference system "
                f"--no-project {q(version)} 2>/dev/null) && "
                "\"$python\" -c 'import sys; print(\"%d.%d.%d\" % sys.version_info[:3])' 2>/dev/null || true")
