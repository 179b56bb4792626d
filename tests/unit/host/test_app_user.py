"""Moving a host's app to another user (app_user.py), run against real folders with two system
users: the old processes and the new can both work until the restart, every file the old user
owned is the new one's after it, nothing else changes owner, and no link is followed."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from deploys.djangoapp.host.app_user import app_trees, let_in_command, move_command
from tests.unit.sites import settings

OLD, NEW = ("daemon", "daemon"), ("nobody", "nogroup")
# Stands in for systemctl: at the restart, records who owns the database and whether the new user
# may write it already.
FAKE_SYSTEMCTL = """#!/bin/sh
echo "systemctl $*" >> "$LOG"
case "$1" in try-restart)
  echo "owner at restart: $(stat -c %U "$DB")" >> "$LOG"
  setpriv --reuid=nobody --regid=nogroup --init-groups -- sh -c ": >> \\"$DB\\"" && echo "new user writes" >> "$LOG";;
esac
"""


def test_the_app_moves_to_its_new_user_with_both_working_until_the_restart(tmp_path):
    top = Path(tempfile.mkdtemp(prefix="move-"))
    try:
        top.chmod(0o755)
        site = settings(django_deployment_root_folder=str(top), uwsgi_user=NEW[0], uwsgi_group=NEW[1],
                        django_linked_dirs=["var/cache"])
        root_only = tmp_path / "root-only"
        root_only.write_text("root's")
        for tree in [site.media_dir, site.db_dir, site.log_dir, f"{site.shared_dir}/var/cache", site.uwsgi_control_dir]:
            Path(tree).mkdir(parents=True)
            shutil.chown(tree, *OLD)
        database = Path(site.db_dir) / "mysite.sqlite3"
        database.write_text("rows")
        shutil.chown(database, *OLD)
        os.chmod(database, 0o640)
        (Path(site.media_dir) / "root-made.txt").write_text("root's own")  # root's: stays root's
        (Path(site.media_dir) / "link").symlink_to(root_only)
        os.lchown(Path(site.media_dir) / "link", 1, 1)
        # Another project's file the old user owns too, linked in by the old app.
        elsewhere = top / "other-project.txt"
        elsewhere.write_text("another project's")
        shutil.chown(elsewhere, *OLD)
        os.link(elsewhere, Path(site.media_dir) / "hard-linked.txt")
        release = Path(site.releases_dir) / "r1"
        release.mkdir(parents=True)
        shutil.chown(release, "root", OLD[1])
        release.chmod(0o750)
        fake = tmp_path / "bin"
        fake.mkdir()
        (fake / "systemctl").write_text(FAKE_SYSTEMCTL)
        (fake / "systemctl").chmod(0o755)
        log = tmp_path / "log"

        command = let_in_command(site) + " && " + move_command(
            site, *OLD, "systemctl daemon-reload && systemctl try-restart uwsgi-mysite celery-mysite")
        moved = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=30,
                               env={"PATH": f"{fake}:/usr/bin:/bin", "LOG": str(log), "DB": str(database)})
        assert moved.returncode == 0, moved.stderr
        assert f"1 file(s) in {site.media_dir} with other hard links stay daemon's" in moved.stderr
        assert elsewhere.stat().st_uid == 1
        assert log.read_text().splitlines() == [
            "systemctl daemon-reload", "systemctl try-restart uwsgi-mysite celery-mysite",
            f"owner at restart: {OLD[0]}", "new user writes"]
        for tree in app_trees(site):
            owned = Path(tree).stat()
            assert (owned.st_uid, owned.st_gid) == (65534, 65534), tree
            assert subprocess.run(["getfacl", "-cs", "-p", tree], capture_output=True, text=True).stdout == ""
        assert (database.stat().st_uid, database.stat().st_mode & 0o777) == (65534, 0o640)
        assert (Path(site.media_dir) / "root-made.txt").stat().st_uid == 0
        assert root_only.stat().st_uid == 0 and "nobody" not in subprocess.run(
            ["getfacl", "-p", str(root_only)], capture_output=True, text=True).stdout
        assert os.lstat(Path(site.media_dir) / "link").st_uid == 65534
        # The release: entered through the new group, the webserver's group still reads it.
        assert release.stat().st_gid == 65534 and release.stat().st_mode & 0o777 == 0o750
        entries = subprocess.run(["getfacl", "-c", "-p", str(release)], capture_output=True, text=True).stdout
        assert "group:www-data:r-x" in entries and "group:nogroup:" not in entries
    finally:
        shutil.rmtree(top)
