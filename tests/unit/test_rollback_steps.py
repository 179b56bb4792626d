"""What a rollback reads from a host in one round trip (RollbackFacts), and the one command that
ends it (finish_rollback_command), run with dash against a folder shaped like a project's."""

import json
import os
import subprocess
from pathlib import Path

from deploys.djangoapp.lock import release_lock_command, take_command
from deploys.djangoapp.rollback_steps import RollbackFacts, finish_rollback_command


def sh(command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=20)


def read_facts(root: Path) -> dict:
    fact = RollbackFacts()
    answer = sh(fact.command(str(root / "current"), str(root / "releases")))
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
