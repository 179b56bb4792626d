"""Rollback (data kept where migrations can be undone), rollback to a chosen release, irreversible
migrations, restart, status, and remove next to a second project on the same host."""

from __future__ import annotations

import threading
import time

import pytest

from tests.conftest import https_get, run_pyinfra
from tests.e2e.conftest import APP_USER, history, live_release, manage, under_load, wait_for_new_workers
from tests.e2e.sources import RUNS_PYTHON, example_source

pytestmark = pytest.mark.e2e

ROOT = "/srv/www/guestbook"


def release(fleet_file, source_dir, release_id, **data):
    result = run_pyinfra(fleet_file, "deploys/release.py",
                         data={"django_source_dir": str(source_dir), "release_id": release_id, **data})
    assert result.returncode == 0, result.output
    return result


def rollback(fleet_file, **data):
    return run_pyinfra(fleet_file, "deploys/rollback.py", data=data)


def note_columns(host) -> list[str]:
    out = host.exec(f"sqlite3 {ROOT}/shared/db/guestbook.sqlite3 'PRAGMA table_info(guestbook_note)'").stdout
    return [line.split("|")[1] for line in out.splitlines()]


def sqlite(host, statement: str) -> str:
    """`statement` run on the site's database with the app's rights (as the site writes)."""
    return host.exec(f"runuser -u {APP_USER} -- sqlite3 {ROOT}/shared/db/guestbook.sqlite3 \"{statement}\"",
                     check=False).stdout.strip()


def test_rollback_undoes_the_migration_and_keeps_rows_written_since(live_host, tmp_path):
    """v2 adds a column (guestbook_note.mood) and a table (guestbook_tag), and the site writes into
    both. Migrating back drops them: a plain rollback refuses before any change, naming each with
    its rows; a --dry run says what would go; told it may, the rollback drops them, saying so, and
    keeps every row of the tables v1 has."""
    host, fleet_file = live_host
    v1 = live_release(host)
    release(fleet_file, example_source(tmp_path / "v2", "v2", tag_table=True), "v2")
    manage(host, "add_note", "'written under v2'")
    sqlite(host, "INSERT INTO guestbook_tag (name) VALUES ('red'), ('blue')")
    assert "mood" in note_columns(host)

    refused = rollback(fleet_file)
    assert refused.returncode != 0
    named = ("table guestbook_tag (2 rows, guestbook.0003_tag); "
             "column guestbook_note.mood (1 row, guestbook.0002_note_mood)")
    assert (f"migrating back to release {v1} drops data: {named}; run with --data rollback_drop_data=guestbook "
            "to drop it; nothing was changed") in refused.output, refused.output
    assert refused.results == {} and live_release(host) == "v2"
    assert https_get(host, "/").headers["X-Release-Id"] == "v2"
    assert "mood" in note_columns(host) and sqlite(host, "SELECT name FROM guestbook_tag ORDER BY id") == "red\nblue"
    assert host.exec(f"test -d {ROOT}/.deploy-lock", check=False).returncode != 0

    preview = run_pyinfra(fleet_file, "deploys/rollback.py", data={"rollback_drop_data": "guestbook"},
                          extra=("--dry",))
    assert preview.returncode == 0, preview.output
    assert f"rollback_drop_data: migrating back to release {v1} drops {named}" in preview.output
    assert live_release(host) == "v2" and sqlite(host, "SELECT COUNT(*) FROM guestbook_tag") == "2"

    back = rollback(fleet_file, rollback_drop_data="guestbook")
    assert back.returncode == 0, back.output
    assert f"rollback_drop_data: migrating back to release {v1} drops {named}" in back.output
    assert live_release(host) == v1
    page = https_get(host, "/")
    assert page.headers["X-Release-Id"] == v1 and "written under v2" in page.text
    assert "mood" not in note_columns(host)
    assert sqlite(host, "SELECT name FROM sqlite_master WHERE name = 'guestbook_tag'") == ""
    statuses = {entry["id"]: entry["status"] for entry in history(host)}
    assert statuses == {v1: "live", "v2": "rolled-back"}
    assert host.exec(f"test -d {ROOT}/.deploy-lock", check=False).returncode != 0

    # Nothing older than v1: a clear refusal, nothing changed.
    again = rollback(fleet_file)
    assert again.returncode != 0
    assert "no earlier good release to roll back to; nothing was changed" in again.output
    assert again.results == {} and live_release(host) == v1

    # A new release after a rollback, then a plain rollback skips the rolled-back v2.
    release(fleet_file, example_source(tmp_path / "v3", "v3"), "v3")
    back = rollback(fleet_file)
    assert back.returncode == 0, back.output
    assert live_release(host) == v1


