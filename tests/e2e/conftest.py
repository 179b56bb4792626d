"""A host with the example app live (v1), prepared once per test run and snapshotted, so each
release scenario starts from it in seconds instead of preparing a bare host again."""

from __future__ import annotations

import json
import os
import shlex
import threading
import time
import uuid
from contextlib import contextmanager

import pytest
import requests

from tests import fleet
from tests.conftest import https_get, run_pyinfra

LIVE_IMAGE = fleet.prepared_image("example-live")
ROOT = "/srv/www/guestbook"
# The user (and group) the example app runs as: the project's own.
APP_USER = "django-guestbook"
# The same served by gunicorn, or by gunicorn's ASGI worker: the fault matrix's cases for an app
# server that restarts.
RESTARTING_SERVERS = ("gunicorn", "asgi")


# The deploy user every live image has (the shipped inventories log in as one, with sudo).
DEPLOY_USER = "deployer"


def deploy_user_data(fleet_key) -> dict:
    public_key = fleet_key.with_suffix(".pub").read_text().strip()
    return {"deploy_user": DEPLOY_USER, "deploy_user_ssh_keys": json.dumps([public_key])}


def prepare_live_image(fleet_key, tmp_path_factory, image: str, data: dict | None = None) -> str:
    """A host (the `prepare` service) with all.py deployed, committed as `image`, once per test
    run: the first pytest-xdist worker to need it prepares it while the others wait. It has the
    deploy user `deployer`, with sudo, which logs in with the fleet's key."""
    with run_wide_once(tmp_path_factory, image.split(":")[-1]) as done:
        if not done.exists():
            group = fleet.HostGroup(f"prepare{uuid.uuid4().hex[:8]}", fleet_key)
            try:
                (host,) = group.start("prepare", image=fleet.ensure_image("bookworm"), data=data)
                host.name = "web1"  # the name the tests' hosts started from the image have
                fleet_file = fleet.write_fleet_file(tmp_path_factory.mktemp("prepare") / "fleet.json", fleet_key,
                                                    [host])
                deployed = run_pyinfra(fleet_file, "deploys/all.py", data=deploy_user_data(fleet_key))
                assert deployed.returncode == 0, deployed.output
                fleet.snapshot(host, image)
            finally:
                group.remove()
            done.write_text(image)
    return image


@pytest.fixture(scope="session")
def live_image(fleet_key, tmp_path_factory) -> str:
    return prepare_live_image(fleet_key, tmp_path_factory, LIVE_IMAGE)


def app_server_live_image(fleet_key, tmp_path_factory, server: str) -> str:
    """The live image, or (gunicorn, asgi) one like it served by `server`."""
    if server == "uwsgi":
        return prepare_live_image(fleet_key, tmp_path_factory, LIVE_IMAGE)
    return prepare_live_image(fleet_key, tmp_path_factory, fleet.prepared_image(f"example-live-{server}"),
                              {"app_server": server})


@contextmanager
def run_wide_once(tmp_path_factory, name: str):
    """A lock held across this test run's pytest-xdist workers (alone: this process), and the
    path of a marker the block writes once its work is done, so that it is done once per run."""
    base = tmp_path_factory.getbasetemp()
    # Workers' temporary folders are gw0, gw1... inside the run's own: that one is shared.
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    with fleet.held_flock(shared / f"{name}.lock"):
        yield shared / f"{name}.done"


@pytest.fixture
def live_host(start_hosts, live_image):
    """(host, fleet file) of a host serving the example app, v1."""
    (host,), fleet_file = start_hosts("web1", image=live_image)
    return host, fleet_file


def history(host) -> list[dict]:
    """The release history on the host, as `release-history list --json` gives it."""
    return json.loads(host.exec("/srv/www/guestbook/bin/release-history list --json").stdout)


def live_release(host) -> str:
    return host.exec("basename \"$(readlink /srv/www/guestbook/current)\"").stdout.strip()


def manage(host, *args: str) -> str:
    return host.exec("/srv/www/guestbook/bin/manage " + " ".join(args)).stdout.strip()


