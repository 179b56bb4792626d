"""The shell programs that build a virtualenv, install a tested webserver config, finish a release
(history, pruning, lock), migrate back on a rollback, and take and restore sqlite snapshots, run
with dash against folders shaped like a project's, as on the hosts."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from deploys.djangoapp.host.database import snapshot_commands
from deploys.djangoapp.release.dependencies import PythonVersion, UvPythonVersion
from deploys.djangoapp.core.lock import release_lock_command, take_command
from deploys.djangoapp.release.build import virtualenv_commands
from deploys.djangoapp.release.finish import finish_command, prune_commands, releases_to_prune
from deploys.djangoapp.core.host_files import install_config_command
from deploys.djangoapp.core.host_state import Releases
from deploys.djangoapp.release.rollback_steps import migrate_back_command
from tests.unit.sites import APP_USER, NOBODY, app_folder


def sh(command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=20)


def test_pruning_keeps_the_newest_good_the_live_and_its_rollback_target():
    releases = {"r1": "ok", "r2": "ok", "r3": "failed", "r4": "rolled-back", "r5": "ok", "r6": "failed",
                "r7": "ok", "r8.partial": "partial"}
    # keep 2: r5 and r7 by count; r6 the newest failed; r1..r4 go, and so does the partial build.
    assert releases_to_prune(releases, "r7", 2) == ["r1", "r2", "r3", "r4", "r8.partial"]
    # Live on r2 (rolled back to it): r2 and what a plain rollback returns to (r1) stay too.
    assert releases_to_prune(releases, "r2", 2) == ["r3", "r4", "r8.partial"]
    # A rolled-back release is never a rollback target, but counts as a good one kept by count.
    assert releases_to_prune({"a": "ok", "b": "rolled-back", "c": "ok"}, "c", 1) == ["b"]
    assert releases_to_prune({"a": "ok"}, None, 5) == []


def make_project(root: Path) -> dict[str, Path]:
    """releases r0..r4 (r2 rolled back, r3 failed, r4 a killed build), their archives, snapshots
    and virtualenvs (r0 alone uses "old")."""
    paths = {name: root / name for name in ("releases", "versions", "venvs", "snapshots", "python")}
    for path in paths.values():
        path.mkdir()
    # "old" runs on an interpreter uv installed into the project's python folder.
    (paths["python"] / "cpython-3.12.4" / "bin").mkdir(parents=True)
    for venv, home in (("old", paths["python"] / "cpython-3.12.4" / "bin"), ("shared", Path("/usr/bin"))):
        (paths["venvs"] / venv).mkdir()
        (paths["venvs"] / venv / "pyvenv.cfg").write_text(f"home = {home}\nversion_info = 3.12.4\n")
    for age, (release, venv) in enumerate([("r0", "old"), ("r1", "shared"), ("r2", "shared"), ("r3", "shared"), ("r4.partial", None)]):
        folder = paths["releases"] / release
        folder.mkdir()
        (folder / ".release.json").write_text("{}")
        os.utime(folder / ".release.json", (1_000 + age, 1_000 + age))
        if venv:
            (folder / ".venv").symlink_to(paths["venvs"] / venv)
        (paths["versions"] / f"{release}.tar.gz").write_text("archive")
        (paths["snapshots"] / f"{release}.dump").write_text("dump")
    (paths["releases"] / "r3" / ".failed").write_text("")
    (paths["releases"] / "r2" / ".rolled-back").write_text("")
    return paths


def test_finishing_records_the_release_prunes_the_rest_and_releases_the_lock(tmp_path):
    paths = make_project(tmp_path)
    found = Releases().process(sh(Releases().command(str(paths["releases"]))).stdout.splitlines())
    assert list(found.items()) == [("r4.partial", "partial"), ("r0", "ok"), ("r1", "ok"), ("r2", "rolled-back"),
                                   ("r3", "failed")]
    lock = tmp_path / ".deploy-lock"
    assert sh(take_command(str(lock), {"token": "run1", "operator": "me@box"}, wait=0)).returncode == 0
    # Live on r2, which was rolled back once and is now re-made: r1 is what a rollback returns to.
    pruned = releases_to_prune(found, "r2", 1)
    assert pruned == ["r4.partial", "r0"]
    finish = finish_command("echo history", "r2", str(paths["releases"]), str(paths["versions"]),
                            str(paths["venvs"]), str(paths["snapshots"]), pruned,
                            release_lock_command(str(lock), "run1"), str(paths["python"]))
    done = sh(finish)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["history", "record", "r2", "live"]
    assert sorted(p.name for p in paths["releases"].iterdir()) == ["r1", "r2", "r3"]
    assert not (paths["releases"] / "r2" / ".rolled-back").exists()  # re-made and live: good again
    assert sorted(p.name for p in paths["versions"].iterdir()) == ["r1.tar.gz", "r2.tar.gz", "r3.tar.gz"]
    assert sorted(p.name for p in paths["snapshots"].iterdir()) == ["r1.dump", "r2.dump", "r3.dump"]
    assert sorted(p.name for p in paths["venvs"].iterdir()) == ["shared"]  # "old" had no release left
    assert not paths["python"].exists()  # nor had the interpreter uv installed for it
    assert not lock.exists()


def test_an_interpreter_uv_installed_stays_while_a_virtualenv_runs_on_it(tmp_path):
    paths = make_project(tmp_path)
    (paths["venvs"] / "shared" / "pyvenv.cfg").write_text(f"home = {paths['python']}/cpython-3.12.4/bin\n")
    finish = finish_command("true", "r2", str(paths["releases"]), str(paths["versions"]), str(paths["venvs"]),
                            str(paths["snapshots"]), ["r0"], "true", str(paths["python"]))
    assert sh(finish).returncode == 0
    assert sorted(p.name for p in paths["venvs"].iterdir()) == ["shared"]
    assert (paths["python"] / "cpython-3.12.4" / "bin").is_dir()


def test_a_failing_step_fails_the_finish_but_the_lock_is_still_released(tmp_path):
    paths = make_project(tmp_path)
    lock = tmp_path / ".deploy-lock"
    sh(take_command(str(lock), {"token": "run1", "operator": "me@box"}, wait=0))
    finish = finish_command("false", "r2", str(paths["releases"]), str(paths["versions"]), str(paths["venvs"]),
                            str(paths["snapshots"]), [], release_lock_command(str(lock), "run1"), str(paths["python"]))
    assert sh(finish).returncode != 0 and not lock.exists()


def test_names_with_spaces_and_quotes_stay_one_word(tmp_path):
    root = tmp_path / "it's a root"
    root.mkdir()
    paths = make_project(root)
    finish = finish_command("true", "r2", str(paths["releases"]), str(paths["versions"]), str(paths["venvs"]),
                            str(paths["snapshots"]), ["r0"], "true", str(paths["python"]))
    assert sh(finish).returncode == 0
    assert sorted(p.name for p in paths["releases"].iterdir()) == ["r1", "r2", "r3", "r4.partial"]
    assert sorted(p.name for p in paths["venvs"].iterdir()) == ["shared"]
    assert not paths["python"].exists()


def test_sqlite_snapshot_restores_the_rows_and_removes_a_database_made_by_a_first_release(tmp_path):
    with app_folder() as db_dir:
        database, snapshot = db_dir / "app.sqlite3", tmp_path / "snap" / "v1.sqlite3"
        snapshot.parent.mkdir()
        site = SimpleNamespace(database="sqlite", sqlite_path=str(database), as_app_user=APP_USER)
        take, restore = snapshot_commands(site, str(snapshot))
        # No database yet: an empty snapshot, and restoring it removes what the migrations made.
        assert sh(take).returncode == 0 and snapshot.read_bytes() == b""
        as_app(lambda: sqlite3.connect(database).execute("CREATE TABLE t (x)").connection.commit())
        assert sh(restore).returncode == 0 and not database.exists()
        # With rows: a failed migration's table goes, the rows come back.
        as_app(lambda: _write(database, "CREATE TABLE notes (text)", "INSERT INTO notes VALUES ('kept')"))
        assert sh(take).returncode == 0
        _write(database, "DELETE FROM notes", "CREATE TABLE half_migrated (x)")
        restored = sh(restore)
        assert restored.returncode == 0, restored.stderr
        with sqlite3.connect(database) as db:
            assert db.execute("SELECT text FROM notes").fetchall() == [("kept",)]
            assert db.execute("SELECT name FROM sqlite_master WHERE name = 'half_migrated'").fetchall() == []
        assert os.stat(database).st_uid == NOBODY
        assert sorted(path.name for path in db_dir.iterdir()) == ["app.sqlite3"]  # no copy left behind


def test_pruning_a_release_removes_its_own_snapshots_only(tmp_path):
    """Release 1's snapshot goes with it; 1.1's and 1.2's (ids with dots, as README shows them) stay."""
    folders = {name: tmp_path / name for name in ("releases", "versions", "venvs", "snapshots")}
    for folder in folders.values():
        folder.mkdir()
    for name in ("1.sqlite3", "1.1.sqlite3", "1.2.dump", "before-restore-1.sqlite3"):
        (folders["snapshots"] / name).write_text("a snapshot")
    commands = prune_commands(*(str(folders[name]) for name in ("releases", "versions", "venvs", "snapshots")),
                              ["1"], str(tmp_path / "python"))
    assert sh(" && ".join(commands)).returncode == 0
    assert sorted(path.name for path in folders["snapshots"].iterdir()) == [
        "1.1.sqlite3", "1.2.dump", "before-restore-1.sqlite3"]


