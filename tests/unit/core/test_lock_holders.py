"""Who holds a deploy lock, as the next run reads and names it (lock.py), and where a release's
database snapshot goes (database.py)."""

import os
import subprocess

from deploys.djangoapp.host.database import snapshot_path
from deploys.djangoapp.core.lock import DeployLock, OPERATOR, RUN_TOKEN, describe_lock_holder, lock_holder
from tests.unit.sites import settings


def test_the_holder_is_read_from_its_file_and_an_unreadable_one_is_named_so(tmp_path):
    lock = tmp_path / "it's a lock"
    lock.mkdir()
    (lock / "holder.json").write_text('{"operator": "ann@laptop", "pid": 7}\n')
    fact = DeployLock()
    read = subprocess.run(["sh", "-c", fact.command(str(lock))], capture_output=True, text=True, check=True)
    assert fact.process(read.stdout.splitlines()) == {"operator": "ann@laptop", "pid": 7}
    assert fact.process([]) is None and fact.process(["", "  "]) is None
    assert fact.process(["{not json"]) == {"operator": "unknown (unreadable holder.json)"}
    gone = subprocess.run(["sh", "-c", fact.command(str(tmp_path / "none"))], capture_output=True, text=True)
    assert gone.returncode == 0 and gone.stdout == ""


def test_this_run_records_itself_as_the_holder():
    holder = lock_holder("release v2")
    assert (holder["token"], holder["operator"], holder["pid"], holder["release"]) == (RUN_TOKEN, OPERATOR,
                                                                                       os.getpid(), "release v2")
    assert holder["machine"] and holder["started"].endswith("+00:00")


def test_the_holder_is_described_with_whether_its_run_still_goes():
    dead = subprocess.Popen(["true"])
    dead.wait()
    base = {"operator": "ann@laptop", "started": "2026-12-06T10:00:00+00:00", "release": "v2", "machine": "box"}
    assert describe_lock_holder({**base, "pid": dead.pid}, "box") == (
        f"ann@laptop (pid {dead.pid}), since 2026-12-06T10:00:00+00:00, for release v2 - stale: that run has ended")
    assert describe_lock_holder({**base, "pid": os.getpid()}, "box").endswith(" - that run is still going")
    assert describe_lock_holder({**base, "pid": os.getpid()}, "elsewhere").endswith(
        " - it may be a run on another machine, or a killed one")
    assert describe_lock_holder({**base, "pid": "7"}, "box").endswith(" - it may be a run on another machine, or "
                                                                       "a killed one")
    assert describe_lock_holder({}, "box") == ("unknown (pid ?), since ?, for release ? - it may be a run on another "
                                               "machine, or a killed one")


def test_a_snapshot_is_named_after_its_release_and_the_database_kind():
    sqlite = settings()
    postgresql = settings(database="postgresql", django_environment_variables={"DJANGO_DB_PASSWORD": "pw"})
    assert snapshot_path(sqlite, "2026.1") == f"{sqlite.snapshots_dir}/2026.1.sqlite3"
    assert snapshot_path(postgresql, "2026.1") == f"{postgresql.snapshots_dir}/2026.1.dump"
