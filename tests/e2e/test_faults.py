"""The fault matrix: a broken release, a killed run or two runs at once never take the site down
or lose data. Each case checks the same three things: the site still serves over HTTPS (the
previous release, unless the new one had already gone live and answered), every row written
before is still there, and the operator got a clear error. After each case a normal release
succeeds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests import fleet
from tests.conftest import REPO, https_get, run_pyinfra
from tests.e2e.conftest import DEPLOY_USER, RESTARTING_SERVERS, app_server_live_image, live_release, manage, under_load
from tests.e2e.sources import RUNS_PYTHON, example_source

pytestmark = pytest.mark.e2e

ROOT = "/srv/www/guestbook"
ROWS = ["first row", "second row", "third row"]


def write_rows(host):
    for text in ROWS:
        manage(host, "add_note", repr(text))


def assert_site_intact(host, release_id: str):
    page = https_get(host, "/")
    assert page.status_code == 200
    assert page.headers["X-Release-Id"] == release_id
    texts = host.exec(f"sqlite3 {ROOT}/shared/db/guestbook.sqlite3 'SELECT text FROM guestbook_note'").stdout
    assert sorted(texts.split("\n")[:-1]) == sorted(ROWS)


def release(fleet_file, source, release_id, extra: tuple = (), **data):
    return run_pyinfra(fleet_file, "deploys/release.py", extra=extra,
                       data={"django_source_dir": str(source), "release_id": release_id, **data})


def assert_a_normal_release_succeeds(host, fleet_file, tmp_path, extra: tuple = (), **data):
    recovered = release(fleet_file, example_source(tmp_path / "recovery", "recovery"), "recovery", extra, **data)
    assert recovered.returncode == 0, recovered.output
    assert_site_intact(host, "recovery")


BROKEN_RELEASES = {
    # fault: (source changes, extra data, what the operator is told)
    "migration fails": ({"failing_migration": True}, {"allow_unsafe_migrations": RUNS_PYTHON},
                        "this migration fails on purpose"),
    "dependency cannot be installed": ({}, {"django_dependencies": '["no-such-package-d41d8cd9==1.0"]'},
                                       "no-such-package-d41d8cd9"),
    "check --deploy errors": ({"failing_check": True}, {}, "fields.E300"),
    "health check fails after the switch": ({"failing_health": True}, {}, "health check failed"),
    "a secret the settings require is missing": ({"required_secret": "EXAMPLE_API_TOKEN"}, {},
                                                 "EXAMPLE_API_TOKEN is missing from the secrets"),
}


@pytest.fixture(params=["uwsgi", *RESTARTING_SERVERS])
def app_server_live_host(request, start_hosts, fleet_key, tmp_path_factory):
    """(host, fleet file, pyinfra's extra arguments) of a host serving the example app, v1, with
    uWSGI (a graceful reload), gunicorn or asgi (a restart, the socket held by systemd). With uWSGI
    the runs log in as the deploy user and reach root with `pyinfra --sudo`; with the others, as
    root: each case of the matrix runs both ways across the app servers."""
    server = request.param
    image = app_server_live_image(fleet_key, tmp_path_factory, server)
    (host,), fleet_file = start_hosts("web1", image=image, data=None if server == "uwsgi" else {"app_server": server})
    expected = ["active", "inactive"] if server != "uwsgi" else ["inactive", "active"]
    assert host.exec("systemctl is-active gunicorn-guestbook uwsgi-guestbook", check=False).stdout.split() == expected
    if server != "uwsgi":
        return host, fleet_file, ()
    host.data = {**host.data, "ssh_user": DEPLOY_USER}
    fleet.write_fleet_file(fleet_file, fleet_key, [host])
    return host, fleet_file, ("--sudo",)


@pytest.mark.parametrize("fault", list(BROKEN_RELEASES))
def test_a_broken_release_leaves_the_live_one_serving(app_server_live_host, tmp_path, fault):
    host, fleet_file, login = app_server_live_host
    v1 = live_release(host)
    write_rows(host)
    changes, data, told = BROKEN_RELEASES[fault]

    broken = release(fleet_file, example_source(tmp_path / "broken", "broken", **changes), "broken", login, **data)
    assert broken.returncode != 0
    assert told in broken.output
    assert_site_intact(host, v1)
    assert host.exec(f"test -e {ROOT}/releases/broken/.failed", check=False).returncode == 0
    assert host.exec(f"test -d {ROOT}/.deploy-lock", check=False).returncode != 0
    assert_a_normal_release_succeeds(host, fleet_file, tmp_path, login)


KILL_POINTS = {
    # where the run is killed: (the operation that starts, what the host shows once the kill may
    # land (None: at once), the releases that may serve after, how the new release differs from
    # the mood migration of the others)
    "after the upload and unpack": ("Release | Virtualenv", None, {"previous"}, {}),
    # Killed while its six-second migration runs: the previous release serves on.
    "during the migration": ("Release | Migrate the database", "pgrep -f 'migrate [-]-noinput' >/dev/null",
                             {"previous"}, {"slow_migration": True}),
    # The switch command may or may not have reached the host before the kill.
    "after the migration": ("Release | Switch to release", None, {"previous", "new"}, {}),
    # Killed once the switch has begun on the host (it noted what was live): uWSGI's graceful
    # reload (or gunicorn's restart) and the health check take about a second.
    "during the switch": ("Release | Switch to release", f"test -e {ROOT}/releases/killed/.switched-from",
                          {"previous", "new"}, {}),
    "right after the switch": ("Release | Record the release", None, {"new"}, {}),
}
# What runs on the host while a release migrates or switches (the [-] keeps the pattern from
# matching the shell that runs pgrep).
RUN_ON_HOST = "pgrep -f 'switched[-]from|migrate [-]-noinput' >/dev/null"


def wait_on_host(host, condition: str, holds: bool, seconds: int = 60) -> None:
    """Wait until `condition` (a shell test on the host) holds, or no longer holds."""
    deadline = time.monotonic() + seconds
    while (host.exec(condition, check=False).returncode == 0) != holds:
        assert time.monotonic() < deadline, f"{condition} still {'fails' if holds else 'holds'} after {seconds} s"
        time.sleep(0.1)


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_a_killed_run_leaves_the_site_serving_and_a_stale_lock(app_server_live_host, tmp_path, point):
    host, fleet_file, login = app_server_live_host
    v1 = live_release(host)
    write_rows(host)
    marker, landed, may_serve, changes = KILL_POINTS[point]
    source = example_source(tmp_path / "killed", "killed", mood_migration=True, **changes)

    run = subprocess.Popen(
        [sys.executable, "-m", "pyinfra", "-y", *login, "--data", f"django_source_dir={source}", "--data",
         "release_id=killed", "--data", f"allow_unsafe_migrations={RUNS_PYTHON}", "inventories/local.py",
         "deploys/release.py"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "DEPLOY_FLEET_FILE": str(fleet_file)})
    seen = []
    for line in run.stdout:
        seen.append(line)
        if f"Starting operation: {marker}" in line:
            if landed:
                wait_on_host(host, landed, holds=True)
            run.send_signal(signal.SIGKILL)
            break
    run.wait(timeout=60)
    assert run.returncode == -signal.SIGKILL, "".join(seen)
    # What the run had started on the host has ended, or been ended with its session.
    wait_on_host(host, RUN_ON_HOST, holds=False)

    serving = live_release(host)
    assert serving in {"previous": v1, "new": "killed"}.values() and \
        {v1: "previous", "killed": "new"}[serving] in may_serve, serving
    assert_site_intact(host, serving)

    # The next run names the stale lock and stops; asked to, it breaks it and releases.
    blocked = release(fleet_file, example_source(tmp_path / "next", "next"), "next", login)
    assert blocked.returncode != 0
    assert "another deploy holds the lock" in blocked.output and "stale: that run has ended" in blocked.output
    assert_site_intact(host, serving)
    assert_a_normal_release_succeeds(host, fleet_file, tmp_path, login, release_break_lock="true")
    if point == "after the upload and unpack":
        # The killed release is on the host, complete, but never went live: a plain rollback
        # goes back to what was live before, not to it.
        back = run_pyinfra(fleet_file, "deploys/rollback.py", extra=login)
        assert back.returncode == 0, back.output
        assert_site_intact(host, v1)


def test_two_releases_at_once(live_host, tmp_path):
    host, fleet_file = live_host
    write_rows(host)
    first = subprocess.Popen(
        [sys.executable, "-m", "pyinfra", "-y", "--data", f"django_source_dir={example_source(tmp_path / 'a', 'a')}",
         "--data", "release_id=first", "inventories/local.py", "deploys/release.py"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "DEPLOY_FLEET_FILE": str(fleet_file)})
    output = []
    for line in first.stdout:
        output.append(line)
        if "Starting operation: Release | Upload and unpack release" in line:  # the lock is taken
            break
    # The first run paused while the second tries: it holds the lock however fast it would end.
    first.send_signal(signal.SIGSTOP)
    try:
        second = release(fleet_file, example_source(tmp_path / "b", "b"), "second")
    finally:
        first.send_signal(signal.SIGCONT)
    output.extend(first.stdout)
    first.wait(timeout=300)

    assert first.returncode == 0, "".join(output)
    assert second.returncode != 0
    assert "another deploy holds the lock of this project" in second.output
    assert "that run is still going" in second.output and "for release first" in second.output
    assert_site_intact(host, "first")
    assert host.exec(f"test -e {ROOT}/releases/second", check=False).returncode != 0
    assert_a_normal_release_succeeds(host, fleet_file, tmp_path)


@pytest.mark.parametrize("server", ["gunicorn", "asgi"])
def test_each_app_server_switches_back_from_a_release_failing_its_health_check(live_host, fleet_key, tmp_path,
                                                                               server):
    """gunicorn and asgi, switched to from uWSGI by all.py: a release whose health check fails
    after the switch is switched back under load, no request failing; a Python uv cannot provide
    stops a release before its switch. The virtualenv runs on python_interpreter
    given as a version, which uv finds on the host."""
    host, fleet_file = live_host
    host.data = {**host.data, "app_server": server, "python_interpreter": "3.11"}
    fleet.write_fleet_file(fleet_file, fleet_key, [host])
    switched = run_pyinfra(fleet_file, "deploys/all.py",
                           data={"release_id": "s1", "django_source_dir": example_source(tmp_path / "s1", "s1")})
    assert switched.returncode == 0, switched.output
    # The host's own Python 3.11, found by uv: nothing was downloaded.
    assert host.exec(f"readlink -f {ROOT}/releases/s1/.venv/bin/python").stdout.strip() == "/usr/bin/python3.11"
    assert host.exec(f"test -e {ROOT}/python", check=False).returncode != 0
    write_rows(host)

    with under_load(host) as answers:
        sick = release(fleet_file, example_source(tmp_path / "sick", "sick", failing_health=True), "sick")
    assert sick.returncode != 0 and "health check failed" in sick.output, sick.output
    assert "switched back" in sick.output
    assert answers and set(answers) == {200}, answers
    assert_site_intact(host, "s1")

    # 3.99 is no Python anywhere: uv's error, then one line naming the variable; s1 serves on.
    no_python = release(fleet_file, example_source(tmp_path / "p", "p"), "p", python_interpreter='"3.99"')
    assert no_python.returncode != 0
    assert "python_interpreter: Python 3.99 is not on this host, and uv could not install it" in no_python.output
    assert_site_intact(host, "s1")
    assert_a_normal_release_succeeds(host, fleet_file, tmp_path)