@pytest.mark.parametrize("snapshot_content", [None, b"not a database at all"])
def test_a_missing_or_broken_sqlite_snapshot_touches_nothing_and_fails(tmp_path, snapshot_content):
    """A missing snapshot is not an empty one (a first release's): the database stays, and the
    restore fails saying why; so does a snapshot that is not a whole sqlite database."""
    with app_folder() as db_dir:
        database, snapshot = db_dir / "app.sqlite3", tmp_path / "v1.sqlite3"
        as_app(lambda: _write(database, "CREATE TABLE notes (text)", "INSERT INTO notes VALUES ('kept')"))
        if snapshot_content is not None:
            snapshot.write_bytes(snapshot_content)
        site = SimpleNamespace(database="sqlite", sqlite_path=str(database), as_app_user=APP_USER)
        restored = sh(snapshot_commands(site, str(snapshot))[1])
        assert restored.returncode != 0
        said = "is missing" if snapshot_content is None else "is not a whole sqlite database"
        assert f"the snapshot {snapshot} {said}: the database was not touched" in restored.stderr
        with sqlite3.connect(database) as db:
            assert db.execute("SELECT text FROM notes").fetchall() == [("kept",)]


# Stand-ins for PostgreSQL's clients: pg_restore lists or writes a dump's statements (and fails as
# a truncated dump makes it, after some), psql runs what it reads in one transaction, which a
# statement that cannot run rolls back (recorded in $LOG as what it committed).
FAKE_PG_RESTORE = """#!/bin/sh
[ -s "$SNAPSHOT" ] || { echo "pg_restore: error: could not open input file" >&2; exit 1; }
case "$1" in --list) exit 0;; esac
echo 'CREATE TABLE notes (text text);'
[ "$TRUNCATED" = yes ] && { echo "pg_restore: error: could not read input file: end of file" >&2; exit 1; }
echo "INSERT INTO notes VALUES ('kept');"
"""
FAKE_PSQL = """#!/bin/sh
statements=$(cat)
case "$statements" in *could_not_be_read*) echo "ERROR: function does not exist" >&2; echo rolled-back >> "$LOG"; exit 3;; esac
printf '%s\n' "$statements" >> "$LOG"
"""


