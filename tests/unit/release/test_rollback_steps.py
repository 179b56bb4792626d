"""What a rollback reads from a host in one round trip (RollbackFacts), the one command that ends
it (finish_rollback_command) and what a host does when it fails (back_on_failure_command), run
with dash against a folder shaped like a project's."""

import json
import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from deploys.djangoapp.core.context import render_template
from deploys.djangoapp.core.lock import release_lock_command, take_command
from deploys.djangoapp.release.finish import releases_to_prune
from deploys.djangoapp.release.rollback import back_on_failure_command, rollback_target
from deploys.djangoapp.release.rollback_steps import RollbackFacts, finish_rollback_command
from deploys.djangoapp.settings import DeployRefused, problems


def sh(command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=20)


def read_facts(root: Path) -> dict:
    fact = RollbackFacts()
    answer = sh(fact.command(str(root / "current"), str(root / "releases"), str(root / "history.jsonl")))
    assert answer.returncode == 0, answer.stderr
    return fact.process(answer.stdout.splitlines())


def make_releases(root: Path) -> Path:
    """r1 (migrations), r2 (migrations, a snapshot, an empty snapshot file in r3), r3 live, and a
    killed build; r1 is the oldest."""
    releases = root / "releases"
    for age, release in enumerate(["r1", "r2", "r3", "r4.partial"]):
        folder = releases / release
        folder.mkdir(parents=True)
        (folder / ".release.json").write_text(json.dumps({"id": release, "revision": f"rev {release}"}))
        os.utime(folder / ".release.json", (1_000 + age, 1_000 + age))
    (releases / "r1" / ".migrations.json").write_text('{"guestbook": "0001_initial"}\n')
    (releases / "r2" / ".migrations.json").write_text('{\n  "guestbook": "0002_mood"\n}\n')
    (releases / "r2" / ".snapshot").write_text("/srv/snapshots/r2.sqlite3\n")
    (releases / "r3" / ".snapshot").write_text("")
    (releases / "r2" / ".rolled-back").write_text("")
    (root / "current").symlink_to(releases / "r3")
    return releases


def test_one_answer_holds_the_live_release_the_releases_and_their_files(tmp_path):
    make_releases(tmp_path)
    found = read_facts(tmp_path)
    assert found["live"] == {"id": "r3", "revision": "rev r3"}
    assert list(found["releases"].items()) == [("r4.partial", "partial"), ("r1", "ok"), ("r2", "rolled-back"),
                                               ("r3", "ok")]
    assert found["files"] == {
        ("r1", ".migrations.json"): '{"guestbook": "0001_initial"}',
        ("r2", ".migrations.json"): '{\n  "guestbook": "0002_mood"\n}',
        ("r2", ".snapshot"): "/srv/snapshots/r2.sqlite3",
    }  # r3's empty snapshot file counts as none


