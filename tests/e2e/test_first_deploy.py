"""From a bare Debian host to the example app served over HTTPS, then a second run that changes
nothing, then a run with bad settings that is refused before touching the host."""

import re
import ssl
import subprocess

import pytest
import requests
import testinfra

from tests import fleet
from tests.conftest import https_get, run_pyinfra
from tests.e2e.conftest import assert_in_maintenance

pytestmark = pytest.mark.e2e

# What a deploy writes on the host: equal before and after means nothing changed there. Every
# file and link with its owner, mode, size and change time; every folder with its owner and mode
# (a folder's time changes when an entry comes and goes, as the deploy lock does in the project
# folder: the listing of the entries shows any entry that stayed).
PLACES = "/srv/www /etc/nginx /etc/apache2 /etc/uwsgi /etc/systemd/system /opt/django-deploy-tools -maxdepth 4"
STATE_OF_THE_HOST = (
    f"{{ find {PLACES} ! -type d -printf '%p %u %g %m %s %T@\\n'; find {PLACES} -type d -printf '%p %u %g %m\\n'; }} "
    "2>/dev/null | sort | sha256sum"
)


CONFIG_TEST = {"nginx": "nginx -t", "apache2": "apache2ctl configtest"}


def given_certificate(directory) -> dict:
    """A certificate and key made on the control machine, given as PEM text."""
    key, certificate = directory / "site.key", directory / "site.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj",
                    "/CN=localhost", "-keyout", str(key), "-out", str(certificate)], check=True,
                   capture_output=True)
    return {"site_certificate": certificate.read_text(), "site_key": key.read_text()}


# nginx with a self-signed certificate made on the host; Apache with one given in the settings;
# each app server in front of one of them.
APP_SOCKETS = {"uwsgi": ("uwsgi-guestbook", "/run/uwsgi-guestbook.sock"),
               "gunicorn": ("gunicorn-guestbook", "/run/gunicorn-guestbook.sock"),
               "asgi": ("gunicorn-guestbook", "/run/gunicorn-guestbook.sock")}


@pytest.mark.parametrize("webserver, app_server", [("nginx", "uwsgi"), ("apache2", "uwsgi"), ("nginx", "gunicorn"),
                                                   ("apache2", "asgi")])