@pytest.mark.parametrize("case", ["missing", "truncated", "whole"])
def test_a_postgresql_restore_drops_nothing_unless_the_whole_snapshot_goes_in(tmp_path, case):
    fake = tmp_path / "bin"
    fake.mkdir()
    for name, script in (("pg_restore", FAKE_PG_RESTORE), ("psql", FAKE_PSQL)):
        (fake / name).write_text(script)
        (fake / name).chmod(0o755)
    (fake / "with-secrets").write_text('#!/bin/sh\nexec "$@"\n')
    (fake / "with-secrets").chmod(0o755)
    snapshot, log = tmp_path / "v1.dump", tmp_path / "committed"
    if case != "missing":
        snapshot.write_text("PGDMP...")
    site = SimpleNamespace(database="postgresql", secrets_loader=str(fake / "with-secrets"), database_host="127.0.0.1",
                           db_name="mysite")
    restore = snapshot_commands(site, str(snapshot))[1]
    done = subprocess.run(["sh", "-c", restore], capture_output=True, text=True, timeout=20,
                          env={"PATH": f"{fake}:/usr/bin:/bin", "SNAPSHOT": str(snapshot), "LOG": str(log),
                               "TRUNCATED": "yes" if case == "truncated" else "no"})
    committed = log.read_text() if log.exists() else ""
    if case == "whole":
        assert done.returncode == 0, done.stderr
        assert committed.startswith("DROP OWNED BY CURRENT_USER;") and "INSERT INTO notes" in committed
    else:
        assert done.returncode != 0
        assert "DROP OWNED" not in committed  # nothing dropped: psql never ran, or rolled it all back
    if case == "missing":
        assert committed == "" and f"the snapshot {snapshot} cannot be read by pg_restore" in done.stderr


