"""Folders the kit takes as root (it chowns the deployment root and a local backup repository,
removes a project root whole) are its own: system folders are refused by the settings, mount
points and folders holding what the kit did not make by a look at the host before any change."""

import importlib
import inspect
import os
import posixpath
import subprocess

import pytest

from deploys.djangoapp.core import host_files
from deploys.djangoapp.host import host_prep
from deploys.djangoapp.core.own_folders import (
    BACKUP_REPOSITORY,
    DEPLOYMENT_ROOT,
    GUARDED,
    MARKER,
    PROJECT_ROOT,
    folder_refusals,
    folder_states_command,
    marker_command,
)
from deploys.djangoapp.settings import problems
from deploys.djangoapp.settings.checks import SAFE_NAME, SYSTEM_FOLDERS, SYSTEM_TREES
from tests.unit.sites import VALID, settings

remove = importlib.import_module("deploys.djangoapp.operate.remove")

DANGEROUS = ["/", "/etc", "/usr", "/var", "/var/lib", "/home", "/root", "/boot", "/bin", "/sbin", "/lib", "/lib64",
             "/proc", "/sys", "/dev", "/run", "/tmp", "/srv", "/opt", "/var/backups", "/var/log",
             "/etc/www", "/usr/local/www", "/proc/1", "/sys/kernel", "/dev/shm/x", "/boot/efi", "/run/www",
             "/lib/x86_64-linux-gnu", "/opt/django-deploy-tools", "/var/lib/django-deploy/uploads"]
ACCEPTED = ["/srv/www", "/var/www", "/opt/apps", "/home/deploy/sites", "/data/www", "/var/lib/myapp", "/library"]


def refused(**overrides) -> list[str]:
    found_settings, found = problems({**VALID, **overrides})
    assert found_settings is None and found, overrides
    return found


@pytest.mark.parametrize("folder", DANGEROUS)
def test_a_system_folder_is_refused_as_deployment_root_and_as_backup_repository(folder):
    for variable, extra in (("django_deployment_root_folder", {}),
                            ("backup_repository", {"backup_secrets": {"RESTIC_PASSWORD": "x"}})):
        found = refused(**{variable: folder}, **extra)
        assert len(found) == 1 and found[0].startswith(f"{variable}: {folder} is "), found
        assert "system" in found[0] and "a folder of its own" in found[0], found


@pytest.mark.parametrize("folder", ACCEPTED)
def test_a_folder_of_its_own_is_accepted(folder):
    site = settings(django_deployment_root_folder=folder, backup_repository=f"{folder}/backups",
                    backup_secrets={"RESTIC_PASSWORD": "x"})
    assert site.project_root == f"{folder}/mysite"


def test_no_project_root_is_a_system_folder_since_its_parent_is_refused():
    """The project root is <root>/<websiteproject>, websiteproject one safe name: a root of / with a
    project named etc would have remove.py delete /etc. Every system folder's parent is refused."""
    reached = [path for path in sorted(SYSTEM_FOLDERS | set(SYSTEM_TREES)) + ["/lib64", "/usr/lib"]
               if SAFE_NAME.fullmatch(posixpath.basename(path))]
    assert "/etc" in reached and "/var/backups" in reached and "/opt/django-deploy-tools" in reached
    for path in reached:
        parent, name = posixpath.split(path)
        found = refused(django_deployment_root_folder=parent, websiteproject=name)
        assert found[0].startswith("django_deployment_root_folder: "), (path, found)


def test_the_kits_own_state_folders_are_refused_with_the_system():
    for own in (host_prep.TOOLS_VENV, remove.BACKUP_DIR, posixpath.dirname(host_files.STAGING_ROOT)):
        assert own in SYSTEM_TREES


@pytest.mark.parametrize("path", ["/etc", "../up", "var/../../etc", ".", "", "./", "a/..", ".venv", ".venv/lib",
                                  "./.venv/bin", ".static", ".static/css"])
def test_a_linked_path_outside_the_release_is_refused(path):
    for variable in ("django_linked_dirs", "django_linked_files"):
        found = refused(**{variable: ["var/cache", path]})
        assert len(found) == 1 and found[0].startswith(f"{variable}: entries must "), found
        assert repr(path) in found[0], found


def test_linked_paths_inside_the_release_are_accepted():
    site = settings(django_linked_dirs=["var/cache", "./data/index", "venv-notes"], django_linked_files=["search.idx"])
    assert site.django_linked_dirs == ["var/cache", "./data/index", "venv-notes"]


# ---------------------------------------------------------------- the look at the host


def states(*paths) -> dict[str, set[str]]:
    done = subprocess.run(["sh", "-c", folder_states_command([str(path) for path in paths])],
                          capture_output=True, text=True, check=True)
    return {path: set(words) for path, *words in (line.split(" ") for line in done.stdout.splitlines())}


