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
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import NamedTuple

from ..settings import DeploySettingsError, Settings
from ..settings.environment import mask_credentials

# Never shipped, whatever git or .deployignore say: a release carries code, not this machine's
# secrets (.env files, private keys) nor its local state (SQLite databases and their journals), and
# not VCS data, caches, virtualenvs or collected static files, which the server makes itself.
# Same syntax as .deployignore; the `!` lines (allowed here only) keep the .env templates, which
# document the variables and hold no secrets.
NEVER_SHIPPED = (
    ".git/", ".hg/", ".svn/", "__pycache__/", ".venv/", "venv/", "node_modules/", ".mypy_cache/",
    ".pytest_cache/", ".tox/", "staticfiles/", "*.pyc", "*.pyo",
    ".env", ".env.*", "!.env.example", "!.env.sample", "!.env.template",
    "*.sqlite3", "*.sqlite", "*-journal", "*-wal", "*-shm",
    "*.pem", "*.key", "id_rsa*", "id_ed25519*", "id_ecdsa*",
    "/.deployignore",  # says what not to ship; the server has no use for it
)

# One release id for every host of a run: UTC time of the run's start.
RUN_RELEASE_ID = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")


@dataclass(frozen=True)
class PackedSource:
    archive: str        # local path of the .tar.gz to upload
    digest: str         # sha256 of the file names, modes and contents
    revision: str       # what the source is: git commit, archive name, or directory digest
    root: str           # the local folder that was packed
    names: frozenset[str]  # the paths, relative to root, of the files it shipped

    def read(self, name: str) -> bytes | None:
        """A shipped file's content (pyproject.toml, uv.lock, ...), or None when it did not ship."""
        if name not in self.names:
            return None
        with open(os.path.join(self.root, name), "rb") as handle:
            return handle.read()


class _Rule(NamedTuple):
    pattern: str
    anchored: bool   # matched against the path from the top, not against the name alone
    dir_only: bool
    negated: bool

    def matches(self, name: str, is_dir: bool) -> bool:
        if self.dir_only and not is_dir:
            return False
        if not self.anchored:
            return fnmatchcase(name.rsplit("/", 1)[-1], self.pattern)
        # fnmatch's * also crosses "/", so "**/x" needs its own case only for x at the top.
        return fnmatchcase(name, self.pattern) or (
            self.pattern.startswith("**/") and fnmatchcase(name, self.pattern[3:]))


def _rules(lines) -> list[_Rule]:
    """A subset of gitignore syntax, matched with fnmatch:
    blank lines and # comments are skipped; a pattern with no "/" matches a file or folder name at
    any depth; a leading "/" (or a "/" inside the pattern) matches the path from the top instead;
    a trailing "/" matches folders only; a matching folder leaves out everything under it; "*" and
    "**" also match across "/". Unlike git: no "\\" escapes, and "*" crosses folders."""
    rules = []
    for line in lines:
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negated = pattern.startswith("!")
        dir_only = pattern.endswith("/")
        pattern = pattern.lstrip("!").rstrip("/")
        rules.append(_Rule(pattern.lstrip("/"), "/" in pattern, dir_only, negated))
    return rules


def _deployignore_rules(root: str) -> list[_Rule]:
    path = os.path.join(root, ".deployignore")
    if not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as handle:
        rules = _rules(handle)
    if any(rule.negated for rule in rules):
        # The same file must mean the same thing in a git work tree, a plain folder and an
        # exported git ref: a list of what to leave out, nothing brought back.
        raise DeploySettingsError(f"django_source_dir: {path}: negation (!pattern) is not supported "
                                  "in .deployignore; list only what to leave out")
    return rules


NEVER_SHIPPED_RULES = _rules(NEVER_SHIPPED)


def _excluded(name: str, is_dir: bool, rules: list[_Rule]) -> bool:
    """gitignore's order: the last matching rule decides."""
    excluded = False
    for rule in rules:
        if rule.matches(name, is_dir):
            excluded = not rule.negated
    return excluded


