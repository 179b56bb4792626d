"""One certificate from an ACME CA for two web hosts behind one name, against a real ACME server
(Debian's pebble on the test's network): web1 asks for it, web2 passes the CA's challenges on to
web1 and fetches the certificate from it; a renewal on web1 reaches web2 through web2's own
timer's service, and a failing renewal shows in status.py and reaches the webhooks when it starts
failing and when it works again; web2 then moves from Apache to nginx.
Lean on purpose: web1 (web and db, nginx), web2 (web), no release: the certificate is the
skeleton's."""

from __future__ import annotations

import re
import shlex

import pytest
import requests
from cryptography.x509.oid import NameOID

from tests import fleet
from tests.conftest import run_pyinfra
from tests.e2e.conftest import world_readable_files_containing
from tests.e2e.pebble import (SITE, SYNC_SERVICE, fetched_as_the_timer_does, names, pebble_intermediate,
                              renew_as_the_timer_does, served_certificate, start_pebble, wait_until)
from tests.receiver import Receiver

pytestmark = pytest.mark.e2e

SECOND_NAME = "web2.example.test"  # resolves to web2 on the test network: pebble checks it there
ROLES = {"web1": ["web", "db"], "web2": ["web"]}
DEPLOY = ("deploys/host_prep.py", "deploys/skeleton.py")
KNOWN_HOSTS = "/etc/django-deploy/acme/guestbook-sync-known-hosts"


def renewal_notices(webhook: Receiver) -> list[tuple[str, str]]:
    """(host, outcome and detail) of each certificate renewal notice the webhook got, in order."""
    return [(body["host"], f"{body['outcome']} {body['detail']}") for path, _, body in webhook.received
            if path == "/hooks/T0KEN" and body["action"] == "certificate renewal"]


def passed_on(issuer: fleet.TestHost, other: fleet.TestHost) -> str:
    """What `other` answers over plain HTTP for a challenge file that only `issuer` holds."""
    issuer.exec("echo 'token of the challenge' > /var/lib/django-deploy/acme/guestbook/.well-known/acme-challenge/t1")
    answer = requests.get(f"http://127.0.0.1:{other.http_port}/.well-known/acme-challenge/t1", headers={"Host": SITE},
                          allow_redirects=False, timeout=10)
    issuer.exec("rm /var/lib/django-deploy/acme/guestbook/.well-known/acme-challenge/t1")
    return answer.text.strip() if answer.status_code == 200 else f"HTTP {answer.status_code}"


