"""The deploy lock's shell programs, run against a folder with dash as on the hosts."""

import subprocess

from deploys.djangoapp.core.lock import (
    break_command,
    expect_live_command,
    held_lock_commands,
    release_lock_command,
    take_command,
)


def sh(command: str, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=timeout)


def holder(token: str) -> dict:
    return {"token": token, "operator": f"{token}@box", "machine": "box", "pid": 1, "started": "now",
            "release": "r"}


def test_one_run_takes_the_lock_the_next_fails_naming_it(tmp_path):
    lock = str(tmp_path / ".deploy-lock")
    assert sh(take_command(lock, holder("alice"), wait=0)).returncode == 0
    second = sh(take_command(lock, holder("bob"), wait=0))
    assert second.returncode == 1
    assert second.stderr.startswith('another deploy holds the lock of this project: {"machine": "box", '
                                    '"operator": "alice@box", "pid": 1, "release": "r", "started": "now", '
                                    '"token": "alice"}'), second.stderr
    assert (tmp_path / ".deploy-lock" / "token").read_text().strip() == "alice"
    sh(release_lock_command(lock, "bob"))  # not bob's: stays
    assert (tmp_path / ".deploy-lock").exists()
    sh(release_lock_command(lock, "alice"))
    assert not (tmp_path / ".deploy-lock").exists()


def test_lock_wait_waits_for_the_holder_to_end(tmp_path):
    lock = str(tmp_path / ".deploy-lock")
    sh(take_command(lock, holder("alice"), wait=0))
    waited = sh(f"(sleep 2; {release_lock_command(lock, 'alice')}) & {take_command(lock, holder('bob'), wait=15)}")
    assert waited.returncode == 0, waited.stderr
    assert (tmp_path / ".deploy-lock" / "token").read_text().strip() == "bob"


def test_two_runs_breaking_one_stale_lock_cannot_both_win(tmp_path):
    lock = str(tmp_path / ".deploy-lock")
    sh(take_command(lock, holder("stale"), wait=0))
    first = sh(f"{break_command(lock, 'stale')} && {take_command(lock, holder('alice'), wait=0)}")
    assert first.returncode == 0, first.stderr
    # The second breaker saw the same stale lock: it must leave alice's fresh one alone.
    second = sh(f"{break_command(lock, 'stale')} && {take_command(lock, holder('bob'), wait=0)}")
    assert second.returncode == 1 and "alice@box" in second.stderr
    assert (tmp_path / ".deploy-lock" / "token").read_text().strip() == "alice"


def test_a_breaker_already_at_work_turns_the_other_away(tmp_path):
    lock = str(tmp_path / ".deploy-lock")
    sh(take_command(lock, holder("stale"), wait=0))
    (tmp_path / ".deploy-lock.breaking").mkdir()
    busy = sh(break_command(lock, "stale"))
    assert busy.returncode == 1 and busy.stderr == "another run is breaking the deploy lock right now\n"
    assert (tmp_path / ".deploy-lock").exists()


def test_a_run_stops_when_the_live_release_changed_before_it_held_the_lock(tmp_path):
    lock, link = str(tmp_path / ".deploy-lock"), tmp_path / "current"
    link.symlink_to("/srv/releases/2")
    sh(take_command(lock, holder("alice"), wait=0))
    same = sh(expect_live_command(lock, str(link), "/srv/releases/2", "alice"))
    assert same.returncode == 0 and (tmp_path / ".deploy-lock").exists()
    moved = sh(expect_live_command(lock, str(link), "/srv/releases/1", "alice"))
    assert moved.returncode == 1 and moved.stderr == (
        "the live release changed while this run was being planned or waited for the lock (another deploy): "
        "run it again; nothing was changed\n")
    assert not (tmp_path / ".deploy-lock").exists()  # released on the way out
    # Planned with nothing live: nothing may be live once the lock is held.
    link.unlink()
    sh(take_command(lock, holder("alice"), wait=0))
    assert sh(expect_live_command(lock, str(link), None, "alice")).returncode == 0
    link.symlink_to("/srv/releases/2")
    assert sh(expect_live_command(lock, str(link), None, "alice")).returncode == 1