def test_a_link_the_app_plants_for_its_database_reaches_nothing_root_alone_may_touch(tmp_path):
    """The database's folder is the app's: a link it puts in the database's place (to a file or a
    database only root may read or write) is opened with the app's rights only."""
    private = tmp_path / "root-only.sqlite3"  # pytest's tmp_path: root's alone
    _write(private, "CREATE TABLE secrets (text)", "INSERT INTO secrets VALUES ('root only')")
    private.chmod(0o600)
    before = private.read_bytes()
    with app_folder() as db_dir:
        database, snapshot = db_dir / "app.sqlite3", tmp_path / "v1.sqlite3"
        database.symlink_to(private)
        as_app(lambda: _write(db_dir / "other.sqlite3", "CREATE TABLE t (x)"))
        site = SimpleNamespace(database="sqlite", sqlite_path=str(database), as_app_user=APP_USER)
        take, restore = snapshot_commands(site, str(snapshot))
        sh(take)  # the app cannot open what the link points at: to it, there is no database
        assert b"root only" not in snapshot.read_bytes()
        snapshot.write_bytes((db_dir / "other.sqlite3").read_bytes())
        assert sh(restore).returncode != 0
    assert private.read_bytes() == before


def _write(database, *statements: str) -> None:
    with sqlite3.connect(database) as db:
        for statement in statements:
            db.execute(statement)
    db.close()


def as_app(write) -> None:
    """Run `write` in a child process with the stand-in app user's rights (files it makes are the app's)."""
    child = os.fork()
    if child == 0:
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            write()
        finally:
            os._exit(0)
    os.waitpid(child, 0)


FAKE_MANAGE = """#!/bin/sh
# Stands in for bin/manage: `migrate <app> <target> --plan` prints $PLAN, the rest is recorded.
echo "$*" >> "$LOG"
case "$*" in *--plan) printf '%s\\n' "$PLAN";; esac
"""


def migrate_back(tmp_path, plan: str, restore_snapshot: str | None) -> tuple[subprocess.CompletedProcess, list]:
    manage, log = tmp_path / "manage", tmp_path / "log"
    manage.write_text(FAKE_MANAGE)
    manage.chmod(0o755)
    log.write_text("")
    command = migrate_back_command(str(manage), [("notes", "0001_initial"), ("it's", "zero")], restore_snapshot,
                                   "/s/v2.dump")
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "LOG": str(log), "PLAN": plan})
    return done, log.read_text().splitlines()


def test_migrating_back_runs_the_planned_steps_in_order(tmp_path):
    done, ran = migrate_back(tmp_path, "Planned operations:\n  Remove field mood from note", None)
    assert done.returncode == 0, done.stderr
    assert ran == ["migrate notes 0001_initial --plan", "migrate it's zero --plan",
                   "migrate notes 0001_initial --noinput", "migrate it's zero --noinput"]