def test_rollback_to_a_chosen_release(live_host, tmp_path):
    host, fleet_file = live_host
    v1 = live_release(host)
    release(fleet_file, example_source(tmp_path / "v2", "v2"), "v2")
    release(fleet_file, example_source(tmp_path / "v3", "v3"), "v3")

    unknown = rollback(fleet_file, rollback_to="nope")
    assert unknown.returncode != 0 and "rollback_to: nope is not a release older than the live one" in unknown.output
    assert live_release(host) == "v3"

    # A rollback planned from v3 while another deploy holds the lock, which makes v2 live before it
    # lets go: once the rollback holds the lock it sees the live release changed, and changes nothing.
    host.exec(f"mkdir {ROOT}/.deploy-lock && echo other-run > {ROOT}/.deploy-lock/token && "
              f"echo '{{\"operator\": \"someone else\"}}' > {ROOT}/.deploy-lock/holder.json")
    outcome = []
    waiting = threading.Thread(target=lambda: outcome.append(rollback(fleet_file, lock_wait=120)))
    waiting.start()
    deadline = time.monotonic() + 120
    while not host.exec(f"ls -d {ROOT}/.deploy-lock.taking.* 2>/dev/null", check=False).stdout.strip():
        assert waiting.is_alive() and time.monotonic() < deadline, outcome and outcome[0].output
        time.sleep(0.5)  # until the rollback waits for the lock
    host.exec(f"ln -sfn {ROOT}/releases/v2 {ROOT}/current.other && mv -Tf {ROOT}/current.other {ROOT}/current && "
              f"rm -rf {ROOT}/.deploy-lock")
    waiting.join(timeout=300)
    (moved,) = outcome
    assert moved.returncode != 0 and "the live release changed while this run was being planned" in moved.output, \
        moved.output
    assert live_release(host) == "v2"  # as the other deploy left it
    assert host.exec(f"test -e {ROOT}/releases/v3/.rolled-back", check=False).returncode != 0
    assert host.exec(f"test -e {ROOT}/.deploy-lock", check=False).returncode != 0
    host.exec(f"ln -sfn {ROOT}/releases/v3 {ROOT}/current.other && mv -Tf {ROOT}/current.other {ROOT}/current")

    back = rollback(fleet_file, rollback_to=v1)
    assert back.returncode == 0, back.output
    assert live_release(host) == v1
    assert https_get(host, "/").headers["X-Release-Id"] == v1
    stylesheet = https_get(host, "/static/guestbook/site.css")
    assert "guestbook stylesheet v1" in stylesheet.text


def test_irreversible_migration_refuses_then_restores_the_snapshot(live_host, tmp_path):
    host, fleet_file = live_host
    v1 = live_release(host)
    manage(host, "add_note", "'before v2'")
    release(fleet_file, example_source(tmp_path / "v2", "v2", irreversible_migration=True), "v2",
            allow_unsafe_migrations=RUNS_PYTHON)
    manage(host, "add_note", "'after v2'")

    refused = rollback(fleet_file)
    assert refused.returncode != 0
    assert "cannot roll back: these migrations cannot be undone" in refused.output
    assert "IRREVERSIBLE" in refused.output and "rollback_restore_snapshot=true" in refused.output
    assert live_release(host) == "v2" and "mood" in note_columns(host)
    assert https_get(host, "/").status_code == 200
    assert host.exec(f"test -d {ROOT}/.deploy-lock", check=False).returncode != 0

    restored = rollback(fleet_file, rollback_restore_snapshot="true")
    assert restored.returncode == 0, restored.output
    assert "writes since it was taken are lost" in restored.output
    assert live_release(host) == v1
    page = https_get(host, "/")
    assert "before v2" in page.text and "after v2" not in page.text
    assert "mood" not in note_columns(host)


