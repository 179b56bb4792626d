"""The release source, packed on the control machine: one archive and its digests per run."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache

from .settings import Settings

# Never shipped: VCS data, caches, local virtualenvs, local databases and collected static files.
EXCLUDED_DIRS = {".git", ".hg", ".svn", "__pycache__", ".venv", "venv", "node_modules", ".mypy_cache",
                 ".pytest_cache", ".tox", "staticfiles"}
EXCLUDED_SUFFIXES = (".pyc", ".pyo", ".sqlite3")

# One release id for every host of a run: UTC time of the run's start.
RUN_RELEASE_ID = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")


@dataclass(frozen=True)
class PackedSource:
    archive: str        # local path of the .tar.gz
    digest: str         # sha256 of the file names, modes and contents
    requirements: bytes | None  # requirements.txt of the app, when it has one


def _files(root: str):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in EXCLUDED_DIRS)
        for filename in sorted(filenames):
            if not filename.endswith(EXCLUDED_SUFFIXES):
                path = os.path.join(dirpath, filename)
                yield path, os.path.relpath(path, root)


@lru_cache(maxsize=None)
def pack_directory(source_dir: str) -> PackedSource:
    """Pack a local directory into a reproducible tar.gz (sorted, no owners, fixed times)."""
    source_dir = os.path.abspath(source_dir)
    digest = hashlib.sha256()
    out_dir = tempfile.mkdtemp(prefix="django-deploy-")
    archive = os.path.join(out_dir, "source.tar.gz")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, name in _files(source_dir):
            with open(path, "rb") as handle:
                content = handle.read()
            executable = os.access(path, os.X_OK)
            digest.update(f"{name}\0{int(executable)}\0{len(content)}\0".encode() + content)
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(content), 0o755 if executable else 0o644, 0
            tar.addfile(info, io.BytesIO(content))
    with open(archive, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
        gz.write(buffer.getvalue())
    requirements_path = os.path.join(source_dir, "requirements.txt")
    requirements = open(requirements_path, "rb").read() if os.path.isfile(requirements_path) else None
    return PackedSource(archive=archive, digest=digest.hexdigest(), requirements=requirements)


def dependency_hash(settings: Settings, source: PackedSource) -> str:
    """What decides the virtualenv: interpreter, django_dependencies and (when used) requirements.txt.
    Releases with the same hash share one virtualenv, so a code-only release installs nothing."""
    digest = hashlib.sha256(settings.python_interpreter.encode())
    digest.update("\n".join(settings.django_dependencies).encode())
    if settings.django_pip_install_requirements and source.requirements:
        digest.update(b"\0requirements\0" + source.requirements)
    return digest.hexdigest()[:16]