def test_an_irreversible_migration_refuses_or_restores_the_snapshot_when_asked(tmp_path):
    plan = "Planned operations:\n  Raw SQL operation -> IRREVERSIBLE"
    refused, ran = migrate_back(tmp_path, plan, None)
    assert refused.returncode == 1 and "cannot roll back" in refused.stderr and "IRREVERSIBLE" in refused.stderr
    assert "rollback_restore_snapshot=true" in refused.stderr
    assert not any(line.endswith("--noinput") for line in ran)
    restored, ran = migrate_back(tmp_path, plan, f"echo restored >> {tmp_path / 'log'}")
    assert restored.returncode == 0 and "writes since it was taken are lost" in restored.stderr
    assert ran[-1] == "restored" and not any(line.endswith("--noinput") for line in ran)


FAKE_UV = """#!/bin/sh
# Stands in for uv: `uv venv ... PATH` makes the folder and a python that prints its version; it
# records its arguments and UV_PYTHON_INSTALL_DIR, and fails for Python 3.99 (none to be had).
echo "$UV_PYTHON_INSTALL_DIR $*" >> "$(dirname "$0")/uv.log"
case "$*" in *"--python 3.99 "*) echo "error: No download found for request: cpython-3.99" >&2; exit 2;; esac
if [ "$1" = venv ]; then
    for last; do :; done
    mkdir -p "$last/bin" && printf '#!/bin/sh\\necho Python 3.11.2\\n' > "$last/bin/python" && chmod +x "$last/bin/python"
fi
"""


def build_venv(tmp_path, install: list[str], env: dict | None = None, python: str = "/usr/bin/python3",
               python_install_dir: str | None = None) -> tuple[subprocess.CompletedProcess, Path]:
    uv, venv = tmp_path / "uv", tmp_path / "venvs" / "abc"
    uv.write_text(FAKE_UV)
    uv.chmod(0o755)
    command = " && ".join(virtualenv_commands(str(venv), python, str(uv), install, env, python_install_dir))
    return sh(command), venv


def test_a_python_version_is_found_or_installed_by_uv_into_the_project(tmp_path):
    done, venv = build_venv(tmp_path, ["true"], env={"https_proxy": "http://proxy:3128"}, python="3.12",
                            python_install_dir=str(tmp_path / "it's python"))
    assert done.returncode == 0, done.stderr
    assert (venv / ".complete").exists()
    # The host's interpreter first; uv installs (through the proxy) into the project's folder.
    assert (tmp_path / "uv.log").read_text() == (
        f"{tmp_path}/it's python venv --quiet --python-preference system --no-project --python 3.12 {venv}\n")


def test_a_python_version_uv_cannot_provide_is_one_clear_error(tmp_path):
    done, venv = build_venv(tmp_path, ["touch never"], python="3.99", python_install_dir=str(tmp_path / "python"))
    assert done.returncode == 1 and not (venv / ".complete").exists()
    assert "No download found for request: cpython-3.99" in done.stderr
    assert done.stderr.rstrip().endswith(
        "python_interpreter: Python 3.99 is not on this host, and uv could not install it (its error is above)")
    assert not (tmp_path / "never").exists()


def test_a_virtualenv_is_complete_only_when_every_install_command_succeeded(tmp_path):
    done, venv = build_venv(tmp_path, ["echo first > \"$OUT\"", "false || echo second >> \"$OUT\""],
                            env={"OUT": str(tmp_path / "out"), "https_proxy": "http://proxy:3128"})
    assert done.returncode == 0, done.stderr
    assert (venv / ".complete").exists() and not (venv / ".install.log").exists()
    # Compound commands run whole (an `a || b` is not cut by the wrapper), with the environment.
    assert (tmp_path / "out").read_text().split() == ["first", "second"]


def test_a_failing_install_shows_its_output_and_names_a_python_mismatch(tmp_path):
    done, venv = build_venv(tmp_path, ["echo 'the current Python version (3.11.2) does not satisfy Python>=3.12'; "
                                       "exit 1", "touch never"])
    assert done.returncode == 1 and not (venv / ".complete").exists()
    assert done.stderr.startswith("the dependencies need another Python than /usr/bin/python3 (Python 3.11.2)")
    assert "does not satisfy Python>=3.12" in done.stderr
    assert not (tmp_path / "never").exists()