def test_the_releases_go_in_the_order_they_went_live_from_the_history(tmp_path):
    """r1 and r2 released; r3's run killed after its unpack; r4 failed; r5 released; r4 made again
    and released: the history, written by the host's own release-history, orders them."""
    settings, found = problems({"websiteproject": "site", "url": "site.example.com", "webserver": "nginx",
                                "django_deployment_root_folder": str(tmp_path), "django_settings_folder": "site",
                                "django_settings_file": "site.settings"})
    assert found == []
    root = Path(settings.project_root)
    history = root / "bin" / "release-history"
    history.parent.mkdir(parents=True)
    history.write_text(render_template("app/release-history.py.j2", s=settings))

    def unpack(release_id: str, unpacked_at: int):
        folder = root / "releases" / release_id
        folder.mkdir(parents=True, exist_ok=True)
        (folder / ".release.json").write_text(json.dumps({"id": release_id}))
        os.utime(folder / ".release.json", (unpacked_at, unpacked_at))
        (folder / ".migrations.json").write_text("{}")

    def record(release_id: str, status: str):
        assert subprocess.run(["python3", str(history), "record", release_id, status], timeout=20).returncode == 0

    for number, release_id in enumerate(["r1", "r2", "r3", "r4", "r5"], 1):
        unpack(release_id, 1_000 + number)
    record("r1", "live")
    record("r2", "live")
    (root / "releases" / "r4" / ".failed").write_text("")
    record("r4", "failed")
    record("r5", "live")
    record("r4", "live")  # made again: the release removes .failed
    (root / "releases" / "r4" / ".failed").unlink()
    (root / "current").symlink_to(root / "releases" / "r4")

    releases = read_facts(root)["releases"]
    assert list(releases.items()) == [("r3", "unreleased"), ("r1", "ok"), ("r2", "ok"), ("r5", "ok"), ("r4", "ok")]
    # A plain rollback goes to what was live before r4, never to r3, whose run was killed.
    assert rollback_target(settings, releases, "r4", "web1") == "r5"
    with pytest.raises(DeployRefused, match="r3 is not a complete release that went live"):
        rollback_target(settings.model_copy(update={"rollback_to": "r3"}), releases, "r4", "web1")
    assert releases_to_prune(releases, "r4", 2) == ["r3", "r1", "r2"]

    # Rolled back to r5: r5 keeps its place, and a plain rollback from it goes to r2.
    (root / "releases" / "r4" / ".rolled-back").write_text("")
    record("r4", "rolled-back")
    record("r5", "live")
    (root / "current").unlink()
    (root / "current").symlink_to(root / "releases" / "r5")
    releases = read_facts(root)["releases"]
    assert list(releases) == ["r3", "r1", "r2", "r5", "r4"]
    assert rollback_target(settings, releases, "r5", "web1") == "r2"


def test_the_release_being_made_again_is_never_pruned_at_its_own_end():
    # r2 failed long ago, r3 failed since: the run that makes r2 again and live keeps it, with
    # r4 (what a rollback from r2 returns to) and r3 (the newest failed one).
    releases = {"r1": "ok", "r2": "failed", "r3": "failed", "r4": "ok"}
    assert releases_to_prune(releases, "r4", 1) == ["r2"]
    assert releases_to_prune(releases, "r2", 1, releasing="r2") == ["r1"]


def test_the_release_at_its_end_counts_as_the_newest_good_one():
    # At r8's end the link is on r8 and the history has no "live" line for it yet: the fact
    # calls it unreleased. Keeping five good ones keeps r8 and four before it, not five more.
    releases = {"r8": "unreleased", "r2": "ok", "r3": "ok", "r4": "ok", "r5": "failed", "r6": "ok", "r7": "ok"}
    assert releases_to_prune(releases, "r8", 5, releasing="r8") == ["r2"]


def test_a_host_without_releases_answers_nothing_live(tmp_path):
    found = read_facts(tmp_path)
    assert found == {"live": None, "releases": {}, "files": {}}


def test_finishing_marks_records_audits_and_releases_the_lock(tmp_path):
    releases = make_releases(tmp_path)
    lock, log = tmp_path / ".deploy-lock", tmp_path / "calls"
    assert sh(take_command(str(lock), {"token": "run1"}, wait=0)).returncode == 0
    finish = finish_rollback_command(str(releases / "r3"), f"echo history >> {log}; echo", "r3", "r1",
                                     f"echo audit ok >> {log}", release_lock_command(str(lock), "run1"))
    done = sh(finish)
    assert done.returncode == 0, done.stderr
    assert (releases / "r3" / ".rolled-back").exists()
    assert done.stdout.splitlines() == ["record r3 rolled-back", "record r1 live"]
    assert log.read_text().splitlines() == ["history", "history", "audit ok"]
    assert not lock.exists()


