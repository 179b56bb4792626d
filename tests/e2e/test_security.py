"""Security audit of a deployed host, with each app server: owners and modes, no secret in any
output, log or world-readable file, TLS 1.2 and 1.3 only, HSTS, HTTP to HTTPS, no server version,
an app server socket only the webserver may reach, and a clean `check --deploy`."""

from __future__ import annotations

import json
import socket
import ssl

import pytest
import requests
import testinfra

from tests import fleet
from tests.conftest import https_get, run_pyinfra
from tests.e2e.conftest import APP_USER, DEPLOYED_FILES, assert_owners_and_modes, world_readable_files_containing
from tests.e2e.sources import example_source

pytestmark = pytest.mark.e2e

ROOT = "/srv/www/guestbook"
SECRET = "local-fleet-only-4d1f0b7e2a9c46c8b7a1e6f3d5c2b8a0e9f7d6c5b4a3"  # group_data/local.py


def handshake(port: int, version: ssl.TLSVersion) -> str:
    """The protocol negotiated when the client offers only `version`, or the error."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    context.set_ciphers("ALL:@SECLEVEL=0")
    context.minimum_version = context.maximum_version = version
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                return tls.version()
    except ssl.SSLError as error:
        return f"refused: {error.reason}"


GUNICORN_FILES = [
    ("/etc/systemd/system/gunicorn-guestbook.service", "root", "root", 0o644),
    ("/etc/systemd/system/gunicorn-guestbook.socket", "root", "root", 0o644),
    ("/run/gunicorn-guestbook.sock", APP_USER, "www-data", 0o660),
]
# app_server: (what it writes on top of the common files, its socket)
APP_SERVERS = {
    "uwsgi": ([], "/run/uwsgi-guestbook.sock"),
    "gunicorn": (GUNICORN_FILES, "/run/gunicorn-guestbook.sock"),
    "asgi": (GUNICORN_FILES, "/run/gunicorn-guestbook.sock"),
}


@pytest.mark.parametrize("app_server", list(APP_SERVERS))
def test_security_audit_of_a_deployed_host(live_host, fleet_key, app_server, tmp_path):
    host, fleet_file = live_host
    system = testinfra.get_host(f"docker://{host.container}")
    files, app_socket = APP_SERVERS[app_server]
    if app_server != "uwsgi":
        host.data = {**host.data, "app_server": app_server}
        fleet.write_fleet_file(fleet_file, fleet_key, [host])
        switched = run_pyinfra(fleet_file, "deploys/all.py")
        assert switched.returncode == 0, switched.output
        uwsgi_files = {path for path, *_ in DEPLOYED_FILES if "uwsgi" in path}
        assert not any(system.file(path).exists for path in uwsgi_files), uwsgi_files
    common = [row for row in DEPLOYED_FILES if app_server == "uwsgi" or "uwsgi" not in row[0]]

    assert_owners_and_modes(system, [
        *common, *files,
        (f"{ROOT}/bin/with-secrets", "root", "root", 0o755),
        (f"{ROOT}/versions", "root", "root", 0o750),
        (f"{ROOT}/shared/db", APP_USER, APP_USER, 0o750),
        (f"{ROOT}/releases", "root", "root", 0o755),
    ])
    # A release is root's, and only the app's group (and the webserver's, for the static files)
    # may enter it: not every user.
    live = host.exec(f"readlink -f {ROOT}/current").stdout.strip()
    assert (system.file(live).user, system.file(live).group, system.file(live).mode) == ("root", APP_USER, 0o750)
    assert system.run(f"runuser -u nobody -- cat {ROOT}/current/manage.py").rc != 0
    assert system.run(f"runuser -u {APP_USER} -- cat {ROOT}/current/manage.py").rc == 0
    # The app user cannot change the code it runs.
    assert system.run(f"runuser -u {APP_USER} -- touch {ROOT}/current/manage.py").rc != 0

    # TLS 1.2 and 1.3 negotiate; anything older is refused by the server.
    assert handshake(host.https_port, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    assert handshake(host.https_port, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
    for old in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        outcome = handshake(host.https_port, old)
        assert outcome.startswith("refused"), outcome

    page = https_get(host, "/")
    assert page.headers["Strict-Transport-Security"] == "max-age=63072000"
    assert page.headers["Server"] == "nginx"
    redirect = requests.get(f"http://127.0.0.1:{host.http_port}/", headers={"Host": "localhost"},
                            allow_redirects=False, timeout=10)
    assert redirect.status_code == 301 and redirect.headers["Location"].startswith("https://")
    assert redirect.headers["Server"] == "nginx"
    error_page = https_get(host, "/static/no-such-file.css")
    assert error_page.status_code == 404 and "nginx/" not in error_page.text

    # The app server's socket: the webserver's group may connect, other users may not (another
    # project's app among them).
    connect = ("python3 -c 'import socket; s = socket.socket(socket.AF_UNIX); "
               f"s.connect(\"{app_socket}\")'")
    assert system.run(f"runuser -u nobody -- {connect}").rc != 0
    assert system.run(f"runuser -u www-data -- {connect}").rc == 0

    checked = system.run(f"{ROOT}/bin/manage check --deploy --fail-level WARNING")
    assert checked.rc == 0, checked.stderr

    # No secret in what any deploy file prints, plain, verbose or as a --dry --diff preview.
    outputs = []
    for deploy_file, extra, data in [
        ("deploys/all.py", (), {}),
        ("deploys/all.py", ("-vvv",), {}),
        ("deploys/skeleton.py", ("--dry", "--diff"),
         {"django_environment_variables": json.dumps({"DJANGO_SECRET_KEY": SECRET + "-new"})}),
        ("deploys/release.py", ("--dry", "--diff"), {"release_id": "preview"}),
        ("deploys/release.py", ("-vvv",),
         {"release_id": "second", "django_source_dir": str(example_source(tmp_path / "second", "second"))}),
        ("deploys/status.py", ("-v",), {}),
        ("deploys/restart.py", ("-vvv",), {}),
        # Back from the second release: a rollback that does its work, not one refused at once.
        ("deploys/rollback.py", ("-v",), {}),
        ("deploys/remove.py", ("--dry", "-v"), {"confirm_remove": "guestbook"}),
    ]:
        result = run_pyinfra(fleet_file, deploy_file, data=data, extra=extra)
        outputs.append(result.output)
        assert result.returncode == 0, result.output
        assert SECRET not in result.output, deploy_file
    assert https_get(host, "/").headers["X-Release-Id"] != "second"  # the rollback went back
    assert host.exec(f"test -d {ROOT}", check=False).returncode == 0  # the --dry remove removed nothing

    # Nor in the logs, nor in any world-readable file.
    assert host.exec(f"journalctl --no-pager | grep -c {SECRET}", check=False).stdout.strip() == "0"
    assert world_readable_files_containing(host, SECRET) == []
