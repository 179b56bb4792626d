"""The release source, prepared on the control machine: one archive and its digests per run.

Three kinds, one of them set per environment:
    django_source_dir       a local directory
    django_release_archive  a .tar.gz / .tar.bz2 / .zip built by CI (or a folder of them, the file
                            named by django_revision_file_pattern with ${VAR} from the environment)
    django_git_repo         a git repository at django_git_ref, exported with `git archive`
Whatever the kind, the tree is packed again into one reproducible tar.gz: the same content gives
the same digest, which is how a release of an unchanged source is recognised and skipped.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import subprocess
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache

from .settings import DeploySettingsError, Settings

# Never shipped: VCS data, caches, local virtualenvs, local databases and collected static files.
EXCLUDED_DIRS = {".git", ".hg", ".svn", "__pycache__", ".venv", "venv", "node_modules", ".mypy_cache",
                 ".pytest_cache", ".tox", "staticfiles"}
EXCLUDED_SUFFIXES = (".pyc", ".pyo", ".sqlite3")

# One release id for every host of a run: UTC time of the run's start.
RUN_RELEASE_ID = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")


@dataclass(frozen=True)
class PackedSource:
    archive: str        # local path of the .tar.gz to upload
    digest: str         # sha256 of the file names, modes and contents
    revision: str       # what the source is: git commit, archive name, or directory digest
    requirements: bytes | None  # requirements.txt at the top of the tree, when there is one


def _files(root: str):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in EXCLUDED_DIRS)
        for filename in sorted(filenames):
            if not filename.endswith(EXCLUDED_SUFFIXES):
                path = os.path.join(dirpath, filename)
                if os.path.isfile(path):
                    yield path, os.path.relpath(path, root)


def pack_directory(source_dir: str, revision: str | None = None) -> PackedSource:
    """Pack a local directory into a reproducible tar.gz (sorted, no owners, fixed times)."""
    source_dir = os.path.abspath(source_dir)
    digest = hashlib.sha256()
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w") as tar:
        for path, name in _files(source_dir):
            with open(path, "rb") as handle:
                content = handle.read()
            executable = os.access(path, os.X_OK)
            digest.update(f"{name}\0{int(executable)}\0{len(content)}\0".encode() + content)
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(content), 0o755 if executable else 0o644, 0
            tar.addfile(info, io.BytesIO(content))
    archive = os.path.join(tempfile.mkdtemp(prefix="django-deploy-"), "source.tar.gz")
    with open(archive, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as packed:
        packed.write(tar_bytes.getvalue())
    requirements_path = os.path.join(source_dir, "requirements.txt")
    requirements = None
    if os.path.isfile(requirements_path):
        with open(requirements_path, "rb") as handle:
            requirements = handle.read()
    return PackedSource(archive, digest.hexdigest(), revision or f"dir:{digest.hexdigest()[:12]}", requirements)


def _single_top_folder(root: str) -> str:
    """Archives made by CI or forges often hold one folder (myapp-1.2/): release its content."""
    entries = os.listdir(root)
    if len(entries) == 1 and os.path.isdir(os.path.join(root, entries[0])):
        return os.path.join(root, entries[0])
    return root


def _expand_environment(pattern: str, variable: str) -> str:
    missing = [name for name in re.findall(r"\$\{(\w+)\}", pattern) if name not in os.environ]
    if missing:
        raise DeploySettingsError(f"{variable}: environment variable {', '.join(missing)} is not set")
    return re.sub(r"\$\{(\w+)\}", lambda match: os.environ[match.group(1)], pattern)


def _archive_path(settings: Settings) -> str:
    path = _expand_environment(settings.django_release_archive, "django_release_archive")
    if os.path.isdir(path):
        if not settings.django_revision_file_pattern:
            raise DeploySettingsError(
                "django_revision_file_pattern: needed when django_release_archive is a folder")
        path = os.path.join(path, _expand_environment(settings.django_revision_file_pattern,
                                                      "django_revision_file_pattern"))
    if not os.path.isfile(path):
        raise DeploySettingsError(f"django_release_archive: no such file on this machine: {path}")
    return path


@lru_cache(maxsize=None)
def _unpack_archive(path: str) -> PackedSource:
    target = tempfile.mkdtemp(prefix="django-deploy-archive-")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                if member.startswith("/") or ".." in member.split("/"):
                    raise DeploySettingsError(f"django_release_archive: unsafe path in {path}: {member}")
            archive.extractall(target)
    elif tarfile.is_tarfile(path):
        with tarfile.open(path) as archive:
            archive.extractall(target, filter="data")
    else:
        raise DeploySettingsError(f"django_release_archive: {path} is not a .tar.gz, .tar.bz2 or .zip archive")
    return pack_directory(_single_top_folder(target), revision=f"archive:{os.path.basename(path)}")


@lru_cache(maxsize=None)
def _export_git(repo: str, ref: str) -> PackedSource:
    def git(*args: str, cwd: str | None = None) -> str:
        return subprocess.run(["git", *args], cwd=cwd, check=True, text=True, capture_output=True).stdout.strip()

    if not os.path.isdir(repo):  # a URL: fetch that one ref into a throwaway bare repository
        clone = tempfile.mkdtemp(prefix="django-deploy-git-")
        try:
            git("clone", "--quiet", "--bare", "--filter=blob:none", repo, clone)
        except subprocess.CalledProcessError as error:
            raise DeploySettingsError(f"django_git_repo: cannot clone {repo}: {error.stderr.strip()}") from None
        repo = clone
    try:
        commit = git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", cwd=repo)
    except subprocess.CalledProcessError:
        raise DeploySettingsError(f"django_git_ref: {ref!r} is not a commit, branch or tag of {repo}") from None
    target = tempfile.mkdtemp(prefix="django-deploy-export-")
    tar_data = subprocess.run(["git", "archive", "--format=tar", commit], cwd=repo, check=True,
                              capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar_data)) as archive:
        archive.extractall(target, filter="data")
    return pack_directory(target, revision=f"git:{commit}")


_pack_directory_once = lru_cache(maxsize=None)(pack_directory)


def release_source(settings: Settings) -> PackedSource:
    """The packed source of this run's release (packed once, whatever the number of hosts)."""
    if settings.django_source_dir:
        return _pack_directory_once(os.path.abspath(settings.django_source_dir))
    if settings.django_release_archive:
        return _unpack_archive(os.path.abspath(_archive_path(settings)))
    if settings.django_git_repo:
        return _export_git(settings.django_git_repo, settings.django_git_ref)
    raise DeploySettingsError(
        "django_source_dir: a release needs a source: set django_source_dir, django_release_archive "
        "or django_git_repo")


def dependency_hash(settings: Settings, source: PackedSource) -> str:
    """What decides the virtualenv: interpreter, django_dependencies and (when used) requirements.txt.
    Releases with the same hash share one virtualenv, so a code-only release installs nothing."""
    digest = hashlib.sha256(settings.python_interpreter.encode())
    digest.update("\n".join(settings.django_dependencies).encode())
    if settings.django_pip_install_requirements and source.requirements:
        digest.update(b"\0requirements\0" + source.requirements)
    return digest.hexdigest()[:16]
