"""Certificates from ACME: settings, certbot's command line, the deploy hook and the webserver's
challenge folder, rendered and read without a host."""

import shlex

from deploys.djangoapp.certificates import AcmeCertificate, certbot_command
from deploys.djangoapp.context import render_template
from deploys.djangoapp.fleet import plan_fleet
from deploys.djangoapp.settings import problems
from deploys.djangoapp.skeleton import webserver_reload
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
    hook = render_template("certificates/deploy-hook.sh.j2", s=site, reload_command=webserver_reload(site))
    assert 'install -m 644 -o root -g root "$lineage/fullchain.pem" /etc/nginx/ssl/mysite.crt' in hook
    assert 'install -m 640 -o root -g www-data "$lineage/privkey.pem" /etc/nginx/ssl/mysite.key' in hook
    assert "nginx -t -q && systemctl reload nginx" in hook and "touch /var/lib/django-deploy/refreshed/nginx" in hook
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


def test_acme_on_several_web_hosts_is_refused_for_now():
    hosts = {name: ({"web"}, settings(acme_email="ops@example.com", private_address=address))
             for name, address in [("web1", "10.0.0.1"), ("web2", "10.0.0.2")]}
    _, found = plan_fleet(hosts)
    assert any(line.startswith("acme_email: a certificate from ACME for several web hosts") for line in found)
