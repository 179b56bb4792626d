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

Several web hosts behind one name share one certificate (certificate_sync.py). Behind load
balancers the certificate is theirs (the web hosts keep a self-signed one for their own HTTPS):
the first one asks for it with certbot's own server answering the challenges, on its private
address (ACME_STANDALONE_PORT), to which every load balancer's HAProxy passes them on; the
others fetch it as web hosts do.

Each run of the renewal (certbot.service on the issuer, the fetch service on the others) notes a
failure, with when it began and its cause, in a file that status.py shows; a success clears it.
"""

from __future__ import annotations

from typing import Optional

from pyinfra import host
from pyinfra.api import FactBase, operation
from pyinfra.facts.files import FileContents
from pyinfra.operations import files, server

from ..core.context import fact_before_run, template, write_files
from ..core.host_files import ExistingPaths, FileStates, HostFile, absent
from ..core.shell import q
from ..core.units import reload_units, unit_paths
from ..settings import Settings
from ..settings.placement import ACME_STANDALONE_PORT
from .certificate_sync import (
    Account,
    fetch_certificate,
    fetcher,
    no_fetcher,
    no_sync_source,
    publish_certificate,
    publish_command,
    renewal_recorder,
    sync_key,
    sync_source,
)

LIVE_DIR = "/etc/letsencrypt/live"
RENEWAL_DIR = "/etc/letsencrypt/renewal"
# One per host: certbot's timer renews every lineage in one run, with one CA bundle.
CERTBOT_DROP_IN = "/etc/systemd/system/certbot.service.d/django-deploy-ca.conf"


def acme_domains(settings: Settings) -> list[str]:
    return [settings.url, *settings.acme_extra_domains]


def certbot_command(settings: Settings, force: bool = False) -> str:
    """Shell: certbot asks the CA for the project's certificate (a lineage named after the
    project), answering the challenge from the site's ACME folder (on a load balancer: from its
    own server, which HAProxy passes the challenges on to); its deploy hook installs it.
    `force`: a new certificate even if the one there is not due (another CA was chosen)."""
    trust = f"REQUESTS_CA_BUNDLE={q(settings.acme_ca_file)} " if settings.acme_ca_certificate else ""
    answer = (f"--standalone --http-01-address {q(settings.acme_standalone_address)} "
              f"--http-01-port {ACME_STANDALONE_PORT}" if settings.acme_standalone_address
              else f"--webroot --webroot-path {q(settings.acme_webroot)}")
    return (f"{trust}certbot certonly --non-interactive --agree-tos --email {q(settings.acme_email)} "
            f"--server {q(settings.acme_directory)} {answer} "
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


def _issuer(settings: Settings, reload_command: str) -> None:
    """The issuer: certbot, its hook and CA, and the copy the fetchers read (when there are any)."""
    if not settings.acme_standalone_address:
        files.directory(name="Folder of the ACME challenges",
                        path=f"{settings.acme_webroot}/.well-known/acme-challenge", user="root", group="root", mode="755")
    if settings.acme_ca_certificate:
        write_files("the root of the ACME CA", [
            HostFile(settings.acme_ca_file, settings.acme_ca_certificate.encode(), "644")])
        drop_in = template("certificates/certbot-ca.conf.j2", CERTBOT_DROP_IN, settings, mode="644")
    else:
        files.file(name=f"Remove {settings.acme_ca_file}", path=settings.acme_ca_file, present=False)
        drop_in = files.file(name=f"Remove {CERTBOT_DROP_IN}", path=CERTBOT_DROP_IN, present=False)
    renewal_recorder(settings)
    result_drop_in = template("certificates/certbot-result.conf.j2", settings.certbot_result_drop_in, settings,
                              mode="644")
    reload_units(drop_in, result_drop_in)
    fetchers = settings.certificate_fetchers
    if fetchers:
        sync_source(settings, fetchers)
    else:
        no_sync_source(settings)
    template("certificates/deploy-hook.sh.j2", settings.acme_deploy_hook, settings, mode="755",
             reload_command=reload_command, publish_command=publish_command(settings, '"$lineage"') if fetchers else "")
    current = fact_before_run(AcmeCertificate, cert_name=settings.websiteproject)
    other_ca = bool(current) and current["server"] != settings.acme_directory
    if not current or current["domains"] != sorted(acme_domains(settings)) or other_ca:
        server.shell(name=f"Certificate for {', '.join(acme_domains(settings))} from {settings.acme_directory}",
                     commands=[certbot_command(settings, force=other_ca)])
    if fetchers:
        live = f"{LIVE_DIR}/{settings.websiteproject}"
        publish_certificate(name="The certificate and key for the other hosts that serve the site", live=live,
                            bundle=settings.certificate_sync_bundle, command=publish_command(settings, q(live)))


def acme_certificate(settings: Settings, reload_command: str) -> None:
    """The site's certificate from its ACME CA (after the webserver serves the challenge folder):
    asked for on the issuer, fetched from it by the other hosts that serve the site."""
    # Every such host adds sync_key and fetch_certificate, in this order around the issuer's steps:
    # pyinfra runs a step on all hosts before the next, so the fetchers' keys exist before the
    # issuer authorizes them, and the issuer's certificate before the fetchers fetch it.
    sync_key(name="SSH key to fetch the certificate from the issuer", path=settings.certificate_sync_key,
             comment=f"{settings.websiteproject}-certificate-sync@{settings.host_name}",
             wanted=settings.fetches_certificate)
    if settings.issues_certificate:
        _issuer(settings, reload_command)
        no_fetcher(settings)
    else:
        _no_issuer(settings)
        fetcher(settings, reload_command)
    fetch_certificate(name="The certificate from the issuer", script=settings.certificate_fetch_script,
                      issuer=settings.acme_issuer if settings.fetches_certificate else None,
                      bundle=settings.certificate_sync_bundle, certificate=settings.ssl_certificate_path,
                      key=settings.ssl_key_path)


class AcmeTraces(FactBase):
    """What ACME and certificate sync left on the host: those of `paths` that exist, and "user" and
    "group" when the certificate user and group (`account`) do. One look, where the steps that
    take them away need about ten."""

    default = list

    def command(self, paths: list[str], account: str) -> str:
        return f"{ExistingPaths().command(paths)}; {Account().command(account)}"

    def process(self, output):
        return [line for line in output if line]


def acme_traces(settings: Settings) -> list[str]:
    """AcmeTraces of the project (certbot's CA drop-in, one per host, among them), read once."""
    name = settings.websiteproject
    return fact_before_run(AcmeTraces, account=settings.certificate_sync_user, paths=[
        f"{LIVE_DIR}/{name}", f"{RENEWAL_DIR}/{name}.conf", CERTBOT_DROP_IN, settings.certbot_result_drop_in,
        settings.acme_deploy_hook, settings.acme_ca_file, settings.acme_webroot, settings.certificate_sync_home,
        settings.certificate_sync_key, f"{settings.certificate_sync_key}.pub", settings.certificate_sync_known_hosts,
        settings.certificate_fetch_script, *unit_paths(settings.certificate_sync_service),
        settings.certificate_renewal_recorder, settings.certificate_renewal_failure])


def had_acme_certificate(settings: Settings) -> bool:
    """The host serves (or served) a certificate from ACME: certbot's, or one fetched from the issuer."""
    traces = acme_traces(settings)
    return (settings.certificate_fetch_script in traces
            or (f"{LIVE_DIR}/{settings.websiteproject}" in traces
                and bool(fact_before_run(AcmeCertificate, cert_name=settings.websiteproject))))


def _no_issuer(settings: Settings) -> None:
    """Not (or no longer) the issuer: certbot forgets the project's certificate, and its hook, CA
    and challenge folder go."""
    if fact_before_run(AcmeCertificate, cert_name=settings.websiteproject):
        server.shell(name="Delete the certificate from ACME",
                     commands=[f"certbot delete --non-interactive --cert-name {q(settings.websiteproject)}"])
    # certbot's CA drop-in is one per host: removed when it is this project's (names its CA file).
    ca_drop_in = host.get_fact(FileContents, path=CERTBOT_DROP_IN) or []
    ours = [CERTBOT_DROP_IN] if any(settings.acme_ca_file in line for line in ca_drop_in) else []
    removed = absent(name="Remove certbot's drop-ins, hook, CA and challenge folder of the project",
                     paths=[*ours, settings.certbot_result_drop_in, settings.acme_deploy_hook, settings.acme_ca_file,
                            settings.acme_webroot])
    reload_units(removed)
    no_sync_source(settings)


def no_acme_certificate(settings: Settings) -> None:
    """ACME turned off (or the project removed): certbot forgets the project's certificate, and
    nothing of the issuer's or the fetchers' part stays."""
    if not acme_traces(settings):
        return  # never had it (most hosts): nothing to take away
    _no_issuer(settings)
    no_fetcher(settings)
    absent(name="Remove the renewal recorder and its failure note",
           paths=[settings.certificate_renewal_recorder, settings.certificate_renewal_failure])


@operation()
def self_signed_certificate(certificate: str, key: str, common_name: str, replace: bool = False):
    """Generate a self-signed certificate and its key, unless both exist already (or `replace`).
    The key is readable by root alone, from its first byte on: the webserver's master reads it as
    root, and no other process of the host (the apps of this and other projects) needs it."""
    found = host.get_fact(FileStates, paths=[certificate, key])
    key_access = f"chown root:root {q(key)} && chmod 600 {q(key)}"
    if not replace and certificate in found and key in found:
        if found[key][1:] == ("root", "root", "600"):
            host.noop(f"{certificate} exists")
        else:
            yield key_access
        return
    yield (
        "(umask 077 && openssl req -x509 -newkey rsa:2048 -sha256 -days 825 -nodes -batch "
        f"-subj {q('/CN=' + common_name)} -addext {q('subjectAltName=DNS:' + common_name)} "
        f"-keyout {q(key)} -out {q(certificate)} 2>/dev/null) && chmod 644 {q(certificate)} && {key_access}"
    )


def site_certificate(settings: Settings) -> list[str]:
    """Install the given certificate, or make a self-signed one once (with ACME: until the CA's
    replaces it; ACME turned off: again, in place of the CA's). Returns the files whose change
    needs the webserver (or the load balancer) to reload."""
    if settings.site_certificate:
        # The key is never readable by others, not even while it is written (host_files.py).
        write_files("the site certificate and key", [
            HostFile(settings.ssl_certificate_path, settings.site_certificate.encode(), "644"),
            HostFile(settings.ssl_key_path, settings.site_key.encode(), "600", secret=True)])
        return [settings.ssl_certificate_path, settings.ssl_key_path]
    self_signed_certificate(
        name="Generate a self-signed certificate (no site_certificate given)",
        certificate=settings.ssl_certificate_path,
        key=settings.ssl_key_path,
        common_name=settings.url,
        replace=not settings.uses_acme and had_acme_certificate(settings),
    )
    return [settings.ssl_certificate_path, settings.ssl_key_path]