def test_bare_host_to_https_then_rerun_changes_nothing(start_hosts, webserver, app_server, tmp_path):
    tls = given_certificate(tmp_path) if webserver == "apache2" else {}
    (host,), fleet_file = start_hosts("web1", data={"webserver": webserver, "app_server": app_server, **tls})
    app_service, app_socket = APP_SOCKETS[app_server]

    first = run_pyinfra(fleet_file, "deploys/all.py")
    assert first.returncode == 0, first.output
    assert first.changed("Prepare host") and first.changed("Release"), first.output

    system = testinfra.get_host(f"docker://{host.container}")
    release_id = system.file("/srv/www/guestbook/current").linked_to.rsplit("/", 1)[1]
    assert re.fullmatch(r"\d{14}", release_id)

    # The page, from the database, naming the release it runs from.
    page = https_get(host, "/")
    assert page.status_code == 200
    assert "<h1>Guestbook</h1>" in page.text
    assert f'<span id="release-id">{release_id}</span>' in page.text
    assert page.headers["X-Release-Id"] == release_id
    assert page.headers["Strict-Transport-Security"] == "max-age=63072000"

    health = https_get(host, "/health/")
    assert health.json() == {"status": "ok", "release": release_id}

    # Plain HTTP is redirected to HTTPS.
    redirect = requests.get(f"http://127.0.0.1:{host.http_port}/notes?x=1", headers={"Host": "localhost"},
                            allow_redirects=False, timeout=10)
    assert redirect.status_code == 301
    assert redirect.headers["Location"] == "https://localhost/notes?x=1"

    # The stylesheet is served by nginx from the release's collected static files, not by the app.
    stylesheet = re.search(r'href="(/static/guestbook/site\.[0-9a-f]+\.css)"', page.text).group(1)
    static = https_get(host, stylesheet)
    assert static.status_code == 200
    assert "guestbook stylesheet v1" in static.text
    assert "X-Release-Id" not in static.headers
    assert system.file(f"/srv/www/guestbook/releases/{release_id}/staticfiles{stylesheet[len('/static'):]}").exists

    # Services and the files that hold secrets.
    assert system.service(webserver).is_running and system.service(webserver).is_enabled
    assert system.service(app_service).is_running and system.service(app_service).is_enabled
    secrets = system.file("/srv/www/guestbook/secrets.py")
    assert (secrets.user, secrets.group, secrets.mode) == ("root", "django-guestbook", 0o640)
    key = system.file(f"/etc/{webserver}/ssl/guestbook.key")
    assert (key.user, key.group, key.mode) == ("root", "root", 0o600)
    socket = system.file(app_socket)
    assert socket.is_socket and socket.mode == 0o660 and socket.group == "www-data"
    # Only what serves: no uWSGI beside gunicorn.
    assert system.package("uwsgi-core").is_installed == (app_server == "uwsgi")
    assert system.run(CONFIG_TEST[webserver]).rc == 0
    served = ssl.get_server_certificate(("127.0.0.1", host.https_port))
    if tls:
        assert served.strip() == tls["site_certificate"].strip()
    else:
        assert served.strip() == system.file(f"/etc/{webserver}/ssl/guestbook.crt").content_string.strip()
    # The webserver does not advertise its version.
    assert page.headers["Server"] in ("nginx", "Apache")

    # The same command again: nothing to do anywhere.
    before = host.exec(STATE_OF_THE_HOST).stdout
    second = run_pyinfra(fleet_file, "deploys/all.py")
    assert second.returncode == 0, second.output
    assert second.results, second.output
    assert second.changed() == [], second.output
    assert host.exec(STATE_OF_THE_HOST).stdout == before
    assert https_get(host, "/").headers["X-Release-Id"] == release_id

    if webserver == "apache2":
        # Apache's rules of maintenance mode (nginx's: test_maintenance.py).
        assert run_pyinfra(fleet_file, "deploys/maintenance.py", data={"maintenance": "on"}).returncode == 0
        assert_in_maintenance(host)
        assert run_pyinfra(fleet_file, "deploys/maintenance.py", data={"maintenance": "off"}).returncode == 0
        assert https_get(host, "/").status_code == 200
        before = host.exec(STATE_OF_THE_HOST).stdout

    # Bad settings: one error naming each variable and the host; pyinfra fails; the host is as it was.
    refused = run_pyinfra(fleet_file, "deploys/all.py",
                          data={"webserver": "lighttpd", "uwsgi_number_workers": "0", "websiteproject": "a b"})
    assert refused.returncode != 0
    assert "host web1:" in refused.output
    for variable in ("webserver", "uwsgi_number_workers", "websiteproject"):
        assert f"  - {variable}: " in refused.output, refused.output
    assert refused.results == {}
    assert host.exec(STATE_OF_THE_HOST).stdout == before
    assert https_get(host, "/").status_code == 200


def test_a_package_apt_cannot_install_fails_the_first_deploy_with_apts_words(start_hosts, fleet_key):
    # all.py installs the packages in the background while the skeleton goes on: their failure
    # still stops the run where it waits for them, with apt's own words, and the lock is let go.
    (host,), fleet_file = start_hosts("web1", data={"application_additional_packages": ["no-such-package-d41d8cd9"]})
    failed = run_pyinfra(fleet_file, "deploys/all.py")
    assert failed.returncode != 0
    assert "installing the system packages failed" in failed.output, failed.output
    assert "Unable to locate package no-such-package-d41d8cd9" in failed.output, failed.output
    assert host.exec("test -e /srv/www/guestbook/.deploy-lock", check=False).returncode != 0
    assert host.exec("test -e /srv/www/guestbook/current", check=False).returncode != 0

    host.data.pop("application_additional_packages")
    fleet.write_fleet_file(fleet_file, fleet_key, [host])
    fixed = run_pyinfra(fleet_file, "deploys/all.py")
    assert fixed.returncode == 0, fixed.output
    assert https_get(host, "/").status_code == 200