def world_readable_files_containing(host, text: str) -> list[str]:
    """Files on the host that anyone may read and that contain `text` (a secret must be in none)."""
    return host.exec("find / -xdev \\( -path /proc -o -path /sys \\) -prune -o -type f -perm -o=r -print0 "
                     f"| xargs -0 grep -lF -- {shlex.quote(text)} 2>/dev/null", check=False).stdout.split()


def wait_for_task_note(start_on, read_on, text: str, worker, timeout: float = 60) -> None:
    """Queue the example app's note task through `start_on`'s site, then wait until the note,
    signed by the host `worker` that ran it, shows on `read_on`'s page (failing with the worker's
    log)."""
    started = requests.post(f"https://127.0.0.1:{start_on.https_port}/tasks/note/", data={"text": text},
                            headers={"Host": "localhost"}, verify=False, timeout=10)
    assert started.status_code == 202, started.text
    deadline = time.monotonic() + timeout
    while f"{text} <small>(task@{worker.name})</small>" not in https_get(read_on, "/").text:
        if time.monotonic() > deadline:
            log = worker.exec("journalctl -u 'celery-*' -n 40 --no-pager", check=False).stdout
            raise AssertionError(f"the Celery task did not run on {worker.name}; its log:\n{log}")
        time.sleep(1)


# Owner, group and mode of what a deploy writes on a web host (nginx, uWSGI).
DEPLOYED_FILES = [
    (f"{ROOT}/secrets.py", "root", APP_USER, 0o640),
    ("/etc/nginx/ssl/guestbook.key", "root", "root", 0o600),
    ("/etc/nginx/ssl/guestbook.crt", "root", "root", 0o644),
    ("/etc/nginx/sites-available/guestbook.conf", "root", "root", 0o644),
    ("/etc/uwsgi/apps-available/guestbook.ini", "root", "root", 0o644),
    ("/etc/systemd/system/uwsgi-guestbook.service", "root", "root", 0o644),
    (f"{ROOT}/bin/manage", "root", "root", 0o755),
    (f"{ROOT}/snapshots", "root", "root", 0o700),
]


def assert_owners_and_modes(system, rows) -> None:
    """Each (path, owner, group, mode) of `rows` holds on the host (a testinfra host)."""
    for path, owner, group, mode in rows:
        described = system.file(path)
        assert (described.user, described.group, described.mode) == (owner, group, mode), path


@contextmanager
def under_load(host, limit: int = 3000, seconds: list | None = None):
    """One client fetching the home page over HTTPS while the block runs (at most `limit`
    requests); yields the list of answers (status codes, or the error of a failed request), and
    appends to `seconds`, if given, how long each took."""
    answers: list = []
    stop = threading.Event()

    def load():
        while not stop.is_set() and len(answers) < limit:
            started = time.monotonic()
            try:
                answers.append(https_get(host, "/").status_code)
            except requests.RequestException as error:
                answers.append(repr(error))
            if seconds is not None:
                seconds.append(time.monotonic() - started)

    client = threading.Thread(target=load)
    client.start()
    try:
        yield answers
    finally:
        stop.set()
        client.join()


def wait_for_new_workers(processes, old_workers: set[str], timeout: float = 30) -> None:
    """Wait until `processes()` (master PID, worker PIDs) shows workers and none of `old_workers`:
    a graceful reload is asynchronous."""
    deadline = time.monotonic() + timeout
    while processes()[1] & old_workers or not processes()[1]:
        assert time.monotonic() < deadline, "the workers were not replaced"
        time.sleep(0.5)


FROM_THE_HOST = "curl -sk -o /dev/null -w '%{http_code}' --resolve localhost:443:127.0.0.1 https://localhost/"


def assert_in_maintenance(host) -> None:
    """The site answers the maintenance page with 503, but for the health check, static files and
    the host itself."""
    page = https_get(host, "/")
    assert page.status_code == 503, page.text
    assert "Down for maintenance" in page.text and page.headers["Retry-After"] == "300"
    assert page.headers["Content-Type"].startswith("text/html")
    assert https_get(host, "/health/").status_code == 200
    assert https_get(host, "/static/guestbook/site.css").status_code == 200
    assert host.exec(FROM_THE_HOST).stdout == "200"
