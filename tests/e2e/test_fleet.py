"""A fleet of four hosts, each with its roles: web1 and web2 (nginx + uWSGI), worker1 (Celery) and
db1 (PostgreSQL + Redis, with a password), on a private network (the Docker network), plus a host outside the fleet.

Release v1 on bare hosts, v2 switched one web host at a time, a v3 that fails to build on web2 and
so switches nowhere, a rollback that fails on web2, then one that goes through: after each step both web hosts serve the same release; the
database migrates once, on web1; a task queued on web1 runs on worker1; PostgreSQL lets the
fleet's hosts in and refuses the outsider; logs.py merges both web hosts' lines; a scheduled
command runs on web1 alone."""

from __future__ import annotations

import json
import shlex
from dataclasses import replace
from pathlib import Path

import pytest

from tests import fleet
from tests.conftest import https_get, run_pyinfra
from tests.e2e.conftest import history, live_release, wait_for_task_note, world_readable_files_containing
from tests.e2e.sources import example_source

pytestmark = pytest.mark.e2e

ROOT = "/srv/www/guestbook"
SECRETS = {"DJANGO_SECRET_KEY": "fleet-test-key-5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b",
           "DJANGO_DB_PASSWORD": "fleet-db-password-3c4d",
           "REDIS_PASSWORD": "fleet-redis-password-7a8b9c"}
NOTES_SECRETS = {"DJANGO_SECRET_KEY": "notes-test-key-0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d",
                 "DJANGO_DB_PASSWORD": "notes-db-password-9f8e"}
NOTES_REDIS_PASSWORD = "notes-redis-password-1d2e3f"
# A scheduled command every five seconds: it runs on the migration host (web1) only.
PROJECT = {"database": "postgresql", "celery": True, "celery_beat": True, "django_environment_variables": SECRETS,
           "django_scheduled_commands": {"checks": {"command": "check", "schedule": "*:*:0/5"}}}

# A PostgreSQL StartupMessage (protocol 3.0, user and database guestbook), sent from a host with
# python3 alone: the first byte of the answer is "R" (the server asks for the password) when
# pg_hba.conf lets the address in, "E" (an error, "no pg_hba.conf entry") when it does not.
PG_PROBE = r"""
import socket, struct, sys
body = struct.pack("!i", 196608) + b"user\0guestbook\0database\0guestbook\0\0"
with socket.create_connection((sys.argv[1], 5432), timeout=5) as conn:
    conn.sendall(struct.pack("!i", len(body) + 4) + body)
    answer = conn.recv(4096)
print(answer[:1].decode(), answer[5:].decode(errors="replace").replace("\0", " "))
"""


# Redis without the password: the first command is refused.
REDIS_PROBE = r"""
import socket, sys
with socket.create_connection((sys.argv[1], 6379), timeout=5) as conn:
    conn.sendall(b"PING\r\n")
    print(conn.recv(4096).decode().strip())
"""


def probe(host: fleet.TestHost, script: str, address: str) -> str:
    """What `script` (PG_PROBE, REDIS_PROBE) prints when the host runs it against `address`."""
    return host.exec(f"python3 -c {shlex.quote(script)} {address}").stdout.strip()


def redis_login(host: fleet.TestHost, user: str, password: str, command: str = "ping") -> str:
    """What Redis on `host` answers to `command` (PING unless given) after logging in as `user`."""
    return host.exec(f"REDISCLI_AUTH={shlex.quote(password)} redis-cli --no-auth-warning --user {user} {command} "
                     "2>&1", check=False).stdout.strip()


def secret_of(host: fleet.TestHost, root: str, name: str) -> str:
    """The value of `name` in the project's secret file on `host`, as the app reads it."""
    return host.exec(f"python3 -c 'import runpy, sys; print(runpy.run_path(sys.argv[1])[sys.argv[2]])' "
                     f"{root}/secrets.py {name}").stdout.strip()


# What acts on the whole Redis, and so on every project sharing it: refused to a project's user.
SERVER_WIDE = ("FLUSHALL", "CONFIG SET maxmemory 1", "CONFIG GET requirepass", "ACL LIST", "SHUTDOWN NOSAVE",
               "ACL SETUSER default on")


def served_release(host: fleet.TestHost) -> str:
    return https_get(host, "/health/").headers.get("X-Release-Id", "")


@pytest.fixture
def four_hosts(start_hosts, fleet_key, tmp_path):
    """web1, web2, worker1, db1 (bare Debian 12) and a fleet file naming their roles and addresses."""
    hosts, _ = start_hosts(*fleet.FOUR_HOSTS)
    fleet.give_roles(hosts, fleet.FOUR_HOSTS, PROJECT)
    return {host.name: host for host in hosts}, fleet.write_fleet_file(tmp_path / "fleet4.json", fleet_key, hosts)


