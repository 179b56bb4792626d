"""The app servers on one live host, switched on a live site: uWSGI -> gunicorn -> asgi (behind
nginx, then Apache) -> uWSGI (behind Apache, whose proxy module changes). With each, a release, a
rollback and restart.py fail no request under load; the socket is the app user's and the
webserver's alone; the other server leaves nothing running. With asgi, a WebSocket opened over
TLS through nginx and through Apache echoes its message."""

from __future__ import annotations

import socket
import ssl

import pytest
import requests
from websockets.sync.client import connect

from tests import fleet
from tests.conftest import https_get, run_pyinfra
from tests.e2e.conftest import live_release, under_load, wait_for_new_workers
from tests.e2e.sources import example_source

pytestmark = pytest.mark.e2e

ROOT = "/srv/www/guestbook"
GUNICORN_SOCKET = "/run/gunicorn-guestbook.sock"


def set_app_server(host, fleet_file, key, server: str, **data) -> None:
    host.data = {**host.data, "app_server": server, **data}
    fleet.write_fleet_file(fleet_file, key, [host])


def running(host, service: str) -> bool:
    return host.exec(f"systemctl is-active {service}", check=False).stdout.strip() == "active"


def gunicorn_processes(host) -> tuple[str, set[str]]:
    master = host.exec("systemctl show -p MainPID --value gunicorn-guestbook").stdout.strip()
    return master, set(host.exec(f"pgrep -P {master}", check=False).stdout.split())


