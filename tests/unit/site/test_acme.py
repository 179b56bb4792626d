"""Certificates from ACME: settings, certbot's command line, the deploy hook and the webserver's
challenge folder, rendered and read without a host."""

import os
import shlex
import subprocess

import pytest

from deploys.djangoapp.site.certificate_sync import (
    CERTIFICATES_SED,
    KEY_SED,
    CertificateDigest,
    authorized_key_line,
    publish_command,
)
from deploys.djangoapp.site.certificates import AcmeCertificate, AcmeTraces, certbot_command
from deploys.djangoapp.core.context import render_template
from deploys.djangoapp.settings.placement import plan_fleet
from deploys.djangoapp.settings import problems
from deploys.djangoapp.site.skeleton import webserver_reload
from deploys.djangoapp.operate.status import ProjectStatus
from tests.unit.sites import VALID, settings

CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
ACME = {"acme_email": "ops@example.com", "acme_directory": "https://acme:14000/dir", "acme_ca_certificate": CA,
        "acme_extra_domains": ["www.example.com"]}


def test_certbot_asks_for_every_name_answering_from_the_webroot_with_the_hook():
    words = shlex.split(certbot_command(settings(**ACME)))
    assert words[0] == "REQUESTS_CA_BUNDLE=/etc/django-deploy/acme/mysite-ca.pem" and words[1:3] == ["certbot", "certonly"]
    for flag, value in [("--email", "ops@example.com"), ("--server", "https://acme:14000/dir"),
                        ("--webroot-path", "/var/lib/django-deploy/acme/mysite"), ("--cert-name", "mysite"),
                        ("--deploy-hook", "/etc/django-deploy/acme/mysite-deploy-hook.sh")]:
        assert words[words.index(flag) + 1] == value, flag
    assert [words[i + 1] for i, word in enumerate(words) if word == "--domain"] == ["mysite.example.com",
                                                                                  "www.example.com"]
    assert "--non-interactive" in words and "--keep-until-expiring" in words
    # Let's Encrypt (no private CA): the system's trust store.
    assert not certbot_command(settings(acme_email="ops@example.com")).startswith("REQUESTS_CA_BUNDLE")


def test_the_certificates_names_and_ca_are_read_from_openssl_and_certbot():
    output = ["X509v3 Subject Alternative Name: ", "    DNS:www.example.com, DNS:mysite.example.com",
              "server=https://acme:14000/dir"]
    assert AcmeCertificate().process(output) == {"domains": ["mysite.example.com", "www.example.com"],
                                                 "server": "https://acme:14000/dir"}
    assert AcmeCertificate().process([]) is None


def test_another_ca_forces_a_new_certificate():
    words = shlex.split(certbot_command(settings(**ACME), force=True))
    assert "--force-renewal" in words and "--keep-until-expiring" not in words


def test_the_deploy_hook_installs_the_certificate_where_the_site_reads_it_and_reloads():
    site = settings(**ACME)
    hook = render_template("certificates/deploy-hook.sh.j2", s=site, reload_command=webserver_reload(site),
                           publish_command="")
    assert 'install -m 644 -o root -g root "$lineage/fullchain.pem" /etc/nginx/ssl/mysite.crt' in hook
    assert 'install -m 600 -o root -g root "$lineage/privkey.pem" /etc/nginx/ssl/mysite.key' in hook
    assert "nginx -t -q && systemctl reload nginx" in hook and "touch /var/lib/django-deploy/refreshed/nginx" in hook
    assert "certificate-sync" not in hook  # one web host: nobody to publish it for
    assert render_template("certificates/certbot-ca.conf.j2", s=site).strip().endswith(
        "Environment=REQUESTS_CA_BUNDLE=/etc/django-deploy/acme/mysite-ca.pem")


def test_plain_http_serves_the_challenges_only_with_acme():
    for webserver in ("nginx", "apache2"):
        with_acme = render_template(f"{webserver}/site.conf.j2", s=settings(webserver=webserver, **ACME))
        without = render_template(f"{webserver}/site.conf.j2", s=settings(webserver=webserver))
        assert "/.well-known/acme-challenge/" in with_acme and "/var/lib/django-deploy/acme/mysite" in with_acme
        assert "www.example.com" in with_acme
        assert "acme-challenge" not in without


def test_acme_settings_are_checked():
    for data, start in [({"acme_email": "not an email"}, "acme_email: "),
                        ({"acme_directory": "http://insecure/dir"}, "acme_directory: "),
                        ({"acme_extra_domains": ["bad name"]}, "acme_extra_domains: "),
                        ({"acme_ca_certificate": "-----BEGIN NOTHING-----"}, "acme_ca_certificate: ")]:
        _, found = problems({**VALID, **data})
        assert len(found) == 1 and found[0].startswith(start), found
    _, found = problems({**VALID, "acme_email": "ops@example.com", "site_certificate": CA,
                         "site_key": "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----"})
    assert found and "exclude each other" in found[0] and found[0].startswith("acme_email: ")