@pytest.mark.long(minutes=3)
def test_fleet_releases_switches_and_rolls_back_together(four_hosts, start_hosts, fleet_key, tmp_path):
    hosts, fleet_file = four_hosts
    web1, web2, worker1, db1 = hosts["web1"], hosts["web2"], hosts["worker1"], hosts["db1"]

    # v1 on bare hosts: each host gets what its roles need, no more.
    first = run_pyinfra(fleet_file, "deploys/all.py", data={"release_id": "v1"})
    assert first.returncode == 0, first.output
    assert served_release(web1) == served_release(web2) == "v1"
    assert live_release(worker1) == "v1"
    for host, running, absent in [
        (web1, ["nginx", "uwsgi-guestbook"], ["postgresql", "redis-server", "celery-guestbook"]),
        (worker1, ["celery-guestbook", "celery-beat-guestbook"], ["nginx", "postgresql", "redis-server"]),
        (db1, ["postgresql", "redis-server"], ["nginx", "uwsgi-guestbook", "celery-guestbook"]),
    ]:
        for service in running:
            assert host.exec(f"systemctl is-active {service}", check=False).stdout.strip() == "active", \
                (host.name, service)
        for service in absent:
            assert host.exec(f"systemctl is-active {service}", check=False).stdout.strip() != "active", \
                (host.name, service)
    assert db1.exec(f"test -e {ROOT}/releases", check=False).returncode != 0  # the db host holds no release

    # PostgreSQL listens on the loopback and the private address, and lets in the fleet's hosts only.
    listen = db1.exec("runuser -u postgres -- psql -XAtc 'SHOW listen_addresses'").stdout.strip()
    assert listen == f"localhost,{db1.address}"
    for client in (web1, web2, worker1):
        assert probe(client, PG_PROBE, db1.address).startswith("R"), client.name
    (outsider,), _ = start_hosts("outsider")
    refused = probe(outsider, PG_PROBE, db1.address)
    assert refused.startswith("E") and "no pg_hba.conf entry" in refused, refused

    # Redis, on db1, answers the fleet only with its password; no secret lies where anyone can read it.
    unauthenticated = probe(outsider, REDIS_PROBE, db1.address)
    assert unauthenticated.startswith("-NOAUTH"), unauthenticated
    # The project's Redis user, with the password the app has, may not act on the whole server.
    password = secret_of(worker1, ROOT, "REDIS_PASSWORD")
    assert password == SECRETS["REDIS_PASSWORD"]
    for command in SERVER_WIDE:
        assert "NOPERM" in redis_login(db1, "guestbook", password, command), command
    for host in hosts.values():
        for secret in SECRETS.values():
            assert world_readable_files_containing(host, secret) == [], (host.name, secret)

    # A task queued through web1 runs on worker1 and writes its note to the database on db1.
    wait_for_task_note(web1, web2, "fleet task", worker=worker1)

    # logs.py merges the app servers' lines of both web hosts.
    for host in (web1, web2):
        assert https_get(host, f"/?probe=fleet-logs-{host.name}").status_code == 200
    logs = run_pyinfra(fleet_file, "deploys/logs.py", data={"unit": "app", "grep": "fleet-logs"})
    assert logs.returncode == 0, logs.output
    assert "web1: " in logs.output and "probe=fleet-logs-web1" in logs.output, logs.output
    assert "web2: " in logs.output and "probe=fleet-logs-web2" in logs.output, logs.output

    # The scheduled command has its timer on web1 alone, and has run there.
    assert [host.exec("ls /etc/systemd/system | grep -c guestbook-job", check=False).stdout.strip()
            for host in (web1, web2, worker1, db1)] == ["2", "0", "0", "0"]
    assert web1.exec("systemctl show -P Result guestbook-job-checks.service").stdout.strip() == "success"
    assert web1.exec("systemctl show -P LastTriggerUSec guestbook-job-checks.timer").stdout.strip()

    # A second project on db1 alone (every role there; PostgreSQL and Celery). Without a
    # REDIS_PASSWORD it is refused: db1's Redis serves other hosts; so it is in the fleet's Redis
    # database. With one, and a database of its own, it gets a Redis user
    # of its own; the fleet keeps its PostgreSQL address, its Redis password and its running Redis,
    # before and after the second project is removed.
    def notes_fleet(secrets: dict, redis_url: str = "redis://127.0.0.1:6379/1") -> Path:
        data = {**PROJECT, "websiteproject": "notes", "url": "notes.localhost", "django_environment_variables": secrets,
                "redis_url": redis_url}
        return fleet.write_fleet_file(tmp_path / "notes.json", fleet_key, [replace(db1, groups=None, data=data)])

    refused = run_pyinfra(notes_fleet(NOTES_SECRETS), "deploys/all.py")
    assert refused.returncode != 0, refused.output
    assert "needs REDIS_PASSWORD for notes" in refused.output and "nothing was changed" in refused.output
    # In the fleet's Redis database, the two Celery workers would run each other's tasks: refused too.
    shared_queue = run_pyinfra(notes_fleet({**NOTES_SECRETS, "REDIS_PASSWORD": NOTES_REDIS_PASSWORD},
                                           "redis://127.0.0.1:6379/0"), "deploys/all.py")
    assert shared_queue.returncode != 0, shared_queue.output
    assert "redis_url: guestbook and notes would share Redis database 0" in shared_queue.output
    assert db1.exec("test -e /srv/www/notes", check=False).returncode != 0
    # Redis takes the second project's user live: a restart could leave the fleet's Celery worker
    # connected but no longer consuming (a known Celery bug).
    redis_pid = db1.exec("systemctl show -p MainPID --value redis-server").stdout.strip()
    notes_file = notes_fleet({**NOTES_SECRETS, "REDIS_PASSWORD": NOTES_REDIS_PASSWORD})
    notes = run_pyinfra(notes_file, "deploys/all.py")
    assert notes.returncode == 0, notes.output
    assert https_get(db1, "/", server_name="notes.localhost").status_code == 200
    assert db1.exec("systemctl is-active celery-notes").stdout.strip() == "active"
    for stage in ("notes deployed", "notes removed"):
        assert db1.exec("runuser -u postgres -- psql -XAtc 'SHOW listen_addresses'").stdout.strip() == listen, stage
        assert redis_login(db1, "guestbook", SECRETS["REDIS_PASSWORD"]) == "PONG", stage
        assert "WRONGPASS" in redis_login(db1, "notes", SECRETS["REDIS_PASSWORD"]), stage
        assert probe(outsider, REDIS_PROBE, db1.address).startswith("-NOAUTH"), stage
        assert db1.exec("systemctl show -p MainPID --value redis-server").stdout.strip() == redis_pid, stage
        wait_for_task_note(web1, web2, stage, worker=worker1)
        if stage == "notes deployed":
            assert redis_login(db1, "notes", NOTES_REDIS_PASSWORD) == "PONG"
            assert "PONG" not in redis_login(db1, "notes", "notes-redis-password-wrong")
            # notes, with the password its app has, can neither change the fleet's password nor
            # empty its Redis.
            notes_password = secret_of(db1, "/srv/www/notes", "REDIS_PASSWORD")
            assert notes_password == NOTES_REDIS_PASSWORD
            for command in (*SERVER_WIDE, "ACL SETUSER guestbook on '>taken-over-password-1'"):
                assert "NOPERM" in redis_login(db1, "notes", notes_password, command), command
            removed = run_pyinfra(notes_file, "deploys/remove.py", data={"confirm_remove": "notes"})
            assert removed.returncode == 0, removed.output
    assert db1.exec("ls /etc/redis/django-deploy /etc/django-deploy/db-host").stdout.split() == \
        ["/etc/django-deploy/db-host:", "guestbook.json", "/etc/redis/django-deploy:", "_deploy-admin.conf",
         "guestbook.conf"]

    # v2, with a migration, one web host at a time: every host builds it, web1 alone migrates
    # (and keeps the snapshots), then web1 switches, then web2 (with worker1 in the first batch).
    v2 = example_source(tmp_path / "v2", "v2", mood_migration=True)
    second = run_pyinfra(fleet_file, "deploys/release.py",
                         data={"release_id": "v2", "django_source_dir": v2, "rolling_batch_size": 1})
    assert second.returncode == 0, second.output
    switches = [name for name in second.results if name.startswith("Release | Switch to release v2")]
    assert switches == ["Release | Switch to release v2 and check it (batch 1 of 2)",
                        "Release | Switch to release v2 and check it (batch 2 of 2)"], second.output
    # Batch 1: web1 and worker1; batch 2: web2.
    assert [second.results[name]["Success"] for name in switches] == ["2", "1"]
    assert second.results["Release | Migrate the database (snapshot first)"]["Success"] == "1"
    assert web1.exec(f"ls {ROOT}/snapshots").stdout.split() == ["v1.dump", "v2.dump"]
    assert web2.exec(f"ls {ROOT}/snapshots").stdout.split() == worker1.exec(f"ls {ROOT}/snapshots").stdout.split() == []
    assert served_release(web1) == served_release(web2) == "v2"
    assert live_release(worker1) == "v2"
    assert "fleet task" in https_get(web1, "/").text  # the row written under v1 survived

    # web2 fails its health check (its webserver is down): the whole fleet stays on v2, the hosts
    # that had switched to v2b (web1, worker1) included.
    web2.exec("systemctl stop nginx")
    v2b = example_source(tmp_path / "v2b", "v2b")
    sick = run_pyinfra(fleet_file, "deploys/release.py", data={"release_id": "v2b", "django_source_dir": v2b})
    assert sick.returncode != 0 and "health check failed" in sick.output, sick.output
    # web1 and worker1 had switched to v2b and passed their checks: they went back.
    assert "[web1]    switched back to" in sick.output and "[worker1] switched back to" in sick.output, sick.output
    web2.exec("systemctl start nginx")
    assert served_release(web1) == served_release(web2) == "v2", sick.output
    assert live_release(worker1) == "v2"
    worker_cwd = worker1.exec("readlink /proc/$(systemctl show -p MainPID --value celery-guestbook)/cwd").stdout
    assert worker_cwd.strip().endswith("/releases/v2")
    assert {entry["id"]: entry["status"] for entry in history(web1)}["v2b"] == "failed"

    # v3 cannot be built on web2 (its release folder is taken by a file): no host switches, every
    # lock is released, and v3 is recorded as failed where it was built.
    web2.exec(f"touch {ROOT}/releases/v3")
    v3 = example_source(tmp_path / "v3", "v3")
    third = run_pyinfra(fleet_file, "deploys/release.py", data={"release_id": "v3", "django_source_dir": v3})
    assert third.returncode != 0, third.output
    assert "[web2]    Error" in third.output and "Over 0% of hosts failed" in third.output, third.output
    assert "Starting operation: Release | Switch to release v3" not in third.output, third.output
    assert served_release(web1) == served_release(web2) == "v2"
    assert live_release(worker1) == "v2"
    for host in (web1, web2, worker1):
        assert host.exec(f"test -e {ROOT}/.deploy-lock", check=False).returncode != 0, host.name
    assert {entry["id"]: entry["status"] for entry in history(web1)}["v3"] == "failed"

    # A rollback that fails on web2 (its webserver is down), one web host at a time: web1 and
    # worker1 switch to v1 on a database gone back to v1's migrations, then web2 fails its check.
    # web1, the migration host, puts the database forward again under the migration lock, and
    # only then does every host go back to v2: the fleet stays on one release, on its schema.
    web2.exec("systemctl stop nginx")
    failed = run_pyinfra(fleet_file, "deploys/rollback.py", data={
        "rollback_drop_data": "guestbook", "rolling_batch_size": 1, "health_check_timeout": 5})
    web2.exec("systemctl start nginx")
    assert failed.returncode != 0 and "health check failed" in failed.output, failed.output
    first_batch = failed.output.split("Switch to release v1 and check it (batch 1 of 2)")[1].split("--> ")[0]
    assert "[web1]    Success" in first_batch and "[worker1] Success" in first_batch, failed.output
    assert failed.output.count("migrating the database forward to release v2 again") == 1, failed.output
    forward = failed.output.index("[web1]    migrating the database forward to release v2 again")
    for host in ("[web1]    ", "[web2]    ", "[worker1] "):
        assert forward < failed.output.index(f"{host}switched back to {ROOT}/releases/v2"), failed.output
    assert served_release(web1) == served_release(web2) == "v2"
    assert live_release(worker1) == "v2"
    assert "fleet task" in https_get(web1, "/").text  # v2's page reads its column: it is back
    last_entry = json.loads(web1.exec(f"tail -n 1 {ROOT}/audit.jsonl").stdout)
    assert (last_entry["deploy"], last_entry["detail"], last_entry["outcome"]) == ("rollback", "to v1 from v2", "failed")

    # Rollback: the migration undone once, on web1; every host back on v1. v2's column has a value
    # in every row (in PostgreSQL; the note written under v1 got its default): a plain rollback
    # names it and changes nothing; told it may, the rollback drops it.
    refused = run_pyinfra(fleet_file, "deploys/rollback.py")
    assert refused.returncode != 0 and "drops data: column guestbook_note.mood (" in refused.output, refused.output
    assert served_release(web1) == served_release(web2) == "v2"
    back = run_pyinfra(fleet_file, "deploys/rollback.py", data={"rollback_drop_data": "guestbook"})
    assert back.returncode == 0, back.output
    assert "rollback_drop_data: migrating back to release v1 drops column guestbook_note.mood (" in back.output
    assert back.results["Rollback | Migrate the database back to release v1"]["Success"] == "1"
    assert served_release(web1) == served_release(web2) == "v1"
    assert live_release(worker1) == "v1"
    assert "fleet task" in https_get(web2, "/").text

    # Nothing left to do: a second run of all.py changes nothing on any host.
    again = run_pyinfra(fleet_file, "deploys/all.py", data={"release_id": "v1"})
    assert again.returncode == 0 and again.changed() == [], again.output