def echo(host, text: str) -> str:
    """Send `text` on a WebSocket to the example's echo, over TLS through the webserver."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", host.https_port), timeout=10)
    with connect("wss://localhost/ws/echo/", sock=raw, ssl=context, server_hostname="localhost",
                 proxy=None, open_timeout=10) as websocket:
        websocket.send(text)
        return websocket.recv(timeout=10)


def release_and_roll_back(host, fleet_file, tmp_path, release_id: str) -> None:
    """A release, then a rollback, each under load: no failed request."""
    before = live_release(host)
    source = example_source(tmp_path / release_id, release_id)
    with under_load(host) as answers:
        released = run_pyinfra(fleet_file, "deploys/release.py",
                               data={"release_id": release_id, "django_source_dir": source})
    assert released.returncode == 0, released.output
    assert answers and set(answers) == {200}, answers
    assert https_get(host, "/").headers["X-Release-Id"] == release_id
    with under_load(host) as answers:
        back = run_pyinfra(fleet_file, "deploys/rollback.py")
    assert back.returncode == 0, back.output
    assert answers and set(answers) == {200}, answers
    assert https_get(host, "/").headers["X-Release-Id"] == before


@pytest.mark.long(minutes=3.5)
def test_switching_app_servers_on_a_live_site(live_host, fleet_key, tmp_path):
    host, fleet_file = live_host

    # uWSGI -> gunicorn, under load: served throughout, and nothing of uWSGI is left.
    set_app_server(host, fleet_file, fleet_key, "gunicorn")
    g1 = example_source(tmp_path / "g1", "g1")
    with under_load(host) as answers:
        switched = run_pyinfra(fleet_file, "deploys/all.py", data={"release_id": "g1", "django_source_dir": g1})
    assert switched.returncode == 0, switched.output
    assert answers and set(answers) == {200}, answers
    page = https_get(host, "/")
    # HTTPS as the app sees it too: the example redirects plain HTTP, and no redirect happened.
    assert page.status_code == 200 and page.history == [] and page.headers["X-Release-Id"] == "g1"
    assert page.headers["Server"] == "nginx"  # not gunicorn's name, nor a version
    assert running(host, "gunicorn-guestbook") and not running(host, "uwsgi-guestbook")
    for gone in ("/etc/systemd/system/uwsgi-guestbook.service", "/etc/uwsgi/apps-available/guestbook.ini",
                 f"{ROOT}/uwsgi"):
        assert host.exec(f"test -e {gone}", check=False).returncode != 0, gone
    # gunicorn runs on the Python of the release's virtualenv.
    master, _ = gunicorn_processes(host)
    venv = host.exec(f"readlink -f {ROOT}/releases/g1/.venv").stdout.strip()
    assert host.exec(f"cat /proc/{master}/cmdline | tr '\\0' ' '").stdout.startswith(f"{venv}/bin/python ")
    assert host.exec(f"stat -c '%U %G %a' {GUNICORN_SOCKET}").stdout.strip() == "django-guestbook www-data 660"

    release_and_roll_back(host, fleet_file, tmp_path, "g2")

    # restart.py: gunicorn's graceful reload keeps its master and socket, replaces its workers.
    master, workers = gunicorn_processes(host)
    socket_inode = host.exec(f"stat -c %i {GUNICORN_SOCKET}").stdout.strip()
    with under_load(host) as answers:
        restarted = run_pyinfra(fleet_file, "deploys/restart.py")
        wait_for_new_workers(lambda: gunicorn_processes(host), workers)
    assert restarted.returncode == 0, restarted.output
    assert gunicorn_processes(host)[0] == master
    assert host.exec(f"stat -c %i {GUNICORN_SOCKET}").stdout.strip() == socket_inode
    assert answers and set(answers) == {200}, answers

    # asgi: a WebSocket through nginx, then through Apache, answered by the live release.
    set_app_server(host, fleet_file, fleet_key, "asgi")
    a1 = example_source(tmp_path / "a1", "a1")
    with under_load(host) as answers:
        to_asgi = run_pyinfra(fleet_file, "deploys/all.py", data={"release_id": "a1", "django_source_dir": a1})
    assert to_asgi.returncode == 0, to_asgi.output
    assert answers and set(answers) == {200}, answers
    assert https_get(host, "/").headers["X-Release-Id"] == "a1"
    assert echo(host, "hello through nginx") == "a1: hello through nginx"
    # Django sees the client's address, which gunicorn behind its socket does not know: the
    # webserver tells it (here the Docker network's gateway, which carries the published port).
    gateway = host.exec("ip route | awk '/^default/ {print $3}'").stdout.strip()
    assert https_get(host, "/client/").json() == {"remote_addr": gateway, "secure": True}
    release_and_roll_back(host, fleet_file, tmp_path, "a2")

    set_app_server(host, fleet_file, fleet_key, "asgi", webserver="apache2")
    to_apache = run_pyinfra(fleet_file, "deploys/all.py", data={"release_id": "a1", "django_source_dir": a1})
    assert to_apache.returncode == 0, to_apache.output
    assert https_get(host, "/").headers["Server"] == "Apache"
    assert echo(host, "hello through Apache") == "a1: hello through Apache"
    claimed = requests.get(f"https://127.0.0.1:{host.https_port}/client/", verify=False, timeout=10,
                           headers={"Host": "localhost", "X-Real-IP": "203.0.113.9"})
    assert claimed.json() == {"remote_addr": gateway, "secure": True}  # a copy the client sends changes nothing

    # Behind Apache, to uWSGI under load: Apache's proxy module changes (proxy_http to
    # proxy_uwsgi) in a graceful reload; gunicorn, its socket and its files are gone.
    apache_pid = host.exec("systemctl show -p MainPID --value apache2").stdout.strip()
    set_app_server(host, fleet_file, fleet_key, "uwsgi", webserver="apache2")
    with under_load(host) as answers:
        back = run_pyinfra(fleet_file, "deploys/all.py", data={"release_id": "u1", "django_source_dir": a1})
    assert back.returncode == 0, back.output
    assert answers and set(answers) == {200}, answers
    page = https_get(host, "/")
    assert page.headers["X-Release-Id"] == "u1" and page.headers["Server"] == "Apache"
    assert host.exec("systemctl show -p MainPID --value apache2").stdout.strip() == apache_pid  # not restarted
    assert running(host, "uwsgi-guestbook")
    assert not running(host, "gunicorn-guestbook") and not running(host, "gunicorn-guestbook.socket")
    for gone in ("/etc/systemd/system/gunicorn-guestbook.service", "/etc/systemd/system/gunicorn-guestbook.socket",
                 GUNICORN_SOCKET, f"{ROOT}/bin/gunicorn.conf.py", f"{ROOT}/bin/django_deploy_entry.py"):
        assert host.exec(f"test -e {gone}", check=False).returncode != 0, gone
    again = run_pyinfra(fleet_file, "deploys/all.py", data={"release_id": "u1", "django_source_dir": a1})
    assert again.returncode == 0 and again.changed() == [], again.output

    # Back to nginx (a change of webserver stops one and starts the other: not under load).
    set_app_server(host, fleet_file, fleet_key, "uwsgi", webserver="nginx")
    to_nginx = run_pyinfra(fleet_file, "deploys/skeleton.py")
    assert to_nginx.returncode == 0, to_nginx.output
    assert https_get(host, "/").headers["Server"] == "nginx"
