"""A certificate a browser trusts, from an ACME CA (Let's Encrypt by default), with Debian's
certbot: no ACME protocol of our own.

On a bare host the site first comes up with a self-signed certificate (skeleton.py's TLS step);
its webserver then answers the HTTP-01 challenge from a folder of its own (HTTP keeps serving
/.well-known/acme-challenge/ while everything else redirects to HTTPS), and certbot asks for the
certificate (`--webroot`). certbot's deploy hook (one per project) copies it where the site reads
it, tests the webserver's config and reloads it gracefully; the same hook runs on every renewal
by certbot's own timer. certbot is asked again only when the certificate is missing or its names
changed: an ACME error fails the run with certbot's message, and the site keeps the certificate
it has; the next run asks again.

With acme_ca_certificate (a private CA's root, or the tests' Pebble), certbot trusts that CA for
the directory's TLS, on the deploy's runs and on its timer's (a drop-in of certbot.service).
"""

from __future__ import annotations

import shlex
from io import StringIO
from typing import Optional

from pyinfra import host
from pyinfra.api import FactBase
from pyinfra.operations import files, server, systemd

from .context import template
from .settings import Settings

q = shlex.quote

LIVE_DIR = "/etc/letsencrypt/live"
RENEWAL_DIR = "/etc/letsencrypt/renewal"
# One per host: certbot's timer renews every lineage in one run, with one CA bundle.
CERTBOT_DROP_IN = "/etc/systemd/system/certbot.service.d/django-deploy-ca.conf"


def acme_domains(settings: Settings) -> list[str]:
    return [settings.url, *settings.acme_extra_domains]


def certbot_command(settings: Settings, force: bool = False) -> str:
    """Shell: certbot asks the CA for the project's certificate (a lineage named after the
    project), answering the challenge from the site's ACME folder; its deploy hook installs it.
    `force`: a new certificate even if the one there is not due (another CA was chosen)."""
    trust = f"REQUESTS_CA_BUNDLE={q(settings.acme_ca_file)} " if settings.acme_ca_certificate else ""
    return (f"{trust}certbot certonly --non-interactive --agree-tos --email {q(settings.acme_email)} "
            f"--server {q(settings.acme_directory)} --webroot --webroot-path {q(settings.acme_webroot)} "
            f"--cert-name {q(settings.websiteproject)} "
            + " ".join(f"--domain {q(domain)}" for domain in acme_domains(settings))
            + f" --deploy-hook {q(settings.acme_deploy_hook)} --expand"
            + (" --force-renewal" if force else " --keep-until-expiring"))


class AcmeCertificate(FactBase):
    """The project's certificate from certbot: {"domains": sorted names, "server": the ACME
    directory it came from}, or None when it has none."""

    def command(self, cert_name: str) -> str:
        return (f"openssl x509 -in {q(LIVE_DIR + '/' + cert_name + '/cert.pem')} -noout -ext subjectAltName "
                f"2>/dev/null && sed -n 's/^server = /server=/p' {q(RENEWAL_DIR + '/' + cert_name + '.conf')}; true")

    def process(self, output) -> Optional[dict]:
        names = [part.strip().removeprefix("DNS:") for line in output for part in line.split(",")
                 if part.strip().startswith("DNS:")]
        servers = [line.strip().removeprefix("server=") for line in output if line.strip().startswith("server=")]
        return {"domains": sorted(names), "server": servers[0] if servers else None} if names else None


def acme_certificate(settings: Settings, reload_command: str) -> None:
    """The project's certificate from its ACME CA (after the webserver serves the challenge folder)."""
    files.directory(name="Folder of the ACME challenges", path=f"{settings.acme_webroot}/.well-known/acme-challenge",
                    user="root", group="root", mode="755")
    if settings.acme_ca_certificate:
        files.put(name="Root of the ACME CA", src=StringIO(settings.acme_ca_certificate), dest=settings.acme_ca_file,
                  user="root", group="root", mode="644")
        drop_in = template("certificates/certbot-ca.conf.j2", CERTBOT_DROP_IN, settings, mode="644")
    else:
        files.file(name=f"Remove {settings.acme_ca_file}", path=settings.acme_ca_file, present=False)
        drop_in = files.file(name=f"Remove {CERTBOT_DROP_IN}", path=CERTBOT_DROP_IN, present=False)
    systemd.daemon_reload(name="Reload systemd units", _if=drop_in.did_change)
    template("certificates/deploy-hook.sh.j2", settings.acme_deploy_hook, settings, mode="755",
             reload_command=reload_command)
    current = host.get_fact(AcmeCertificate, cert_name=settings.websiteproject)
    other_ca = bool(current) and current["server"] != settings.acme_directory
    if not current or current["domains"] != sorted(acme_domains(settings)) or other_ca:
        server.shell(name=f"Certificate for {', '.join(acme_domains(settings))} from {settings.acme_directory}",
                     commands=[certbot_command(settings, force=other_ca)])


def no_acme_certificate(settings: Settings) -> None:
    """ACME turned off (or the project removed): certbot forgets the project's certificate."""
    if host.get_fact(AcmeCertificate, cert_name=settings.websiteproject):
        server.shell(name="Delete the certificate from ACME",
                     commands=[f"certbot delete --non-interactive --cert-name {q(settings.websiteproject)}"])
    for path in (settings.acme_deploy_hook, settings.acme_ca_file, CERTBOT_DROP_IN):
        files.file(name=f"Remove {path}", path=path, present=False)
    files.directory(name=f"Remove {settings.acme_webroot}", path=settings.acme_webroot, present=False)
