"""nginx + PostgreSQL + Celery (worker and beat) + Redis + memcached on a bare host (Debian 12 and 13): the page over HTTPS, a
Celery task started through the app shows up in it, services and file modes are right, secrets
arrive intact everywhere and appear nowhere else, and a second run changes nothing."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time

import pytest
import requests
import testinfra

from tests import fleet
from tests.conftest import https_get, run_pyinfra
from tests.e2e.conftest import (
    DEPLOYED_FILES,
    assert_owners_and_modes,
    under_load,
    wait_for_task_note,
    world_readable_files_containing,
)
from tests.e2e.sources import RUNS_PYTHON, example_source

pytestmark = pytest.mark.e2e

CANARY = "canary-7f3a"
# Quotes, $, #, spaces, a backslash and a newline: all must arrive as given.
SECRET_VALUE = f"{CANARY} it's \"quoted\" $HOME #not-a-comment \\n\nsecond line"
SECRETS = {
    "DJANGO_SECRET_KEY": "full-stack-test-key-8c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d",
    "DJANGO_DB_PASSWORD": f"pg-{CANARY}-'pass\" word$",
    "CANARY_SECRET": SECRET_VALUE,
}
FULL_STACK = {"database": "postgresql", "celery": True, "celery_beat": True, "memcached": True,
              "django_environment_variables": SECRETS}
ROOT = "/srv/www/guestbook"


def process_environment(host, pattern: str) -> bytes:
    """The raw environment of the oldest process whose command line matches `pattern`."""
    pid = host.exec(f"pgrep -o -f {pattern!r}").stdout.strip()
    return host.exec(f"cat /proc/{pid}/environ | base64 -w0").stdout.encode()


def postgres(host, sql: str) -> str:
    return host.exec(f"runuser -u postgres -- psql -d guestbook -tAc {sql!r}").stdout.strip()


def assert_failed_migrations_leave_no_trace(host, fleet_file, tmp_path):
    """On PostgreSQL, migrations that committed before one failed are undone: migrated back when
    each ran in a transaction, the snapshot restored when the failing one did not; and the
    migration gate refuses a release that drops a column the live release reads, under load; a
    statement that runs longer than migration_statement_timeout is stopped; under
    migration_safety = "maintenance" the drop goes live behind the maintenance page."""
    manage = f"{ROOT}/bin/manage"
    applied = postgres(host, "SELECT name FROM django_migrations WHERE app = 'guestbook' ORDER BY id")
    host.exec(f"{manage} add_note 'written before'")
    # 0003_tag commits its table, then 0004 fails: 0003 is migrated back, no snapshot restored.
    failed = run_pyinfra(fleet_file, "deploys/release.py", data={
        "django_source_dir": example_source(tmp_path / "v4", "v4", tag_table=True, failing_migration=True),
        "release_id": "v4", "allow_unsafe_migrations": RUNS_PYTHON})
    assert failed.returncode != 0
    assert "this migration fails on purpose" in failed.output
    assert "those that had run were migrated back to the live release's state" in failed.output
    assert "restored from the snapshot" not in failed.output
    assert postgres(host, "SELECT to_regclass('guestbook_tag') IS NULL") == "t"
    assert postgres(host, "SELECT name FROM django_migrations WHERE app = 'guestbook' ORDER BY id") == applied
    # Outside a transaction, 0003_half's table stays when it fails: the snapshot comes back, and
    # the run says since when writes are lost.
    half = run_pyinfra(fleet_file, "deploys/release.py", data={
        "django_source_dir": example_source(tmp_path / "v4-half", "v4", half_done_migration=True),
        "release_id": "v4-half", "allow_unsafe_migrations": RUNS_PYTHON})
    assert half.returncode != 0
    assert "this migration fails on purpose, half done" in half.output
    assert "guestbook.0003_half runs outside a transaction" in half.output
    assert "the database was restored from the snapshot" in half.output
    assert "what the site wrote since then is lost" in half.output
    assert postgres(host, "SELECT to_regclass('guestbook_half') IS NULL") == "t"
    assert postgres(host, "SELECT name FROM django_migrations WHERE app = 'guestbook' ORDER BY id") == applied
    assert "written before" in https_get(host, "/").text
    assert https_get(host, "/").headers["X-Release-Id"] == "v3"
    # The migration gate on PostgreSQL: dropping the column v3 reads is refused, the column kept,
    # no request failing.
    v4_drop = example_source(tmp_path / "v4-drop", "v4", mood_dropped=True)
    with under_load(host, limit=2000) as answers:
        refused = run_pyinfra(fleet_file, "deploys/release.py", data={"django_source_dir": v4_drop,
                                                                      "release_id": "v4-drop"})
    assert refused.returncode != 0
    assert answers and set(answers) == {200}, answers
    assert "guestbook.0003_remove_mood: Remove field mood from note: drops the column guestbook_note.mood" \
        in refused.output
    assert postgres(host, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'guestbook_note' "
                          "AND column_name = 'mood'") == "1"
    assert postgres(host, "SELECT name FROM django_migrations WHERE app = 'guestbook' ORDER BY id") == applied
    # A statement running longer than migration_statement_timeout is stopped, not tried again.
    long = run_pyinfra(fleet_file, "deploys/release.py", data={
        "django_source_dir": example_source(tmp_path / "v4-long", "v4", long_statement=True), "release_id": "v4-long",
        "migration_statement_timeout": 1})
    assert long.returncode != 0
    assert "canceling statement due to statement timeout" in long.output
    assert "a migration statement ran longer than 1 s (migration_statement_timeout) and was stopped" in long.output
    assert "trying again" not in long.output
    assert postgres(host, "SELECT name FROM django_migrations WHERE app = 'guestbook' ORDER BY id") == applied
    assert https_get(host, "/").headers["X-Release-Id"] == "v3"
    # With migration_safety = "maintenance" the drop goes live behind the maintenance page: every
    # answer meanwhile a 200 or the page's 503.
    with under_load(host, limit=2000) as answers:
        behind_page = run_pyinfra(fleet_file, "deploys/release.py", data={
            "django_source_dir": v4_drop, "release_id": "v4-drop", "migration_safety": "maintenance"})
    assert behind_page.returncode == 0, behind_page.output
    assert answers and set(answers) <= {200, 503}, answers
    assert "migration_safety=maintenance: the maintenance page is up on every web host while they run" \
        in behind_page.output
    assert postgres(host, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'guestbook_note' "
                          "AND column_name = 'mood'") == "0"
    assert https_get(host, "/").headers["X-Release-Id"] == "v4-drop"


@pytest.mark.long(minutes=4)
@pytest.mark.parametrize("suite", ["bookworm", "trixie"])
def test_nginx_postgresql_celery_redis(start_hosts, suite, tmp_path):
    (host,), fleet_file = start_hosts("web1", image=fleet.ensure_image(suite), data=FULL_STACK)
    outputs = []

    first = run_pyinfra(fleet_file, "deploys/all.py")
    outputs.append(first.output)
    assert first.returncode == 0, first.output

    page = https_get(host, "/")
    assert page.status_code == 200 and "<h1>Guestbook</h1>" in page.text
    vendor = host.exec(f"{ROOT}/bin/manage shell -v0 -c 'from django.db import connection; "
                       "connection.ensure_connection(); print(connection.vendor)'").stdout.strip()
    assert vendor == "postgresql"

    # A task started through the app runs on the worker and its note shows up on the page.
    wait_for_task_note(host, host, "hello from celery", worker=host)
    # It logs into Redis as the default user (no REDIS_PASSWORD, Redis on the loopback alone),
    # which may do what Celery does but nothing that acts on the whole server.
    for command in ("FLUSHALL", "CONFIG SET maxmemory 1", "ACL SETUSER default on nopass +@all", "ACL LIST",
                    "SHUTDOWN NOSAVE"):
        assert "NOPERM" in host.exec(f"redis-cli {command} 2>&1", check=False).stdout, command
    # The app caches in memcached (CACHE_URL): a second request finds what the first stored.
    assert https_get(host, "/cache/").headers["X-Cache"] == "miss"
    assert https_get(host, "/cache/").headers["X-Cache"] == "hit"
    assert "get_hits 1" in host.exec("exec 3<>/dev/tcp/127.0.0.1/11211; printf 'stats\\r\\nquit\\r\\n' >&3; cat <&3")\
        .stdout.replace("STAT ", "").replace("\r", "")

    system = testinfra.get_host(f"docker://{host.container}")
    for service in ("nginx", "uwsgi-guestbook", "postgresql", "redis-server", "memcached", "celery-guestbook",
                    "celery-beat-guestbook"):
        assert system.service(service).is_running, service
        assert system.service(service).is_enabled, service
    assert_owners_and_modes(system, [*DEPLOYED_FILES,
                                     ("/etc/systemd/system/celery-guestbook.service", "root", "root", 0o644)])
    assert system.run("nginx -t").rc == 0

    # The secrets, exactly as given, in manage.py, the uWSGI workers and the Celery worker.
    echoed = host.exec(f"{ROOT}/bin/manage shell -v0 -c 'import os; print(repr(os.environ[\"CANARY_SECRET\"]))'")
    assert echoed.stdout.strip() == repr(SECRET_VALUE)
    expected = f"CANARY_SECRET={SECRET_VALUE}\0".encode()
    for pattern in ("uwsgi --ini", "celery --app"):
        assert expected in base64.b64decode(process_environment(host, pattern)), pattern

    second = run_pyinfra(fleet_file, "deploys/all.py")
    outputs.append(second.output)
    assert second.returncode == 0 and second.changed() == [], second.output

    # A changed environment reaches Celery's worker and beat: they restart with it.
    probe = run_pyinfra(fleet_file, "deploys/skeleton.py", data={
        "django_webapplication_additional_environment_settings": json.dumps({"PROBE_FLAG": "celery sees me"})})
    assert probe.returncode == 0, probe.output
    for service in ("celery-guestbook", "celery-beat-guestbook"):
        environ = host.exec(f"tr '\\0' '\\n' < /proc/$(systemctl show -p MainPID --value {service})/environ").stdout
        assert "PROBE_FLAG=celery sees me" in environ.splitlines(), service

    # No secret in what pyinfra prints, whatever the flags, nor in any world-readable file.
    verbose = run_pyinfra(fleet_file, "deploys/all.py", extra=("-vvv",))
    outputs.append(verbose.output)
    changed_secret = {**SECRETS, "CANARY_SECRET": f"{CANARY}-changed"}
    dry = run_pyinfra(fleet_file, "deploys/all.py", extra=("--dry", "--diff"),
                      data={"django_environment_variables": json.dumps(changed_secret)})
    outputs.append(dry.output)
    assert dry.returncode == 0, dry.output
    assert "Secrets in /srv/www/guestbook/secrets.py" in dry.output
    for output in outputs:
        assert CANARY not in output
    assert world_readable_files_containing(host, CANARY) == []
    # --dry changed nothing: the old secret is still in place.
    assert host.exec(f"grep -c {CANARY}-changed {ROOT}/secrets.py", check=False).stdout.strip() == "0"

    # Warm shutdown: a task still running when a release restarts the worker finishes first.
    worker_pid = host.exec("systemctl show -p MainPID --value celery-guestbook").stdout.strip()
    received = "journalctl -u celery-guestbook -o cat --no-pager | grep -c 'write_note.*received'"
    before = int(host.exec(received, check=False).stdout.strip() or 0)
    started = requests.post(f"https://127.0.0.1:{host.https_port}/tasks/note/", data={"text": "slow task", "delay": 8},
                            headers={"Host": "localhost"}, verify=False, timeout=10)
    assert started.status_code == 202
    deadline = time.monotonic() + 30
    while int(host.exec(received, check=False).stdout.strip() or 0) == before:  # the worker has taken it
        assert time.monotonic() < deadline, "the worker did not receive the slow task"
        time.sleep(0.5)
    released = run_pyinfra(fleet_file, "deploys/release.py",
                           data={"django_source_dir": example_source(tmp_path / "v2", "v2"), "release_id": "v2"})
    assert released.returncode == 0, released.output
    assert "slow task <small>(task@web1)</small>" in https_get(host, "/").text
    assert host.exec("systemctl show -p MainPID --value celery-guestbook").stdout.strip() != worker_pid

    if suite == "bookworm":  # once: what it shows is PostgreSQL's, the same on both
        # A session holding a lock on the notes' table (a long query, a pg_dump): the migration
        # that alters it gives up after migration_lock_timeout (2 s) instead of making every
        # query of the site on that table queue behind its ALTER until the session ends.
        holder = subprocess.Popen(
            ["docker", "exec", host.container, "runuser", "-u", "postgres", "--", "psql", "-d", "guestbook", "-c",
             "BEGIN; LOCK TABLE guestbook_note IN ACCESS SHARE MODE; SELECT pg_sleep(60); COMMIT;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        seconds: list[float] = []  # how long each request took while the release ran
        try:
            time.sleep(2)
            with under_load(host, limit=2000, seconds=seconds) as answers:
                waited = run_pyinfra(fleet_file, "deploys/release.py", data={
                    "django_source_dir": example_source(tmp_path / "v3", "v3", mood_migration=True),
                    "release_id": "v3"})
        finally:
            holder.kill()
            host.exec("runuser -u postgres -- psql -d guestbook -c "
                      "\"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' "
                      "AND pid <> pg_backend_pid()\"", check=False)
        assert waited.returncode != 0
        assert "a migration waited more than 2 s (migration_lock_timeout) for a lock another session holds" \
            in waited.output
        assert "the database undid the one that failed: it is as it was" in waited.output
        # What held it: the psql session of another role, named by its role and program.
        assert re.search(r"session \d+ of postgres \(psql\): what it does is not shown to the app's role",
                         waited.output), waited.output
        # Queries on the table queued behind the ALTER for at most its 2 s, then went on.
        assert answers and set(answers) == {200}, answers
        assert max(seconds) < 5, seconds
        assert https_get(host, "/").headers["X-Release-Id"] == "v2"
        # Once the session ended, the same release (a column added) goes through, no request failing.
        with under_load(host, limit=2000) as answers:
            again = run_pyinfra(fleet_file, "deploys/release.py", data={
                "django_source_dir": example_source(tmp_path / "v3-again", "v3", mood_migration=True),
                "release_id": "v3"})
        assert again.returncode == 0, again.output
        assert answers and set(answers) == {200}, answers
        assert_failed_migrations_leave_no_trace(host, fleet_file, tmp_path)

    # Turned off, Celery (worker and beat) and memcached leave nothing behind; the site serves on.
    off = run_pyinfra(fleet_file, "deploys/all.py", data={"celery": False, "celery_beat": False, "memcached": False})
    assert off.returncode == 0, off.output
    for service in ("celery-guestbook", "celery-beat-guestbook", "memcached"):
        assert not system.service(service).is_running, service
    assert not system.file("/etc/systemd/system/celery-guestbook.service").exists
    assert not system.file("/etc/systemd/system/celery-beat-guestbook.service").exists
    assert not system.package("memcached").is_installed
    assert https_get(host, "/").status_code == 200