def test_the_look_tells_what_each_folder_holds(tmp_path):
    missing, file, empty, marked, released, current, db_host, restic, foreign, sites = (
        tmp_path / name for name in ("missing", "file", "empty", "marked", "released", "current", "db_host",
                                     "restic", "foreign", "sites"))
    file.write_text("x")
    for folder in (empty / "a", empty / "b", marked, released, current, db_host / "bin", restic, foreign,
                   sites / "old"):
        folder.mkdir(parents=True)
    (marked / MARKER).write_text("")
    (released / "releases").mkdir()
    (current / "current").symlink_to("releases/1")
    (db_host / "bin" / "with-secrets").write_text("#!/usr/bin/python3\n")  # all a db host's project root has
    (restic / "config").write_text("")
    (restic / "keys").mkdir()
    (foreign / "passwd").write_text("root:x:0:0")
    (sites / "guestbook" / "releases").mkdir(parents=True)
    found = states(missing, file, empty, marked, released, current, db_host, restic, foreign, sites, "/proc")
    assert found == {str(missing): {"missing"}, str(file): {"file"}, str(empty): {"bare"},
                     str(marked): {"marked"}, str(released): {"made", "bare"}, str(current): {"made"},
                     str(db_host): {"made"}, str(restic): {"restic"}, str(foreign): set(), str(sites): {"projects"},
                     "/proc": {"mount"}}


def test_the_skeleton_marks_a_project_root_it_makes_as_the_kits(tmp_path):
    root = tmp_path / "srv" / "mysite"
    subprocess.run(["sh", "-c", marker_command(str(root))], check=True)
    assert states(root) == {str(root): {"marked"}}
    assert "remove.py" in (root / MARKER).read_text()


def host_settings(tmp_path, **overrides):
    return settings(django_deployment_root_folder=str(tmp_path / "srv"), backup_repository=str(tmp_path / "backups"),
                    backup_secrets={"RESTIC_PASSWORD": "x"}, **overrides)


def refusals(site, kinds, tmp_path) -> list[str]:
    return folder_refusals(site, kinds, states(*(tmp_path / name for name in ("srv", "srv/mysite", "backups"))))


ALL = (DEPLOYMENT_ROOT, PROJECT_ROOT, BACKUP_REPOSITORY)


def test_new_empty_and_kit_made_folders_pass(tmp_path):
    site = host_settings(tmp_path)
    assert refusals(site, ALL, tmp_path) == []
    (tmp_path / "backups").mkdir()
    (tmp_path / "srv" / "mysite").mkdir(parents=True)
    assert refusals(site, ALL, tmp_path) == []
    (tmp_path / "srv" / "mysite" / MARKER).write_text("")
    (tmp_path / "srv" / "other" / "releases").mkdir(parents=True)
    for name in ("config", "data"):
        (tmp_path / "backups" / name).write_text("")
    (tmp_path / "backups" / "keys").mkdir()
    assert refusals(site, ALL, tmp_path) == []


def test_a_project_root_the_kit_did_not_make_is_refused(tmp_path):
    """A root of /srv with a project named like a folder of someone else's: remove.py would delete it."""
    (tmp_path / "srv" / "mysite" / "index.html").parent.mkdir(parents=True)
    (tmp_path / "srv" / "mysite" / "index.html").write_text("someone's site")
    site = host_settings(tmp_path)
    found = refusals(site, (PROJECT_ROOT,), tmp_path)
    assert found == [f"websiteproject: the project root {tmp_path}/srv/mysite holds files the kit did not make "
                     f"(no {MARKER}, releases/, current or bin/with-secrets in it); remove.py would delete them; "
                     "use another websiteproject or deployment root"]
    # The deployment root holds it, and no project of the kit's.
    assert [line.split(":")[0] for line in refusals(site, ALL, tmp_path)] == [
        "django_deployment_root_folder", "websiteproject"]


def test_a_backup_repository_that_is_not_restics_is_refused(tmp_path):
    (tmp_path / "backups").mkdir()
    (tmp_path / "backups" / "dump.sql").write_text("another program's backups")
    found = refusals(host_settings(tmp_path), ALL, tmp_path)
    assert len(found) == 1 and found[0].startswith(f"backup_repository: the backup repository {tmp_path}/backups "
                                                   "holds files and is not a restic repository"), found


def test_a_file_in_place_of_a_folder_is_refused(tmp_path):
    (tmp_path / "srv").write_text("")
    found = refusals(host_settings(tmp_path), ALL, tmp_path)
    assert found == [f"django_deployment_root_folder: the deployment root {tmp_path}/srv is a file, not a folder"]


@pytest.fixture
def mounted(tmp_path):
    """A tmpfs mounted at each of the folders asked for (needs root, as the kit's tests run)."""
    assert os.geteuid() == 0, "this test mounts a tmpfs: run it as root"
    points = []

    def mount(path):
        path.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "test", str(path)], check=True)
        points.append(path)

    yield mount
    for path in reversed(points):
        subprocess.run(["umount", str(path)], check=True)


def test_a_mount_point_is_refused_as_project_root_and_backup_repository_not_as_deployment_root(tmp_path, mounted):
    for name in ("srv", "srv/mysite", "backups"):
        mounted(tmp_path / name)
    (tmp_path / "srv" / "mysite" / MARKER).write_text("")  # even marked: removing it reaches the whole disk
    found = refusals(host_settings(tmp_path), ALL, tmp_path)
    assert [line.split(":")[0] for line in found] == ["websiteproject", "backup_repository"], found
    assert "is a mount point (a disk or share of its own), which the kit would remove whole" in found[0]
    assert "which the kit would give to the backup user whole; use a folder on it" in found[1]


def test_each_guarded_deploy_is_named_as_its_function_declares_it():
    sources = {name: inspect.getsource(importlib.import_module(f"deploys.djangoapp.{module}")) for name, module in (
        ("Prepare host", "host.host_prep"), ("App skeleton", "site.skeleton"), ("Remove", "operate.remove"))}
    for name, source in sources.items():
        assert f'@deploy("{name}")' in source, name
    assert set(GUARDED) == set(sources)