PG = {"database": "postgresql", "django_environment_variables": {"DJANGO_DB_PASSWORD": "pw"}}


def fleet_of_two(**data):
    """web1 and web2 behind one name with ACME: web1's and web2's settings (which know the fleet)."""
    hosts = {name: ({"web"}, settings(**PG, private_address=address, **ACME, **data))
             for name, address in [("web1", "10.0.0.1"), ("web2", "10.0.0.2")]}
    hosts["db1"] = ({"db"}, settings(**PG, private_address="10.0.0.3", **ACME, **data))
    fleet, found = plan_fleet(hosts)
    assert found == [], found
    for name, (_, host_settings) in hosts.items():
        host_settings._host, host_settings._fleet = name, fleet
    return hosts["web1"][1], hosts["web2"][1]


def test_several_web_hosts_share_one_certificate_asked_for_by_the_first():
    web1, web2 = fleet_of_two()
    assert web1.issues_certificate and not web1.fetches_certificate
    assert web2.fetches_certificate and not web2.issues_certificate
    assert web1.certificate_fetchers == [("web2", "10.0.0.2")] and web2.certificate_fetchers == []
    assert (web1.acme_challenge_proxy, web2.acme_challenge_proxy) == (None, "http://10.0.0.1")
    # The ACME variables are the fleet's, like url.
    hosts = {name: ({"web"}, settings(**PG, private_address=address, acme_email=email))
             for name, address, email in [("web1", "10.0.0.1", "a@example.com"), ("web2", "10.0.0.2", "b@example.com")]}
    hosts["db1"] = ({"db"}, settings(**PG, private_address="10.0.0.3", acme_email="a@example.com"))
    _, found = plan_fleet(hosts)
    assert any(line.startswith("acme_email: must be the same on every host") for line in found), found


def test_the_other_web_hosts_pass_the_challenges_on_to_the_issuer():
    web1, web2 = fleet_of_two()
    for webserver in ("nginx", "apache2"):
        web1_copy = web1.model_copy(update={"webserver": webserver})
        web2_copy = web2.model_copy(update={"webserver": webserver})
        for copy, original in ((web1_copy, web1), (web2_copy, web2)):
            copy._host, copy._fleet = original._host, original._fleet
        issuer = render_template(f"{webserver}/site.conf.j2", s=web1_copy)
        fetcher = render_template(f"{webserver}/site.conf.j2", s=web2_copy)
        assert "/var/lib/django-deploy/acme/mysite" in issuer and "10.0.0.1" not in issuer
        assert "/var/lib/django-deploy/acme/mysite" not in fetcher
        proxied = ("proxy_pass http://10.0.0.1;" if webserver == "nginx" else
                   "ProxyPass /.well-known/acme-challenge/ http://10.0.0.1/.well-known/acme-challenge/")
        assert proxied in fetcher, fetcher


def test_a_fetcher_may_only_read_the_certificate_from_its_own_address():
    line = authorized_key_line("/var/lib/django-deploy/certificate-sync/mysite/certificate.pem", "mysite",
                               "10.0.0.2", "ssh-ed25519 AAAAC3Nza mysite-certificate-sync@web2", "web2")
    assert line == ('restrict,from="10.0.0.2",command="cat /var/lib/django-deploy/certificate-sync/mysite/'
                    'certificate.pem" ssh-ed25519 AAAAC3Nza mysite-certificate-sync@web2')


def test_the_fetch_script_checks_the_issuers_host_key_and_what_it_gets():
    web1, web2 = fleet_of_two()
    script = render_template("certificates/fetch-certificate.sh.j2", s=web2, reload_command=webserver_reload(web2),
                             certificates_sed=CERTIFICATES_SED, key_sed=KEY_SED)
    assert subprocess.run(["sh", "-n"], input=script, text=True).returncode == 0
    for required in ("-o StrictHostKeyChecking=yes", "-o UserKnownHostsFile=/etc/django-deploy/acme/mysite-sync-known-hosts",
                     "-i /etc/django-deploy/acme/mysite-sync-key", "certsync-mysite@10.0.0.1", "-checkend 0",
                     "-checkhost mysite.example.com", "openssl pkey", "nginx -t -q && systemctl reload nginx"):
        assert required in script, required
    assert "StrictHostKeyChecking=no" not in script and "accept-new" not in script
    hook = render_template("certificates/deploy-hook.sh.j2", s=web1, reload_command=webserver_reload(web1),
                           publish_command=publish_command(web1, '"$lineage"'))
    assert "/var/lib/django-deploy/certificate-sync/mysite/certificate.pem" in hook and "chgrp certsync-mysite" in hook