def _git_listed(root: str) -> set[str] | None:
    """What git tracks or does not ignore under root, relative to it; None outside a git work tree."""
    try:
        top = subprocess.run(["git", "-C", root, "rev-parse", "--show-toplevel"], check=False,
                             capture_output=True, text=True)
    except FileNotFoundError:  # no git on this machine: a plain folder
        return None
    if top.returncode != 0 or not top.stdout.strip():
        return None
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=root, check=False, capture_output=True)
    if listed.returncode != 0:
        raise DeploySettingsError(f"django_source_dir: git ls-files failed in {root}: "
                                  f"{listed.stderr.decode(errors='replace').strip()}")
    return {os.fsdecode(name) for name in listed.stdout.split(b"\0") if name}


def _files(root: str):
    """The files that ship, as (path, name relative to root), in a stable order (the digest depends
    on it). In a git work tree, only what git lists; then .deployignore (applied here rather than
    handed to git: git applies --exclude-from to untracked files only, and anchors it to the top of
    the repository, not to root); and never NEVER_SHIPPED."""
    rules = NEVER_SHIPPED_RULES + _deployignore_rules(root)
    listed = _git_listed(root)
    # Folders holding no listed file are not walked (a git-ignored build/ may be large).
    listed_dirs = {name[:i] for name in listed or () for i, char in enumerate(name) if char == "/"}
    for dirpath, dirnames, filenames in os.walk(root):
        top = os.path.relpath(dirpath, root)
        prefix = "" if top == "." else top.replace(os.sep, "/") + "/"
        dirnames[:] = sorted(d for d in dirnames if not _excluded(prefix + d, True, rules)
                             and (listed is None or prefix + d in listed_dirs))
        for filename in sorted(filenames):
            name = prefix + filename
            path = os.path.join(dirpath, filename)
            if (listed is None or name in listed) and not _excluded(name, False, rules) and os.path.isfile(path):
                yield path, name


def pack_directory(source_dir: str, revision: str | None = None) -> PackedSource:
    """Pack a local directory into a reproducible tar.gz (sorted, no owners, fixed times)."""
    source_dir = os.path.abspath(source_dir)
    digest = hashlib.sha256()
    tar_bytes = io.BytesIO()
    names = []
    with tarfile.open(fileobj=tar_bytes, mode="w") as tar:
        for path, name in _files(source_dir):
            names.append(name)
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
    return PackedSource(archive, digest.hexdigest(), revision or f"dir:{digest.hexdigest()[:12]}", source_dir,
                        frozenset(names))


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


def _git_failure(what: str, error: subprocess.CalledProcessError) -> str:
    """What git said when it failed, credentials masked: the URL of a repository may carry a token,
    and git repeats it in its errors."""
    said = error.stderr.decode(errors="replace") if isinstance(error.stderr, bytes) else error.stderr or ""
    return mask_credentials(f"{what}: {said.strip()}")


@lru_cache(maxsize=None)
def _export_git(repo: str, ref: str) -> PackedSource:
    def git(*args: str, cwd: str | None = None) -> str:
        return subprocess.run(["git", *args], cwd=cwd, check=True, text=True, capture_output=True).stdout.strip()

    shown = mask_credentials(repo)
    if not os.path.isdir(repo):  # a URL: fetch that one ref into a throwaway bare repository
        clone = tempfile.mkdtemp(prefix="django-deploy-git-")
        try:
            git("clone", "--quiet", "--bare", "--filter=blob:none", repo, clone)
        except subprocess.CalledProcessError as error:
            raise DeploySettingsError(_git_failure(f"django_git_repo: cannot clone {repo}", error)) from None
        repo = clone
    try:
        commit = git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", cwd=repo)
    except subprocess.CalledProcessError:
        raise DeploySettingsError(f"django_git_ref: {ref!r} is not a commit, branch or tag of {shown}") from None
    target = tempfile.mkdtemp(prefix="django-deploy-export-")
    try:
        # From a clone, git fetches the files (left out by --filter) from the repository now.
        tar_data = subprocess.run(["git", "archive", "--format=tar", commit], cwd=repo, check=True,
                                  capture_output=True).stdout
    except subprocess.CalledProcessError as error:
        raise DeploySettingsError(_git_failure(f"django_git_repo: cannot export {commit} of {shown}", error)) from None
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