def test_taking_checking_and_the_next_step_are_one_program(tmp_path):
    lock, link, done = str(tmp_path / ".deploy-lock"), tmp_path / "current", tmp_path / "bridged"
    link.symlink_to("/srv/releases/2")
    then = f"touch {done}"
    moved = sh(held_lock_commands(lock, holder("alice"), link=str(link), expected_live="/srv/releases/1", then=then))
    assert moved.returncode == 1 and "live release changed" in moved.stderr
    assert not (tmp_path / ".deploy-lock").exists() and not done.exists()  # nothing ran past the check
    same = sh(held_lock_commands(lock, holder("alice"), link=str(link), expected_live="/srv/releases/2", then=then))
    assert same.returncode == 0 and done.exists()
    assert (tmp_path / ".deploy-lock" / "token").read_text().strip() == "alice"
    # Held by another run: neither the check nor the next step runs.
    done.unlink()
    taken = sh(held_lock_commands(lock, holder("bob"), link=str(link), expected_live="/srv/releases/2", then=then))
    assert taken.returncode == 1 and "alice@box" in taken.stderr and not done.exists()
    # The next step failing fails the program, the lock still held (the failure cleanup releases it).
    sh(release_lock_command(lock, "alice"))
    failing = sh(held_lock_commands(lock, holder("bob"), then="false"))
    assert failing.returncode != 0 and (tmp_path / ".deploy-lock").exists()


def test_the_lock_is_written_whole_in_one_step(tmp_path):
    """A run killed between the lock's folder and its holder (as an earlier version wrote them)
    left an empty lock no run could break: it is taken; a lock is never there without its holder,
    and a run that gives up waiting leaves nothing behind."""
    lock = tmp_path / ".deploy-lock"
    lock.mkdir()  # left half-written
    assert sh(take_command(str(lock), holder("alice"), wait=0)).returncode == 0
    assert sorted(path.name for path in lock.iterdir()) == ["holder.json", "token"]
    assert (lock / "token").read_text().strip() == "alice"
    refused = sh(take_command(str(lock), holder("bob"), wait=0))
    assert refused.returncode == 1 and "alice@box" in refused.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == [".deploy-lock"]  # no staged folder left


def test_holding_the_lock_takes_it_for_the_purpose_and_cleans_up_only_a_lock_this_run_holds(monkeypatch, tmp_path):
    from deploys.djangoapp.core import lock
    from tests.unit.sites import settings
    from tests.unit.steps import Steps

    steps = Steps(monkeypatch).replace(lock, "take_deploy_lock", "release_deploy_lock", "failure")
    site = settings(django_deployment_root_folder=str(tmp_path), lock_wait=7, release_break_lock=True)
    (tmp_path / "mysite").mkdir()
    lock.hold_lock(site, "release v2", on_failure=f"echo cleaned > {tmp_path}/cleanup", check_live=True,
                   expected_live="/x/releases/v1", then="echo then", cleanup_first=True)
    take, cleanup = steps
    assert take.operation == "take_deploy_lock" and take.name == "Take the deploy lock"
    taken_by = take.kwargs.pop("holder")
    assert take.kwargs == {"name": "Take the deploy lock", "lock_dir": site.lock_dir, "break_lock": True, "wait": 7,
                           "then": "echo then", "link": site.current_link, "expected_live": "/x/releases/v1"}
    assert taken_by["token"] == lock.RUN_TOKEN and taken_by["release"] == "release v2"
    assert taken_by["operator"] == lock.OPERATOR and taken_by["pid"] > 0
    assert cleanup.operation == "failure.on_failure" and cleanup.kwargs == {"first": True}
    command = cleanup.args[2]
    # Another run's lock: neither its cleanup nor its release happens.
    sh(take_command(site.lock_dir, holder("someone-else"), wait=0))
    assert sh(command).returncode == 0
    assert not (tmp_path / "cleanup").exists() and (tmp_path / "mysite" / ".deploy-lock").exists()
    sh(release_lock_command(site.lock_dir, "someone-else"))
    # This run's: the cleanup runs, then the lock goes.
    sh(take_command(site.lock_dir, {**holder("me"), "token": lock.RUN_TOKEN}, wait=0))
    assert sh(command).returncode == 0
    assert (tmp_path / "cleanup").read_text() == "cleaned\n" and not (tmp_path / "mysite" / ".deploy-lock").exists()

    steps.clear()
    lock.hold_lock(site, "restore")
    take, cleanup = steps
    assert "link" not in take.kwargs and "expected_live" not in take.kwargs and take.kwargs["then"] is None
    assert cleanup.args[2] == release_lock_command(site.lock_dir, lock.RUN_TOKEN) and cleanup.kwargs == {"first": False}

    steps.clear()
    lock.let_go(site)
    assert [(step.operation, step.kwargs) for step in steps] == [
        ("release_deploy_lock", {"name": "Release the deploy lock", "lock_dir": site.lock_dir,
                                 "token": lock.RUN_TOKEN})]


def test_a_lock_that_cannot_be_staged_fails_at_once_instead_of_waiting(tmp_path):
    # The project's folder missing: mktemp fails, and so does the whole command, without waiting.
    taken = sh(take_command(str(tmp_path / "missing" / ".deploy-lock"), holder("alice"), wait=600), timeout=10)
    assert taken.returncode != 0 and "mktemp" in taken.stderr