def test_a_failing_step_leaves_the_lock_to_the_failure_cleanup(tmp_path):
    releases = make_releases(tmp_path)
    lock, log = tmp_path / ".deploy-lock", tmp_path / "calls"
    sh(take_command(str(lock), {"token": "run1"}, wait=0))
    finish = finish_rollback_command(str(releases / "r3"), "false", "r3", "r1", f"echo audit ok >> {log}",
                                     release_lock_command(str(lock), "run1"))
    assert sh(finish).returncode != 0
    assert not log.exists()  # no "ok" entry for a rollback that failed
    assert lock.exists()  # the cleanup (audit "failed", lock released) runs from failure.py


def failed_rollback_host(root: Path, migration_host: str) -> tuple:
    """A host of a project in `root` that switched from v2 to v1 in a rollback that then failed:
    its settings (the fleet's migration host named), a manage stand-in that notes what it is
    asked and whether the migration lock is held, and the note."""
    settings, found = problems({"websiteproject": "site", "url": "site.example.com", "webserver": "nginx",
                                "django_deployment_root_folder": str(root), "django_settings_folder": "site",
                                "django_settings_file": "site.settings"})
    assert found == []
    settings._fleet = replace(settings.fleet, migration_host=migration_host)
    assert settings.runs_migrations == (migration_host == "localhost")
    releases = root / "site" / "releases"
    for release in ("v1", "v2"):
        (releases / release).mkdir(parents=True)
    (releases / "v1" / ".switched-from").write_text(f"{releases / 'v2'}\n")
    (root / "site" / "current").symlink_to(releases / "v1")
    calls = root / "calls"
    manage = root / "manage"
    manage.write_text(f"#!/bin/sh\nflock -n {settings.migration_lock} true && held=no || held=yes\n"
                      f"echo \"$* (lock held: $held)\" >> {calls}\n")
    manage.chmod(0o755)
    tools = root / "bin"
    tools.mkdir()
    (tools / "systemctl").write_text(f"#!/bin/sh\necho \"systemctl $*\" >> {calls}\n")
    (tools / "systemctl").chmod(0o755)
    return settings, str(manage), calls, tools


@pytest.mark.parametrize("migration_host", ["localhost", "web1"])
def test_a_failed_rollback_puts_the_database_forward_on_the_migration_host_then_goes_back(tmp_path, migration_host):
    settings, manage, calls, tools = failed_rollback_host(tmp_path, migration_host)
    command = back_on_failure_command(settings, manage, "v1", "v2", [("notes", "0001_initial")])
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=20,
                          env={"PATH": f"{tools}:/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    # The migration host migrates forward under the migration lock, before the switch back; the
    # other hosts leave the database alone.
    lines = calls.read_text().splitlines()
    forward = ["migrate --noinput (lock held: yes)"] if migration_host == "localhost" else []
    assert lines[:len(forward)] == forward and "systemctl reload-or-restart uwsgi-site" in lines[len(forward):]
    assert not any(line.startswith("migrate") for line in lines[len(forward):]), lines
    assert os.readlink(tmp_path / "site" / "current") == str(tmp_path / "site" / "releases" / "v2")
    assert "switched back to" in done.stderr
    assert ("migrating the database forward to release v2 again" in done.stderr) == (migration_host == "localhost")
    audit = json.loads((tmp_path / "site" / "audit.jsonl").read_text())
    assert (audit["deploy"], audit["detail"], audit["outcome"]) == ("rollback", "to v1 from v2", "failed")
    # With no migration to undo there is none to redo.
    calls.unlink()
    (tmp_path / "site" / "current").unlink()
    (tmp_path / "site" / "current").symlink_to(tmp_path / "site" / "releases" / "v1")
    subprocess.run(["sh", "-c", back_on_failure_command(settings, manage, "v1", "v2", [])], check=True,
                   capture_output=True, env={"PATH": f"{tools}:/usr/bin:/bin"})
    assert not any(line.startswith("migrate") for line in calls.read_text().splitlines())