def uwsgi_processes(host) -> tuple[str, set[str]]:
    """The uWSGI master's PID and its workers' PIDs."""
    master = host.exec("systemctl show -p MainPID --value uwsgi-guestbook").stdout.strip()
    return master, set(host.exec(f"pgrep -P {master}", check=False).stdout.split())


def test_restart_and_status(live_host):
    host, fleet_file = live_host
    v1 = live_release(host)
    master, workers = uwsgi_processes(host)
    socket = host.exec("stat -c %i /run/uwsgi-guestbook.sock").stdout.strip()
    with under_load(host, limit=600) as answers:
        restarted = run_pyinfra(fleet_file, "deploys/restart.py")
        wait_for_new_workers(lambda: uwsgi_processes(host), workers)
    assert restarted.returncode == 0, restarted.output
    assert uwsgi_processes(host)[0] == master  # the same master kept
    assert host.exec("stat -c %i /run/uwsgi-guestbook.sock").stdout.strip() == socket  # and its socket
    assert answers and set(answers) == {200}, answers
    assert https_get(host, "/").headers["X-Release-Id"] == v1

    before = host.exec(f"find {ROOT} -printf '%p %s %T@\\n' | sort").stdout
    shown = run_pyinfra(fleet_file, "deploys/status.py")
    assert shown.returncode == 0, shown.output
    assert f"* {v1}" in shown.output and "deploy lock: free" in shown.output
    assert "disk use:" in shown.output and f"{ROOT}/venvs" in shown.output
    assert host.exec(f"find {ROOT} -printf '%p %s %T@\\n' | sort").stdout == before


def test_remove_leaves_a_second_project_serving(live_host, tmp_path):
    host, fleet_file = live_host
    second = {"websiteproject": "second", "url": "second.localhost"}
    deployed = run_pyinfra(fleet_file, "deploys/all.py", data=second)
    assert deployed.returncode == 0, deployed.output
    assert https_get(host, "/", server_name="second.localhost").status_code == 200
    assert https_get(host, "/").status_code == 200

    unconfirmed = run_pyinfra(fleet_file, "deploys/remove.py")
    assert unconfirmed.returncode != 0 and "confirm_remove=guestbook" in unconfirmed.output
    assert host.exec(f"test -d {ROOT}", check=False).returncode == 0

    removed = run_pyinfra(fleet_file, "deploys/remove.py", data={"confirm_remove": "guestbook"})
    assert removed.returncode == 0, removed.output
    assert "Final backup of the database: /var/backups/django-deploy/guestbook-" in removed.output
    backups = host.exec("ls /var/backups/django-deploy").stdout.split()
    assert len(backups) == 1 and backups[0].endswith(".sqlite3")
    for gone in (ROOT, "/etc/systemd/system/uwsgi-guestbook.service", "/etc/nginx/sites-enabled/guestbook.conf",
                 "/etc/nginx/ssl/guestbook.key", "/etc/uwsgi/apps-available/guestbook.ini"):
        assert host.exec(f"test -e {gone}", check=False).returncode != 0, gone
    assert host.exec("systemctl is-active uwsgi-guestbook", check=False).stdout.strip() != "active"

    page = https_get(host, "/", server_name="second.localhost")
    assert page.status_code == 200 and "<h1>Guestbook</h1>" in page.text

    # Removing again finds nothing to do.
    again = run_pyinfra(fleet_file, "deploys/remove.py", data={"confirm_remove": "guestbook"})
    assert again.returncode == 0 and again.changed() == [], again.output
