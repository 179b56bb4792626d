"""A certificate from an ACME CA, against a real ACME server (Debian's pebble, on a host of the
test's network): issued on a bare host over HTTP-01, served, renewed by certbot's own service
configuration, and kept when the CA cannot be reached."""

from __future__ import annotations

import re

import pytest
import requests
from cryptography import x509
from cryptography.x509.oid import NameOID

from tests import fleet
from tests.conftest import https_get, run_pyinfra
from tests.e2e.pebble import SITE, served_certificate, start_pebble, wait_until

pytestmark = pytest.mark.e2e


@pytest.mark.long(minutes=3)
@pytest.mark.parametrize("webserver", ["nginx", "apache2"])
def test_a_certificate_from_acme_is_issued_renewed_and_kept_when_the_ca_fails(start_hosts, fleet_key, tmp_path,
                                                                              webserver):
    (acme,), _ = start_hosts("acme")
    directory_root = start_pebble(acme)
    (web,), _ = start_hosts("web1", data={"url": SITE, "webserver": webserver, "acme_email": "ops@example.test",
                                          "acme_directory": "https://acme:14000/dir",
                                          "acme_ca_certificate": directory_root})
    fleet_file = fleet.write_fleet_file(tmp_path / "web.json", fleet_key, [web])

    # A bare host: self-signed first, then the CA's certificate, served by the webserver.
    first = run_pyinfra(fleet_file, "deploys/all.py")
    assert first.returncode == 0, first.output
    issued = served_certificate(web)
    assert "Pebble" in issued.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    names = issued.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert names == [SITE]
    assert https_get(web, "/", server_name=SITE).status_code == 200
    # Plain HTTP answers the challenges (a missing one: 404) and sends everything else to HTTPS.
    plain = f"http://127.0.0.1:{web.http_port}"
    assert requests.get(f"{plain}/.well-known/acme-challenge/none", headers={"Host": SITE}, allow_redirects=False,
                        timeout=10).status_code == 404
    assert requests.get(f"{plain}/notes", headers={"Host": SITE}, allow_redirects=False,
                        timeout=10).headers["Location"] == f"https://{SITE}/notes"

    # Nothing new: nothing asked of the CA, nothing changed; status shows who issued it, until when.
    again = run_pyinfra(fleet_file, "deploys/all.py")
    assert again.returncode == 0 and again.changed() == [], again.output
    shown = run_pyinfra(fleet_file, "deploys/status.py")
    assert "certificate: issuer=CN = Pebble Intermediate CA" in shown.output and "notAfter=" in shown.output

    # A renewal as certbot's timer runs it (with the environment of its service): a new
    # certificate, served after a graceful reload by the deploy hook.
    renewed = web.exec("env $(systemctl show certbot.service -p Environment --value) "
                       "certbot renew --force-renewal --no-random-sleep-on-renew", check=False)
    assert renewed.returncode == 0, renewed.stdout + renewed.stderr
    wait_until(lambda: served_certificate(web).serial_number != issued.serial_number, "the renewed certificate")
    assert https_get(web, "/", server_name=SITE).status_code == 200
    current = served_certificate(web).serial_number

    # The CA unreachable when a new name is asked for: the run fails naming the cause, and the
    # site keeps serving with the certificate it has.
    acme.exec("systemctl stop pebble")
    web.data["acme_extra_domains"] = ["www.example.test"]
    fleet.write_fleet_file(fleet_file, fleet_key, [web])
    failed = run_pyinfra(fleet_file, "deploys/skeleton.py")
    assert failed.returncode != 0, failed.output
    assert "Certificate for web1.example.test, www.example.test" in failed.output
    assert re.search(r"acme\W{1,12}14000", failed.output), failed.output
    assert served_certificate(web).serial_number == current
    assert https_get(web, "/", server_name=SITE).status_code == 200

    # ACME turned off: certbot forgets the certificate, the site goes back to a self-signed one,
    # and nothing of ACME stays.
    for name in ("acme_email", "acme_directory", "acme_ca_certificate", "acme_extra_domains"):
        web.data.pop(name)
    fleet.write_fleet_file(fleet_file, fleet_key, [web])
    off = run_pyinfra(fleet_file, "deploys/skeleton.py")
    assert off.returncode == 0, off.output
    wait_until(lambda: served_certificate(web).issuer == served_certificate(web).subject, "a self-signed certificate")
    assert https_get(web, "/", server_name=SITE).status_code == 200
    for gone in ("/etc/letsencrypt/live/guestbook", "/etc/letsencrypt/renewal/guestbook.conf",
                 "/etc/django-deploy/acme/guestbook-deploy-hook.sh", "/etc/django-deploy/acme/guestbook-ca.pem",
                 "/etc/systemd/system/certbot.service.d/django-deploy-ca.conf", "/var/lib/django-deploy/acme/guestbook"):
        assert web.exec(f"test -e {gone}", check=False).returncode != 0, gone