def test_a_config_is_installed_only_if_its_test_accepts_it(tmp_path):
    staged, dest = tmp_path / "staged.conf", tmp_path / "site.conf"
    accepts = f"grep -q good {dest}"
    dest.write_text("old good\n")
    staged.write_text("new good\n")
    assert sh(install_config_command(str(staged), str(dest), accepts)).returncode == 0
    assert dest.read_text() == "new good\n" and not (tmp_path / "site.conf.previous").exists()
    assert oct(dest.stat().st_mode & 0o777) == "0o644"
    # Rejected: the one before stays, the staged copy goes (so the next run renders and tries again).
    staged.write_text("new bad\n")
    rejected = sh(install_config_command(str(staged), str(dest), accepts))
    assert rejected.returncode == 1 and f"the webserver rejected the new {dest}" in rejected.stderr
    assert dest.read_text() == "new good\n" and not staged.exists()
    # Rejected with none before: none after.
    dest.unlink()
    staged.write_text("new bad\n")
    assert sh(install_config_command(str(staged), str(dest), accepts)).returncode == 1 and not dest.exists()


def test_folders_are_made_and_set_right_in_one_command(tmp_path):
    import grp
    import pwd

    from deploys.djangoapp.core.host_state import FolderStates, folders_command

    user, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    root = tmp_path / "it's a root"
    layout = [(str(root), user, group, "755"), (str(root / "snapshots"), user, group, "700"),
              (str(root / "shared" / "db"), user, group, "750")]
    fact = FolderStates()

    def states() -> dict:
        return fact.process(sh(fact.command([path for path, *_ in layout])).stdout.splitlines())

    assert states() == {}
    assert sh(folders_command(layout)).returncode == 0
    assert states() == {path: (owner, grp_, mode) for path, owner, grp_, mode in layout}
    (root / "snapshots").chmod(0o755)  # changed by hand: set right again, the others left alone
    assert states()[str(root / "snapshots")] == (user, group, "755")
    assert sh(folders_command([layout[1]])).returncode == 0
    assert states()[str(root / "snapshots")] == (user, group, "700")
    (root / "a file").write_text("")
    assert sh(folders_command([(str(root / "a file"), user, group, "755")])).returncode != 0


def test_a_postgresql_snapshot_is_taken_as_the_projects_role_with_the_password_from_the_secrets(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "pg_dump").write_text('#!/bin/sh\necho "$PGHOST $PGPORT $PGUSER $PGDATABASE $PGPASSWORD $*" >&2\n'
                                  'printf "PGDMP dump of %s" "$PGDATABASE"\n')
    # The secrets loader puts the password in the environment of what it runs, nowhere else.
    (fake / "with-secrets").write_text('#!/bin/sh\nDJANGO_DB_PASSWORD="it\'s secret" exec "$@"\n')
    for tool in fake.iterdir():
        tool.chmod(0o755)
    snapshot = tmp_path / "v1.dump"
    site = SimpleNamespace(database="postgresql", secrets_loader=str(fake / "with-secrets"), database_host="10.0.0.3",
                           db_name="my_site")
    take = snapshot_commands(site, str(snapshot))[0]
    assert "it's secret" not in take
    done = subprocess.run(["sh", "-c", take], capture_output=True, text=True, timeout=20,
                          env={"PATH": f"{fake}:/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stderr == "10.0.0.3 5432 my_site my_site it's secret -Fc\n"
    assert snapshot.read_text() == "PGDMP dump of my_site"


def test_the_interpreter_facts_read_its_version_or_none(tmp_path):
    def read(fact, *args):
        output = subprocess.run(["sh", "-c", fact.command(*args)], capture_output=True, text=True, check=True).stdout
        return fact.process(output.splitlines())

    running = "%d.%d.%d" % sys.version_info[:3]
    assert read(PythonVersion(), sys.executable) == running
    assert read(PythonVersion(), str(tmp_path / "no python here")) is None
    uv = str(Path(sys.executable).parent / "uv")
    wanted = "%d.%d" % sys.version_info[:2]
    # uv finds the host's own interpreter of that version first (system preference).
    found = read(UvPythonVersion(), uv, wanted, str(tmp_path / "uv-pythons"))
    assert found and found.startswith(wanted + "."), found
    assert read(UvPythonVersion(), uv, "2.1", str(tmp_path / "uv-pythons")) is None
    assert read(UvPythonVersion(), str(tmp_path / "no uv"), wanted, str(tmp_path / "uv-pythons")) is None