def run_sh(command: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", command], text=True, capture_output=True, env={**os.environ, **env})


def make_certificate(folder, days: int) -> tuple[str, str]:
    cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
    made = run_sh(f"openssl req -x509 -newkey rsa:2048 -nodes -days {days} -subj /CN=t -keyout {key} -out {cert}")
    assert made.returncode == 0, made.stderr
    return cert, key


def test_what_a_fetcher_installs_is_what_the_issuer_published_byte_for_byte(tmp_path):
    # certbot's chain may hold blank lines between blocks: the published copy has the blocks alone,
    # and the digests the deploy compares (issuer's copy, fetcher's files) agree once fetched.
    cert, key = make_certificate(tmp_path, 30)
    lineage = tmp_path / "live"
    lineage.mkdir()
    (lineage / "fullchain.pem").write_text(open(cert).read() + "\n" + open(cert).read())
    (lineage / "privkey.pem").write_text(open(key).read())
    bundle = tmp_path / "bundle.pem"
    extract = (f"{{ sed -n {CERTIFICATES_SED} {lineage}/fullchain.pem && sed -n {KEY_SED} {lineage}/privkey.pem; }}"
               f" >{bundle}")
    assert extract in publish_command(settings(), str(lineage)).replace(str(settings().certificate_sync_bundle), str(bundle))
    assert run_sh(extract).returncode == 0
    fetched_cert, fetched_key = tmp_path / "fetched.crt", tmp_path / "fetched.key"
    assert run_sh(f"sed -n {CERTIFICATES_SED} {bundle} >{fetched_cert} && sed -n {KEY_SED} {bundle} >{fetched_key}"
                  ).returncode == 0
    assert fetched_cert.read_text().count("BEGIN CERTIFICATE") == 2 and "PRIVATE KEY" in fetched_key.read_text()

    def digest(certificates, key_file) -> str:
        return CertificateDigest().process(run_sh(CertificateDigest().command(str(certificates), str(key_file))).stdout.splitlines())

    assert digest(bundle, bundle) == digest(fetched_cert, fetched_key) == digest(lineage / "fullchain.pem",
                                                                                  lineage / "privkey.pem")
    assert digest(bundle, tmp_path / "missing") is None


def test_status_warns_of_a_certificate_near_its_end_and_of_a_failing_renewal(tmp_path):
    root = tmp_path / "project"
    root.mkdir()
    soon, _ = make_certificate(tmp_path, 5)
    failing = tmp_path / "failing"
    status = ProjectStatus()
    shown = run_sh(status.command(str(root), soon, "mysite", "true", str(failing))).stdout
    assert "certificate: issuer=CN = t" in shown and "warning: the certificate expires within 14 days" in shown
    assert "renewal" not in shown
    later = tmp_path / "later"
    later.mkdir()
    fine, _ = make_certificate(later, 60)
    assert "warning" not in run_sh(status.command(str(root), fine, "mysite", "true", str(failing))).stdout

    # The recorder (run by systemd after each renewal run) notes the first failure and its cause,
    # keeps that date while it fails, and a success clears it.
    web1, _ = fleet_of_two()
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    # bin/notify stands in: it notes what it was asked to announce.
    notices = tmp_path / "notices"
    (fake_bin / "notify").write_text(f"#!/bin/sh\nprintf '%s|' \"$@\" >> {notices}\necho >> {notices}\n")
    (fake_bin / "notify").chmod(0o755)
    recorder = render_template("certificates/record-result.sh.j2", s=web1, notify=str(fake_bin / "notify")).replace(
        web1.certificate_renewal_failure, str(failing))
    script = tmp_path / "record.sh"
    script.write_text(recorder)
    (fake_bin / "journalctl").write_text("#!/bin/sh\necho 'Renewing an existing certificate'\n"
                                         "echo 'Failed to renew certificate mysite with error: acme:14000 refused'\n")
    (fake_bin / "journalctl").chmod(0o755)
    env = {"PATH": f"{fake_bin}:{os.environ['PATH']}", "INVOCATION_ID": "x"}
    assert run_sh(f"sh {script} certbot", SERVICE_RESULT="exit-code", EXIT_CODE="exited", EXIT_STATUS="1", **env).returncode == 0
    first = failing.read_text()
    assert "unit=certbot" in first and "cause=Failed to renew certificate mysite with error: acme:14000 refused" in first
    (fake_bin / "journalctl").write_text("#!/bin/sh\nexit 0\n")
    assert run_sh(f"sh {script} certbot", SERVICE_RESULT="timeout", **env).returncode == 0
    second = failing.read_text()
    assert second.splitlines()[0] == first.splitlines()[0] and "cause=certbot ended with timeout" in second
    shown = run_sh(status.command(str(root), fine, "mysite", "true", str(failing))).stdout
    assert f"warning: certificate renewal failing since {first.splitlines()[0].split('=', 1)[1]} (certbot): " \
           "certbot ended with timeout" in shown, shown
    assert run_sh(f"sh {script} certbot", SERVICE_RESULT="success", **env).returncode == 0
    assert not failing.exists()
    assert run_sh(f"sh {script} certbot", SERVICE_RESULT="success", **env).returncode == 0
    # The webhooks heard when it started failing (once, however long it failed) and when it worked again.
    assert notices.read_text().splitlines() == [
        "certificate renewal|failed|certbot: Failed to renew certificate mysite with error: acme:14000 refused|",
        "certificate renewal|works again|certbot|"]


def test_one_look_finds_any_trace_acme_left_and_none_on_a_host_without_it(tmp_path):
    left = tmp_path / "guestbook-fetch-certificate.sh"
    left.write_text("")
    dangling = tmp_path / "guestbook-sync-key"
    dangling.symlink_to(tmp_path / "gone")
    paths = [str(left), str(dangling), str(tmp_path / "never made")]

    def look(account: str) -> list[str]:
        fact = AcmeTraces()
        done = subprocess.run(["sh", "-c", fact.command(paths=paths, account=account)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return fact.process(done.stdout.splitlines())

    assert look("no-such-certsync-user") == [str(left), str(dangling)]
    assert look("root") == [str(left), str(dangling), "user", "group"]
    left.unlink()
    dangling.unlink()
    assert look("no-such-certsync-user") == []


def fetch_script_in(folder, web2) -> str:
    """The fetch script of web2 (fetch-certificate.sh.j2), writing the site's certificate and key
    into `folder` and reloading with an echo: run as it runs on the host, with an ssh stand-in
    that notes its arguments and answers the bundle in folder/bundle.pem."""
    script = render_template("certificates/fetch-certificate.sh.j2", s=web2, reload_command="echo reloaded",
                             certificates_sed=CERTIFICATES_SED, key_sed=KEY_SED)
    script = script.replace(web2.ssl_certificate_path, str(folder / "site.crt")).replace(
        web2.ssl_key_path, str(folder / "site.key"))
    tools = folder / "bin"
    tools.mkdir()
    (tools / "ssh").write_text(f'#!/bin/sh\necho "$*" > {folder}/ssh-arguments\ncat {folder}/bundle.pem\n')
    (tools / "ssh").chmod(0o755)
    return script


def make_bundle(folder, name: str, days: int = 30, key_of: str | None = None) -> None:
    """folder/bundle.pem as the issuer publishes it (folder/new.crt, then folder/new.key): a
    certificate for `name` that ends in `days` (negative: it has ended), then its key (or `key_of`)."""
    from datetime import datetime, timedelta, timezone

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=60))
                   .not_valid_after(now + timedelta(days=days))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
                   .sign(key, hashes.SHA256()))
    (folder / "new.crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "new.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    (folder / "bundle.pem").write_text((folder / "new.crt").read_text() + (key_of or (folder / "new.key").read_text()))


@pytest.mark.skipif(os.geteuid() != 0, reason="the script installs the files as root's: run as root (CI is)")
def test_the_fetch_script_run_installs_only_a_valid_matching_certificate_once(tmp_path):
    web1, web2 = fleet_of_two()
    script = fetch_script_in(tmp_path, web2)

    def fetch() -> subprocess.CompletedProcess:
        return subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=60,
                              env={**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"})

    make_bundle(tmp_path, "mysite.example.com")
    installed = fetch()
    assert installed.returncode == 0, installed.stderr
    assert "installed the certificate of web1" in installed.stdout and "reloaded" in installed.stdout
    assert (tmp_path / "site.crt").read_text() == (tmp_path / "new.crt").read_text()
    assert (tmp_path / "site.key").read_text() == (tmp_path / "new.key").read_text()
    assert oct((tmp_path / "site.key").stat().st_mode & 0o777) == "0o600"
    arguments = (tmp_path / "ssh-arguments").read_text()
    assert "-o StrictHostKeyChecking=yes" in arguments and arguments.strip().endswith("certsync-mysite@10.0.0.1")
    # The same certificate again: nothing installed, no reload.
    again = fetch()
    assert again.returncode == 0 and again.stdout == "", again.stdout
    good = (tmp_path / "site.crt").read_text()
    # What is refused leaves the installed files alone.
    for name, days, key_of, told in [
        ("other.example.com", 30, None, "does not name mysite.example.com"),
        ("mysite.example.com", -1, None, "missing or expired"),
        ("mysite.example.com", 30, (tmp_path / "site.key").read_text(), "do not match"),
    ]:
        make_bundle(tmp_path, name, days, key_of)
        refused = fetch()
        assert refused.returncode == 1 and told in refused.stderr, (name, refused.stderr)
        assert (tmp_path / "site.crt").read_text() == good