@pytest.mark.long(minutes=3)
def test_web_hosts_behind_one_name_serve_one_certificate_renewed_on_the_first(start_hosts, fleet_key, tmp_path):
    (acme,), _ = start_hosts("acme")
    directory_root = start_pebble(acme)
    hosts, _ = start_hosts("web1", "web2")
    # The webhooks hear of renewals from the hosts themselves.
    webhook = Receiver(address=fleet.network_gateway(hosts[0]))
    fleet.give_roles(hosts, ROLES, {
        "deploy_notify_url": [f"{webhook.url}/hooks/T0KEN"],
        "url": SITE, "acme_extra_domains": [SECOND_NAME], "acme_email": "ops@example.test",
        "acme_directory": "https://acme:14000/dir", "acme_ca_certificate": directory_root,
        "database": "postgresql", "django_environment_variables": {"DJANGO_DB_PASSWORD": "acme-fleet-db-password"}})
    web1, web2 = hosts
    web2.data["webserver"] = "apache2"
    fleet_file = fleet.write_fleet_file(tmp_path / "fleet.json", fleet_key, hosts)

    # Bare hosts: web1 alone asks the CA; pebble checks web2.example.test on web2, which passes the
    # challenge on to web1; both serve the one certificate, signed by pebble.
    first = run_pyinfra(fleet_file, *DEPLOY)
    assert first.returncode == 0, first.output
    issued = served_certificate(web1)
    assert served_certificate(web2).serial_number == issued.serial_number
    assert names(issued) == [SITE, SECOND_NAME]
    assert "Pebble" in issued.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    issued.verify_directly_issued_by(pebble_intermediate(acme))
    assert web2.exec("test -e /etc/letsencrypt/live/guestbook", check=False).returncode != 0  # web1 alone asked
    assert passed_on(web1, web2) == "token of the challenge"
    assert web2.exec(f"systemctl is-enabled {SYNC_SERVICE.replace('.service', '.timer')}").stdout.strip() == "enabled"
    # web2's key reads the certificate on web1 and does nothing else (the command it asks is not run).
    fetched = web2.exec("ssh -i /etc/django-deploy/acme/guestbook-sync-key -o BatchMode=yes "
                        f"-o UserKnownHostsFile={KNOWN_HOSTS} -o StrictHostKeyChecking=yes "
                        f"certsync-guestbook@{web1.address} id", check=False)
    assert fetched.returncode == 0 and "BEGIN CERTIFICATE" in fetched.stdout, fetched.stderr
    assert "uid=" not in fetched.stdout
    # ... and is not let in from another address (web1 itself).
    web1.exec("mkdir -p /tmp/k")
    key = web2.exec("cat /etc/django-deploy/acme/guestbook-sync-key").stdout
    web1.exec(f"printf '%s' {shlex.quote(key)} > /tmp/k/key && chmod 600 /tmp/k/key")
    outside = web1.exec(f"ssh -i /tmp/k/key -o BatchMode=yes -o StrictHostKeyChecking=no certsync-guestbook@{web1.address}",
                        check=False)
    assert outside.returncode != 0 and "BEGIN" not in outside.stdout
    web1.exec("rm -rf /tmp/k")

    # Nothing new: nothing changes, nothing is asked of the CA or fetched.
    again = run_pyinfra(fleet_file, *DEPLOY)
    assert again.returncode == 0 and again.changed() == [], again.output

    # certbot renews on web1 (as its timer runs it); web2's timer's service brings the new
    # certificate over, and web2 serves it after a graceful reload.
    renew_as_the_timer_does(web1, issued)
    assert served_certificate(web2).serial_number == issued.serial_number
    fetched_as_the_timer_does(web2, web1)

    # Renewals that fail show in status.py, with since when and why: certbot's on web1 (the CA
    # unreachable from web1 when the certificate is due), the fetch on web2 (web1's SSH host key
    # not the one it knows).
    web1.exec("cp /etc/hosts /tmp/hosts.saved && echo '127.0.0.9 acme' >> /etc/hosts")
    web1.exec("sed -i '/^renew_before_expiry/d; 1i renew_before_expiry = 10000 days' "
              "/etc/letsencrypt/renewal/guestbook.conf")
    assert web1.exec("systemctl start certbot.service", check=False).returncode != 0
    web2.exec(f"mv {KNOWN_HOSTS} {KNOWN_HOSTS}.saved && echo '{web1.address} ssh-ed25519 "
              f"AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl' > {KNOWN_HOSTS}")
    assert web2.exec(f"systemctl start {SYNC_SERVICE}", check=False).returncode != 0
    shown = run_pyinfra(fleet_file, "deploys/status.py")
    assert shown.returncode == 0, shown.output
    assert re.search(r"\[web1\].*warning: certificate renewal failing since \S+Z \(certbot\): .*(acme|14000)",
                     shown.output), shown.output
    assert re.search(rf"\[web2\].*warning: certificate renewal failing since \S+Z \({SYNC_SERVICE[:-8]}\): "
                     r".*(Host key verification failed|HOST IDENTIFICATION)", shown.output), shown.output
    wait_until(lambda: len(renewal_notices(webhook)) == 2, "the failing renewals' notices")
    failing = dict(renewal_notices(webhook))
    assert re.fullmatch(r"failed certbot: .*(acme|14000).*", failing["web1"], re.S), failing
    assert re.fullmatch(rf"failed {SYNC_SERVICE[:-8]}: .*(Host key verification failed|HOST IDENTIFICATION).*",
                        failing["web2"], re.S), failing
    for host in hosts:
        assert world_readable_files_containing(host, "T0KEN") == [], host.name
    assert web1.exec("systemctl start certbot.service", check=False).returncode != 0  # failing still
    # Working again: the warnings go.
    web1.exec("cat /tmp/hosts.saved > /etc/hosts")
    web1.exec("systemctl start certbot.service")
    web2.exec(f"mv {KNOWN_HOSTS}.saved {KNOWN_HOSTS} && systemctl start {SYNC_SERVICE}")
    assert served_certificate(web2).serial_number == served_certificate(web1).serial_number
    shown = run_pyinfra(fleet_file, "deploys/status.py")
    assert "certificate: issuer=CN = Pebble Intermediate CA" in shown.output and "failing" not in shown.output, \
        shown.output
    # A second failing run said nothing more; working again is announced once per host.
    wait_until(lambda: len(renewal_notices(webhook)) == 4, "the notices of renewals working again")
    assert sorted(renewal_notices(webhook)[2:]) == [("web1", "works again certbot"),
                                                    ("web2", f"works again {SYNC_SERVICE[:-8]}")]
    webhook.close()

    # web2 moves to nginx: it passes the challenges on to web1 as Apache did, and gets the
    # certificate into nginx's folder in the same run.
    web2.data["webserver"] = "nginx"
    fleet.write_fleet_file(fleet_file, fleet_key, hosts)
    moved = run_pyinfra(fleet_file, *DEPLOY)
    assert moved.returncode == 0, moved.output
    assert served_certificate(web2).serial_number == served_certificate(web1).serial_number
    assert passed_on(web1, web2) == "token of the challenge"

    # ACME turned off: both hosts go back to a self-signed certificate, and nothing of ACME stays.
    for host in hosts:
        for name in ("acme_email", "acme_directory", "acme_ca_certificate", "acme_extra_domains"):
            host.data.pop(name)
    fleet.write_fleet_file(fleet_file, fleet_key, hosts)
    off = run_pyinfra(fleet_file, "deploys/skeleton.py")
    assert off.returncode == 0, off.output
    for host in hosts:
        wait_until(lambda: served_certificate(host).issuer == served_certificate(host).subject,
                   f"a self-signed certificate on {host.name}")
    for host, gone in [(web1, "/etc/letsencrypt/live/guestbook"), (web1, "/var/lib/django-deploy/certificate-sync/guestbook"),
                       (web1, "/etc/systemd/system/certbot.service.d/django-deploy-guestbook-result.conf"),
                       (web1, "/etc/systemd/system/certbot.service.d/django-deploy-ca.conf"),
                       (web2, f"/etc/systemd/system/{SYNC_SERVICE}"),
                       (web2, "/etc/systemd/system/guestbook-certificate-sync.timer"),
                       (web2, "/etc/django-deploy/acme/guestbook-sync-key"), (web2, KNOWN_HOSTS),
                       (web2, "/etc/django-deploy/acme/guestbook-fetch-certificate.sh")]:
        assert host.exec(f"test -e {gone}", check=False).returncode != 0, (host.name, gone)
    for host in hosts:
        assert host.exec("find /etc/django-deploy/acme /var/lib/django-deploy/certificate-renewal -mindepth 1",
                         check=False).stdout.split() == [], host.name
    assert web1.exec("id certsync-guestbook", check=False).returncode != 0
