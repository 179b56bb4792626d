"""Which files a packed source ships: git's view in a work tree, .deployignore, and never local secrets."""

import subprocess
import tarfile

import pytest

from deploys.djangoapp.release import source
from deploys.djangoapp.settings import DeploySettingsError
from deploys.djangoapp.release.source import _export_git, pack_directory
from tests.unit.sites import settings


def write(root, files: dict[str, str]):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def git(root, *args):
    identity = ["-c", "user.email=t@t", "-c", "user.name=t", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", *identity, *args], cwd=root, check=True, capture_output=True)


def git_repo(root, files: dict[str, str]):
    """A git work tree with files committed (git add -f: even the ones .gitignore names)."""
    root.mkdir(exist_ok=True)
    git(root, "init", "-q")
    write(root, files)
    git(root, "add", "-f", *files)
    git(root, "commit", "-q", "-m", "initial")
    return root


def shipped(root) -> set[str]:
    with tarfile.open(pack_directory(str(root)).archive) as archive:
        return set(archive.getnames())


CODE = {"manage.py": "print()\n", "app/views.py": "x = 1\n"}


def test_a_git_work_tree_ships_what_git_tracks_or_does_not_ignore(tmp_path):
    repo = git_repo(tmp_path / "repo", {**CODE, ".gitignore": "local_settings.py\nbuild/\n"})
    write(repo, {"app/local_settings.py": "DEBUG = True\n", "build/lib/app.py": "", "app/new.py": "y = 2\n"})

    assert shipped(repo) == {"manage.py", "app/views.py", ".gitignore", "app/new.py"}


def test_a_subfolder_of_a_git_work_tree_ships_its_files_relative_to_itself(tmp_path):
    repo = git_repo(tmp_path / "repo", {"site/manage.py": "", "other/x.py": "", ".gitignore": "*.log\n"})
    write(repo, {"site/debug.log": "", "site/new.py": ""})

    assert shipped(repo / "site") == {"manage.py", "new.py"}


def test_files_deleted_from_disk_do_not_ship(tmp_path):
    repo = git_repo(tmp_path / "repo", CODE)
    (repo / "app/views.py").unlink()

    assert shipped(repo) == {"manage.py"}


NEVER = {".env": "SECRET_KEY=x\n", ".env.production": "SECRET_KEY=y\n", "db.sqlite3": "",
         "db.sqlite3-journal": "", "data/cache.sqlite": "", "server.key": "", "certs/site.pem": "",
         "deploy/id_ed25519": "", "app/__pycache__/views.cpython-312.pyc": "", "app/old.pyc": "",
         "node_modules/x/index.js": "", "staticfiles/app.css": ""}
TEMPLATES = {".env.example": "SECRET_KEY=\n", ".env.sample": "", ".env.template": ""}


def test_local_secrets_and_state_never_ship_even_when_git_tracks_them(tmp_path):
    repo = git_repo(tmp_path / "repo", {**CODE, **NEVER, **TEMPLATES})

    assert shipped(repo) == set(CODE) | set(TEMPLATES)


def test_local_secrets_and_state_never_ship_from_a_plain_folder(tmp_path):
    write(tmp_path, {**CODE, **NEVER, **TEMPLATES})

    assert shipped(tmp_path) == set(CODE) | set(TEMPLATES)


DEPLOYIGNORE = {".deployignore": "# not for servers\n\ndocs/\n*.md\n/tests\n",
                "docs/index.html": "", "README.md": "", "app/NOTES.md": "", "tests/test_views.py": "",
                "app/tests/test_x.py": ""}


def test_deployignore_leaves_out_more_in_a_git_work_tree(tmp_path):
    repo = git_repo(tmp_path / "repo", {**CODE, **DEPLOYIGNORE})

    assert shipped(repo) == set(CODE) | {"app/tests/test_x.py"}


def test_deployignore_leaves_out_more_in_a_plain_folder(tmp_path):
    write(tmp_path, {**CODE, **DEPLOYIGNORE})

    assert shipped(tmp_path) == set(CODE) | {"app/tests/test_x.py"}


def test_an_exported_git_ref_follows_the_same_rules(tmp_path):
    repo = git_repo(tmp_path / "repo", {**CODE, **DEPLOYIGNORE, ".env": "SECRET_KEY=x\n", ".env.example": ""})
    packed = _export_git(str(repo), "HEAD")

    with tarfile.open(packed.archive) as archive:
        assert set(archive.getnames()) == set(CODE) | {"app/tests/test_x.py", ".env.example"}


def test_deployignore_does_not_bring_back_with_negation(tmp_path):
    write(tmp_path, {**CODE, ".deployignore": "*.md\n!README.md\n"})

    with pytest.raises(DeploySettingsError, match=r"^django_source_dir: .*\.deployignore.*negation"):
        pack_directory(str(tmp_path))


def test_the_digest_follows_the_shipped_files_only(tmp_path):
    repo = git_repo(tmp_path / "repo", {**CODE, ".gitignore": "local_settings.py\n"})
    write(repo, {"local_settings.py": "DEBUG = True\n", ".env": "SECRET_KEY=x\n"})
    first = pack_directory(str(repo)).digest
    assert pack_directory(str(repo)).digest == first

    write(repo, {"local_settings.py": "DEBUG = False\n", ".env": "SECRET_KEY=y\n"})
    assert pack_directory(str(repo)).digest == first

    write(repo, {"app/views.py": "x = 2\n"})
    assert pack_directory(str(repo)).digest != first


def test_the_same_content_gives_the_same_digest_in_a_git_tree_and_a_plain_folder(tmp_path):
    write(tmp_path / "plain", CODE)
    repo = git_repo(tmp_path / "repo", CODE)

    assert pack_directory(str(repo)).digest == pack_directory(str(tmp_path / "plain")).digest


def test_an_archive_is_found_by_its_pattern_in_a_folder_with_the_environment_filled_in(tmp_path, monkeypatch):
    from deploys.djangoapp.release.source import _archive_path, _single_top_folder
    from tests.unit.sites import settings

    (tmp_path / "site-r42.tar.gz").write_text("archive")
    monkeypatch.setenv("BUILD_NUMBER", "42")
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    found = _archive_path(settings(django_release_archive=str(tmp_path),
                                   django_revision_file_pattern="site-r${BUILD_NUMBER}.tar.gz"))
    assert found == str(tmp_path / "site-r42.tar.gz")
    assert _archive_path(settings(django_release_archive=f"{tmp_path}/site-r${{BUILD_NUMBER}}.tar.gz")) == found
    for data, words in [
        ({"django_release_archive": str(tmp_path)}, "django_revision_file_pattern: needed when"),
        ({"django_release_archive": str(tmp_path), "django_revision_file_pattern": "site-r${NOT_SET_ANYWHERE}.tar.gz"},
         "django_revision_file_pattern: environment variable NOT_SET_ANYWHERE is not set"),
        ({"django_release_archive": str(tmp_path / "gone.tar.gz")}, "no such file on this machine: "),
    ]:
        with pytest.raises(DeploySettingsError, match=words):
            _archive_path(settings(**data))
    # One folder at the top (myapp-1.2/): its content is the release; otherwise the whole tree.
    (tmp_path / "one" / "myapp-1.2").mkdir(parents=True)
    assert _single_top_folder(str(tmp_path / "one")) == str(tmp_path / "one" / "myapp-1.2")
    (tmp_path / "one" / "README").write_text("")
    assert _single_top_folder(str(tmp_path / "one")) == str(tmp_path / "one")
    (tmp_path / "file-only").mkdir()
    (tmp_path / "file-only" / "manage.py").write_text("")
    assert _single_top_folder(str(tmp_path / "file-only")) == str(tmp_path / "file-only")


def test_a_packed_folder_is_the_same_archive_byte_for_byte_with_modes_and_no_times(tmp_path):
    import gzip
    import os

    root = tmp_path / "site"
    write(root, {"manage.py": "print('manage')\n", "site/settings.py": "DEBUG = False\n"})
    os.chmod(root / "manage.py", 0o755)
    first = pack_directory(str(root))
    assert os.path.basename(first.archive) == "source.tar.gz" and os.path.dirname(first.archive) != str(root)
    assert first.revision == f"dir:{first.digest[:12]}" and len(first.digest) == 64
    assert pack_directory(str(root), revision="git:abc").revision == "git:abc"
    with open(first.archive, "rb") as raw:
        header = raw.read(10)
    # gzip: no file name in the header (FLG without FNAME) and no time (MTIME 0).
    assert header[:3] == b"\x1f\x8b\x08" and header[3] & 0x08 == 0 and header[4:8] == b"\0\0\0\0"
    with gzip.open(first.archive) as packed, tarfile.open(fileobj=packed) as archive:
        members = {member.name: (member.mode, member.mtime) for member in archive.getmembers()}
    assert members == {"manage.py": (0o755, 0), "site/settings.py": (0o644, 0)}
    # Packed again with other file times: the same bytes.
    os.utime(root / "manage.py", (1, 1))
    with open(first.archive, "rb") as one, open(pack_directory(str(root)).archive, "rb") as two:
        assert one.read() == two.read()


def test_the_release_s_source_is_the_one_given_and_none_given_is_refused(monkeypatch, tmp_path):
    asked = []
    monkeypatch.setattr(source, "_pack_directory_once", lambda path: asked.append(("dir", path)) or "packed")
    monkeypatch.setattr(source, "_unpack_archive", lambda path: asked.append(("archive", path)) or "unpacked")
    monkeypatch.setattr(source, "_export_git", lambda repo, ref: asked.append(("git", repo, ref)) or "exported")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "site").mkdir()
    (tmp_path / "site.tar.gz").write_bytes(b"")
    assert source.release_source(settings(django_source_dir="site")) == "packed"
    assert source.release_source(settings(django_release_archive="site.tar.gz")) == "unpacked"
    assert source.release_source(settings(django_git_repo="https://git.example.com/site.git",
                                          django_git_ref="v2")) == "exported"
    assert asked == [("dir", str(tmp_path / "site")), ("archive", str(tmp_path / "site.tar.gz")),
                     ("git", "https://git.example.com/site.git", "v2")]
    with pytest.raises(DeploySettingsError) as refused:
        source.release_source(settings())
    assert str(refused.value) == ("django_source_dir: a release needs a source: set django_source_dir, "
                                  "django_release_archive or django_git_repo")
