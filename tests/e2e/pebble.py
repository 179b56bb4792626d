"""An ACME server for the certificate tests: Debian's pebble on the `acme` host of the test's
network (tests/fleet/hosts.yml), and what the tests read of the certificates the hosts serve."""

from __future__ import annotations

import ssl
import time

from cryptography import x509

from tests import fleet

SITE = "web1.example.test"  # the web host's name on the test network (tests/fleet/hosts.yml)

# pebble with a TLS certificate of its own for its directory, validating challenges on port 80.
START_PEBBLE = r"""
set -e
apt-get update -qq >/dev/null 2>&1 || true
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends pebble openssl >/dev/null
mkdir -p /etc/pebble && cd /etc/pebble
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=acme -addext "subjectAltName=DNS:acme" \
    -keyout key.pem -out cert.pem 2>/dev/null
cat > config.json <<EOF
{"pebble": {"listenAddress": "0.0.0.0:14000", "managementListenAddress": "0.0.0.0:15000",
 "certificate": "/etc/pebble/cert.pem", "privateKey": "/etc/pebble/key.pem",
 "httpPort": 80, "tlsPort": 443, "ocspResponderURL": "", "externalAccountBindingRequired": false}}
EOF
systemd-run --unit pebble --setenv PEBBLE_VA_NOSLEEP=1 --setenv PEBBLE_WFE_NONCEREJECT=0 \
    /usr/bin/pebble -config /etc/pebble/config.json
for _ in $(seq 50); do curl -sf --cacert cert.pem https://acme:14000/dir >/dev/null && exit 0; sleep 0.2; done
exit 1
"""


def wait_until(condition, what: str, timeout: float = 15) -> None:
    """A graceful reload lets the old workers finish: wait for the new ones to answer."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} was not served within {timeout} s"
        time.sleep(0.3)


def served_certificate(host) -> x509.Certificate:
    pem = ssl.get_server_certificate(("127.0.0.1", host.https_port))
    return x509.load_pem_x509_certificate(pem.encode())


def start_pebble(acme: fleet.TestHost) -> str:
    """Install and start pebble on the `acme` host; returns the root of its directory's TLS
    certificate (for acme_ca_certificate)."""
    acme.exec(START_PEBBLE)
    return acme.exec("cat /etc/pebble/cert.pem").stdout


def pebble_intermediate(acme: fleet.TestHost) -> x509.Certificate:
    """The certificate pebble signs the certificates it issues with (from its management API)."""
    pem = acme.exec("curl -sf --cacert /etc/pebble/cert.pem https://acme:15000/intermediates/0").stdout
    return x509.load_pem_x509_certificate(pem.encode())


# The service by which a host that fetches the certificate gets it from the issuer (its timer's).
SYNC_SERVICE = "guestbook-certificate-sync.service"


def names(certificate: x509.Certificate) -> list[str]:
    return certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName)


def renew_as_the_timer_does(issuer: fleet.TestHost, issued: x509.Certificate) -> None:
    """certbot renews on `issuer` as its timer runs it (with the service's environment: the test
    CA's root); the issuer then serves a certificate other than `issued`."""
    renewed = issuer.exec("env $(systemctl show certbot.service -p Environment --value) "
                          "certbot renew --force-renewal --no-random-sleep-on-renew", check=False)
    assert renewed.returncode == 0, renewed.stdout + renewed.stderr
    wait_until(lambda: served_certificate(issuer).serial_number != issued.serial_number, "the renewed certificate")


def fetched_as_the_timer_does(fetcher: fleet.TestHost, issuer: fleet.TestHost) -> None:
    """The fetcher's timer's service brings the issuer's certificate over: the fetcher serves it."""
    fetcher.exec(f"systemctl start {SYNC_SERVICE}")
    wait_until(lambda: served_certificate(fetcher).serial_number == served_certificate(issuer).serial_number,
               f"the renewed certificate on {fetcher.name}")
