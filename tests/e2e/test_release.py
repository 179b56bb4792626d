"""The release pipeline on a host where v1 is live: new code and migrations go live with the data
kept; a failed migration or health check leaves v1 serving; the deploy lock keeps runs apart;
old releases are pruned; all three source kinds work."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
import tarfile
import zipfile

import pytest

from tests.conftest import https_get, run_pyinfra
from tests.e2e.conftest import history, live_release, manage, under_load
from tests.e2e.sources import RUNS_PYTHON, example_source

pytestmark = pytest.mark.e2e

ROOT = "/srv/www/guestbook"


def release(fleet_file, source_dir=None, **data):
    if source_dir is not None:
        data["django_source_dir"] = str(source_dir)
    return run_pyinfra(fleet_file, "deploys/release.py", data=data)


def note_table_columns(host) -> list[str]:
    out = host.exec(f"sqlite3 {ROOT}/shared/db/guestbook.sqlite3 'PRAGMA table_info(guestbook_note)'").stdout
    return [line.split("|")[1] for line in out.splitlines()]


def applied_migrations(host) -> list[str]:
    out = host.exec(f"sqlite3 {ROOT}/shared/db/guestbook.sqlite3 "
                    "\"SELECT name FROM django_migrations WHERE app='guestbook' ORDER BY name\"").stdout
    return out.split()


def test_new_code_and_migration_go_live_and_data_survives(live_host, tmp_path):
    host, fleet_file = live_host
    v1 = live_release(host)
    manage(host, "add_note", "'written under v1'")

    venv_of_v1 = host.exec(f"venv=$(readlink {ROOT}/current/.venv) && echo \"$venv $(stat -c '%i %Z' \"$venv\")\"").stdout
    v2 = release(fleet_file, example_source(tmp_path / "v2", "v2", mood_migration=True), release_id="v2")
    assert v2.returncode == 0, v2.output
    # Same requirements: the virtualenv of v1 is reused as it is (same folder, inode, change time).
    assert host.exec(f"venv=$(readlink {ROOT}/current/.venv) && echo \"$venv $(stat -c '%i %Z' \"$venv\")\"").stdout \
        == venv_of_v1

    page = https_get(host, "/")
    assert page.headers["X-Release-Id"] == "v2" and live_release(host) == "v2"
    assert "written under v1" in page.text
    assert "mood" in note_table_columns(host)
    stylesheet = re.search(r'href="(/static/guestbook/site\.[0-9a-f]+\.css)"', page.text).group(1)
    assert "guestbook stylesheet v2" in https_get(host, stylesheet).text

    releases = {entry["id"]: entry for entry in history(host)}
    assert releases[v1]["status"] == "live" and not releases[v1]["current"]
    assert releases["v2"]["status"] == "live" and releases["v2"]["current"]
    assert releases["v2"]["migrations"]["guestbook"] == "0002_note_mood"
    assert releases[v1]["migrations"]["guestbook"] == "0001_initial"
    assert releases["v2"]["revision"].startswith("dir:")
    # The snapshot taken before v2's migration is kept, readable by root only.
    snapshot = releases["v2"]["snapshot"]
    assert snapshot == f"{ROOT}/snapshots/v2.sqlite3"
    assert host.exec(f"sqlite3 {snapshot} 'SELECT text FROM guestbook_note'").stdout.strip() == "written under v1"
    assert host.exec(f"stat -c %a {ROOT}/snapshots").stdout.strip() == "700"
    assert host.exec(f"test -d {ROOT}/.deploy-lock", check=False).returncode != 0

    # Releasing the same source again changes nothing.
    again = release(fleet_file, tmp_path / "v2", release_id="v2-again")
    assert again.returncode == 0 and again.changed() == [], again.output
    assert live_release(host) == "v2"


def test_a_failed_migration_is_migrated_back_and_v1_serves_on(live_host, tmp_path):
    host, fleet_file = live_host
    v1 = live_release(host)
    manage(host, "add_note", "'kept'")
    columns, migrations = note_table_columns(host), applied_migrations(host)

    failed = release(fleet_file, example_source(tmp_path / "bad", "bad", failing_migration=True), release_id="bad",
                     allow_unsafe_migrations=RUNS_PYTHON)
    assert failed.returncode != 0
    assert "this migration fails on purpose" in failed.output
    # 0002 ran, 0003 failed in its transaction: 0002 is migrated back, no snapshot restored.
    assert "those that had run were migrated back to the live release's state" in failed.output
    assert "restored from the snapshot" not in failed.output

    assert live_release(host) == v1
    page = https_get(host, "/")
    assert page.status_code == 200 and page.headers["X-Release-Id"] == v1 and "kept" in page.text
    # 0002 had been applied before 0003 failed: migrating back took it out again.
    assert note_table_columns(host) == columns and applied_migrations(host) == migrations
    assert {entry["id"]: entry["status"] for entry in history(host)}["bad"] == "failed"
    assert host.exec(f"test -e {ROOT}/releases/bad/.failed", check=False).returncode == 0
    assert host.exec(f"test -d {ROOT}/.deploy-lock", check=False).returncode != 0

    fixed = release(fleet_file, example_source(tmp_path / "good", "good", mood_migration=True), release_id="good")
    assert fixed.returncode == 0, fixed.output
    assert https_get(host, "/").headers["X-Release-Id"] == "good"


def test_the_migration_gate_refuses_a_release_that_drops_a_column_the_live_release_reads(live_host, tmp_path):
    host, fleet_file = live_host
    # An additive release (a column with a database default) passes the gate under load.
    with under_load(host, limit=2000) as answers:
        added = release(fleet_file, example_source(tmp_path / "v2", "v2", mood_migration=True), release_id="v2")
    assert added.returncode == 0, added.output
    assert "migration gate: the 1 pending operations are safe while the live release serves" in added.output
    assert answers and set(answers) == {200}, answers
    manage(host, "add_note", "'written under v2'")
    columns, migrations = note_table_columns(host), applied_migrations(host)

    # Dropping the column v2 reads: a dry run says the gate would refuse it, and why.
    v3 = example_source(tmp_path / "v3", "v3", mood_dropped=True)
    dry = run_pyinfra(fleet_file, "deploys/release.py", data={"django_source_dir": v3, "release_id": "v3"},
                      extra=("--dry",))
    assert dry.returncode == 0, dry.output
    assert ("migration gate (dry run): guestbook.0003_remove_mood: Remove field mood from note: drops the column "
            "guestbook_note.mood, which the live release reads") in dry.output
    assert "migration gate (dry run): the release would stop before its migrations" in dry.output
    assert host.exec("ls -d /tmp/django-deploy-gate.* 2>/dev/null", check=False).stdout == ""
    # Refused before anything changes, v2 serving all along.
    with under_load(host, limit=2000) as answers:
        refused = release(fleet_file, v3, release_id="v3")
    assert refused.returncode != 0
    assert ("guestbook.0003_remove_mood: Remove field mood from note: drops the column guestbook_note.mood, which "
            "the live release reads; first release code that no longer uses it") in refused.output
    assert "--data allow_unsafe_migrations=guestbook.0003_remove_mood" in refused.output
    assert answers and set(answers) == {200}, answers
    assert note_table_columns(host) == columns and applied_migrations(host) == migrations
    assert live_release(host) == "v2" and https_get(host, "/").headers["X-Release-Id"] == "v2"
    assert {entry["id"]: entry["status"] for entry in history(host)}["v3"] == "failed"
    assert host.exec(f"test -d {ROOT}/.deploy-lock", check=False).returncode != 0

    # switch-first: v3 works beside the column (it has a database default), so the drop waits
    # until v3 serves, and the site answers throughout.
    with under_load(host, limit=2000) as answers:
        switched = release(fleet_file, v3, release_id="v3", migration_safety="switch-first")
    assert switched.returncode == 0, switched.output
    assert ("migration_safety=switch-first: none run before the switch; guestbook.0003_remove_mood once the new "
            "release serves") in switched.output
    assert "migration gate: after the switch, guestbook.0003_remove_mood ran" in switched.output
    assert answers and set(answers) == {200}, answers
    assert "mood" not in note_table_columns(host) and live_release(host) == "v3"
    # Rolled back, the column comes back (with its default) for v2.
    back = run_pyinfra(fleet_file, "deploys/rollback.py")
    assert back.returncode == 0, back.output
    assert sorted(note_table_columns(host)) == sorted(columns) and applied_migrations(host) == migrations
    assert https_get(host, "/").headers["X-Release-Id"] == "v2"

    # Named for this release, it runs before the switch: the column goes (what switch-first kept
    # back in the earlier attempt at v3 is not).
    allowed = release(fleet_file, v3, release_id="v3", allow_unsafe_migrations="guestbook.0003_remove_mood")
    assert allowed.returncode == 0, allowed.output
    assert "allow_unsafe_migrations lets guestbook.0003_remove_mood run while the live release serves" \
        in allowed.output
    assert "mood" not in note_table_columns(host) and "written under v2" in https_get(host, "/").text
    audit = host.exec(f"tail -n 1 {ROOT}/audit.jsonl").stdout
    assert "v3 live (was v2); allow_unsafe_migrations=guestbook.0003_remove_mood" in audit
    status = run_pyinfra(fleet_file, "deploys/status.py")
    assert ("migration gate of the live release: guestbook.0003_remove_mood: Remove field mood from note: drops "
            "the column guestbook_note.mood") in status.output


def test_failed_health_check_switches_back(live_host, tmp_path):
    host, fleet_file = live_host
    v1 = live_release(host)

    failed = release(fleet_file, example_source(tmp_path / "sick", "sick", failing_health=True), release_id="sick")
    assert failed.returncode != 0
    assert "health check failed" in failed.output and "(last answer: 500 sick)" in failed.output
    assert "switched back" in failed.output

    assert live_release(host) == v1
    assert https_get(host, "/").headers["X-Release-Id"] == v1
    assert https_get(host, "/health/").status_code == 200
    assert {entry["id"]: entry["status"] for entry in history(host)}["sick"] == "failed"
    assert host.exec(f"test -d {ROOT}/.deploy-lock", check=False).returncode != 0


def plant_lock(host, pid: int, operator: str):
    holder = {"token": "someone-else", "operator": operator, "machine": socket.gethostname(), "pid": pid,
              "started": "2026-01-01T00:00:00+00:00", "release": "elsewhere"}
    host.exec(f"mkdir -p {ROOT}/.deploy-lock && echo '{json.dumps(holder)}' > {ROOT}/.deploy-lock/holder.json"
              f" && echo someone-else > {ROOT}/.deploy-lock/token")


def test_the_deploy_lock_keeps_runs_apart_and_a_stale_one_can_be_broken(live_host, tmp_path):
    host, fleet_file = live_host
    v1 = live_release(host)
    source = example_source(tmp_path / "v2", "v2")

    # A run that is still going (this test's own process) holds the lock.
    plant_lock(host, os.getpid(), "alice@build-box")
    refused = release(fleet_file, source, release_id="v2")
    assert refused.returncode != 0
    assert "another deploy holds the lock of this project: alice@build-box" in refused.output
    assert "that run is still going" in refused.output
    assert live_release(host) == v1
    assert host.exec(f"cat {ROOT}/.deploy-lock/token").stdout.strip() == "someone-else"

    # skeleton.py, restart.py and remove.py take the same lock: refused too, nothing changed.
    for deploy, data in (("deploys/skeleton.py", {}), ("deploys/restart.py", {}),
                         ("deploys/remove.py", {"confirm_remove": "guestbook"})):
        other = run_pyinfra(fleet_file, deploy, data=data)
        assert other.returncode != 0 and "alice@build-box" in other.output, (deploy, other.output)
    assert live_release(host) == v1 and https_get(host, "/").status_code == 200

    # A run that was killed: reported as stale, kept until asked to break it.
    ended = subprocess.Popen(["true"])
    ended.wait()
    plant_lock(host, ended.pid, "bob@build-box")
    stale = release(fleet_file, source, release_id="v2")
    assert stale.returncode != 0 and "stale: that run has ended" in stale.output
    assert "release_break_lock=true" in stale.output

    broken = release(fleet_file, source, release_id="v2", release_break_lock="true")
    assert broken.returncode == 0, broken.output
    assert live_release(host) == "v2"
    assert host.exec(f"test -d {ROOT}/.deploy-lock", check=False).returncode != 0

    # skeleton.py holds the lock while it runs (so no release interleaves), and lets it go.
    skeleton = run_pyinfra(fleet_file, "deploys/skeleton.py")
    assert skeleton.returncode == 0, skeleton.output
    assert skeleton.results["App skeleton | Take the deploy lock"]["Success"] == "1"
    assert skeleton.results["App skeleton | Release the deploy lock"]["Success"] == "1"
    assert host.exec(f"test -d {ROOT}/.deploy-lock", check=False).returncode != 0


def test_old_releases_are_pruned_and_failed_ones_do_not_count(live_host, tmp_path):
    host, fleet_file = live_host
    for number in range(2, 9):
        release_id = f"r{number}"
        source = example_source(tmp_path / release_id, release_id, failing_health=(number == 5))
        result = release(fleet_file, source, release_id=release_id)
        assert (result.returncode == 0) == (number != 5), result.output

    present = host.exec(f"ls {ROOT}/releases").stdout.split()
    good = [release_id for release_id in present if release_id != "r5"]
    # Five good releases (the failed r5 does not count); r5 is kept to look at.
    assert sorted(good) == ["r3", "r4", "r6", "r7", "r8"]
    assert "r5" in present
    assert sorted(host.exec(f"ls {ROOT}/versions").stdout.split()) == sorted(f"{r}.tar.gz" for r in present)
    assert len(host.exec(f"ls {ROOT}/venvs").stdout.split()) == 1
    assert live_release(host) == "r8"


def test_release_from_an_archive_and_from_git(live_host, tmp_path):
    host, fleet_file = live_host
    # group_data/local.py releases from a directory: one source kind at a time.
    no_directory = {"django_source_dir": "null"}

    tree = example_source(tmp_path / "tree", "from-bz2")
    archive = tmp_path / "guestbook-1.0.tar.bz2"
    with tarfile.open(archive, "w:bz2") as tar:
        tar.add(tree, arcname="guestbook-1.0")  # one top folder, as CI tarballs have
    result = run_pyinfra(fleet_file, "deploys/release.py",
                         data={**no_directory, "django_release_archive": str(archive), "release_id": "bz2"})
    assert result.returncode == 0, result.output
    assert https_get(host, "/").headers["X-Release-Id"] == "bz2"

    zipped = example_source(tmp_path / "zipped", "from-zip")
    os.environ["BUILD_NUMBER"] = "42"
    with zipfile.ZipFile(tmp_path / "guestbook-r42.zip", "w") as archive_zip:
        for path in zipped.rglob("*"):
            archive_zip.write(path, path.relative_to(zipped))
    result = run_pyinfra(fleet_file, "deploys/release.py", data={
        **no_directory, "django_release_archive": str(tmp_path), "django_revision_file_pattern": "guestbook-r${BUILD_NUMBER}.zip",
        "release_id": "zip"})
    assert result.returncode == 0, result.output
    assert https_get(host, "/").headers["X-Release-Id"] == "zip"

    repo = example_source(tmp_path / "repo", "from-git")
    git = ["git", "-c", "user.name=ci", "-c", "user.email=ci@localhost"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "-C", str(repo), "add", "-A"], check=True)
    subprocess.run([*git, "-C", str(repo), "commit", "-qm", "release me"], check=True)
    subprocess.run(["git", "-C", str(repo), "tag", "v3.0"], check=True)
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True, capture_output=True,
                            text=True).stdout.strip()
    result = run_pyinfra(fleet_file, "deploys/release.py",
                         data={**no_directory, "django_git_repo": str(repo), "django_git_ref": "v3.0",
                               "release_id": "git"})
    assert result.returncode == 0, result.output
    assert https_get(host, "/").headers["X-Release-Id"] == "git"
    revisions = {entry["id"]: entry["revision"] for entry in history(host)}
    assert revisions["git"] == f"git:{commit}"
    assert revisions["bz2"] == "archive:guestbook-1.0.tar.bz2"
    assert revisions["zip"] == "archive:guestbook-r42.zip"

    missing = run_pyinfra(fleet_file, "deploys/release.py",
                          data={**no_directory, "django_git_repo": str(repo), "django_git_ref": "no-such-tag"})
    assert missing.returncode != 0
    assert "django_git_ref: 'no-such-tag' is not a commit, branch or tag" in missing.output
    assert missing.results == {}
    assert live_release(host) == "git"


def test_archives_inside_the_release_are_deflated_before_collectstatic(live_host, tmp_path):
    """django_archives_to_deflate: archives shipped inside the source (built assets, a zip and a
    tarball here) are unpacked in place before collectstatic, so their files are served."""
    host, fleet_file = live_host
    source = example_source(tmp_path / "assets", "assets")
    static = source / "guestbook" / "static" / "guestbook"
    with zipfile.ZipFile(static / "built.zip", "w") as built:
        built.writestr("from-zip.css", "/* unpacked from a zip */\n")
    with tarfile.open(static / "vendor.tar.gz", "w:gz") as vendor:
        content = b"/* unpacked from a tarball */\n"
        member = tarfile.TarInfo("from-tar.css")
        member.size = len(content)
        vendor.addfile(member, io.BytesIO(content))
    result = run_pyinfra(fleet_file, "deploys/release.py", data={
        "django_source_dir": source, "release_id": "assets",
        "django_archives_to_deflate": json.dumps(["guestbook/static/guestbook/built.zip",
                                                  "guestbook/static/guestbook/vendor.tar.gz"])})
    assert result.returncode == 0, result.output
    assert https_get(host, "/").headers["X-Release-Id"] == "assets"
    assert https_get(host, "/static/guestbook/from-zip.css").text == "/* unpacked from a zip */\n"
    assert https_get(host, "/static/guestbook/from-tar.css").text == "/* unpacked from a tarball */\n"


def stylesheet_of(page: str) -> str:
    return re.search(r'href="(/static/guestbook/site\.[0-9a-f]+\.css)"', page).group(1)


def test_a_page_of_the_other_release_keeps_its_stylesheet(live_host, tmp_path):
    """Asset bridging: after a release, and after a rollback, the hashed stylesheet of the release
    switched away from is still served (a browser may hold a page that links it)."""
    host, fleet_file = live_host
    old = stylesheet_of(https_get(host, "/").text)
    released = release(fleet_file, example_source(tmp_path / "v2", "v2"), release_id="v2")
    assert released.returncode == 0, released.output
    new = stylesheet_of(https_get(host, "/").text)
    assert new != old
    assert "guestbook stylesheet v1" in https_get(host, old).text
    assert "guestbook stylesheet v2" in https_get(host, new).text

    back = run_pyinfra(fleet_file, "deploys/rollback.py")
    assert back.returncode == 0, back.output
    assert stylesheet_of(https_get(host, "/").text) == old
    assert "guestbook stylesheet v2" in https_get(host, new).text


def test_a_release_made_again_under_a_failed_id_is_good_once_live(live_host, tmp_path):
    """v2 fails for a reason outside its code (the webserver is down); made again from the same
    source once the webserver is back, it goes live and counts as good: no stale failed mark."""
    host, fleet_file = live_host
    source = example_source(tmp_path / "v2", "v2")
    host.exec("systemctl stop nginx")
    failed = release(fleet_file, source, release_id="v2")
    host.exec("systemctl start nginx")
    assert failed.returncode != 0 and "health check failed" in failed.output, failed.output
    assert host.exec(f"test -e {ROOT}/releases/v2/.failed", check=False).returncode == 0

    again = release(fleet_file, source, release_id="v2")
    assert again.returncode == 0, again.output
    assert live_release(host) == "v2"
    assert {entry["id"]: entry["status"] for entry in history(host)}["v2"] == "live"
    assert host.exec(f"test -e {ROOT}/releases/v2/.failed", check=False).returncode != 0


def test_a_release_made_again_after_its_dependencies_changed_runs_on_its_new_virtualenv(live_host, tmp_path):
    """v2 fails installing a dependency that does not exist; made again under the same id with
    the dependency fixed, its folder links the virtualenv of its new dependencies, which it runs."""
    host, fleet_file = live_host
    source = example_source(tmp_path / "v2", "v2")
    failed = release(fleet_file, source, release_id="v2", django_dependencies='["no-such-package-d41d8cd9==1.0"]')
    assert failed.returncode != 0 and "no-such-package-d41d8cd9" in failed.output, failed.output
    first_venv = host.exec(f"readlink {ROOT}/releases/v2/.venv").stdout.strip()

    again = release(fleet_file, source, release_id="v2")
    assert again.returncode == 0, again.output
    venv = host.exec(f"readlink {ROOT}/releases/v2/.venv").stdout.strip()
    assert venv != first_venv and host.exec(f"test -e {venv}/.complete", check=False).returncode == 0
    assert live_release(host) == "v2" and https_get(host, "/").headers["X-Release-Id"] == "v2"
