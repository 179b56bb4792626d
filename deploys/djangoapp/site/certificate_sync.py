"""One certificate for several web hosts behind one name (certificates.py gets it from the CA).

The first web host (the issuer) alone
asks the CA and renews; every other web host (a fetcher) passes /.well-known/acme-challenge/ on,
over plain HTTP on the private network, to the issuer's port-80 server (the webserver templates),
so the CA's check succeeds whichever host the name sends it to. The fetchers pull the certificate
and its key from the issuer over SSH, on the deploy's runs and twice a day by a timer of their
own, so a renewal reaches them without a deploy (a pull, not a push from certbot's hook: a fetcher
that was down catches up on its next run, and no host gets a way to write to another):
- each fetcher has an SSH key of its own (made on it, never leaving it), root's alone;
- on the issuer, a system user (certificate_sync_user) with no password may log in with those
  keys only from the fetchers' private addresses, only to run `cat` of one file (authorized_keys
  `restrict,from=...,command=...`: no shell, no forwarding, no tty), a copy of the certificate
  chain and key that the deploy hook writes, readable by root and that user alone;
- the fetchers know the issuer's SSH host keys from the deploy (read over its own SSH connection
  to the issuer), so they never trust a host key on first use;
- a fetcher installs what it got only if the certificate is valid now, names `url` and matches
  the key, and only when it changed, then reloads its webserver gracefully if its config test
  passes.
Trust: a fetcher's key gives exactly what a fetcher has anyway (the site's certificate and key);
the issuer can send the fetchers a certificate for the site, never run anything on them.
"""

from __future__ import annotations

from io import StringIO
from typing import Optional

from pyinfra import host, inventory, state
from pyinfra.api import FactBase, operation
from pyinfra.facts.files import File, FileContents
from pyinfra.operations import files, server

from ..core.context import template, write_files
from ..core.host_files import HostFile, absent
from ..core.shell import q
from ..core.units import remove_units, timer_on
from ..services.notifications import notify_program
from ..settings import Settings

# The PEM blocks of a certificate chain, and of a private key: the copy the fetchers get is made
# of these alone, so that what a fetcher installs is byte for byte what the issuer published.
CERTIFICATES_SED = q("/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p")
KEY_SED = q("/-----BEGIN [A-Z ]*PRIVATE KEY-----/,/-----END [A-Z ]*PRIVATE KEY-----/p")


def publish_command(settings: Settings, lineage: str) -> str:
    """Shell (on the issuer): the chain and key of certbot's `lineage` folder (a shell word) copied,
    in one file only root and certificate_sync_user may read, for the fetchers."""
    bundle = q(settings.certificate_sync_bundle)
    return (f"(umask 077 && {{ sed -n {CERTIFICATES_SED} {lineage}/fullchain.pem && "
            f"sed -n {KEY_SED} {lineage}/privkey.pem; }} >{bundle}.new) && "
            f"chgrp {q(settings.certificate_sync_user)} {bundle}.new && chmod 640 {bundle}.new && "
            f"mv -f {bundle}.new {bundle}")


def authorized_key_line(bundle: str, project: str, address: str, public_key: str, fetcher: str) -> str:
    """The issuer's authorized_keys line of a fetcher's key: from its private address only, to read
    the certificate copy (`bundle`) only: no shell, no forwarding, no tty."""
    kind, key = public_key.split()[:2]
    return f'restrict,from="{address}",command="cat {bundle}" {kind} {key} {project}-certificate-sync@{fetcher}'



class CertificateDigest(FactBase):
    """sha256 of the certificate blocks of `certificates` followed by the key block of `key` (the
    same file for the issuer's copy), or None when either is missing."""

    def command(self, certificates: str, key: str) -> str:
        return (f"if [ -f {q(certificates)} ] && [ -f {q(key)} ]; then "
                f"{{ sed -n {CERTIFICATES_SED} {q(certificates)}; sed -n {KEY_SED} {q(key)}; }} "
                "| sha256sum | cut -d' ' -f1; fi")

    def process(self, output) -> Optional[str]:
        return output[0].strip() if output and output[0].strip() else None


class SshHostKeys(FactBase):
    """The host's SSH host public keys, "type key" each."""

    default = list

    def command(self) -> str:
        return "cat /etc/ssh/ssh_host_*_key.pub 2>/dev/null; true"

    def process(self, output) -> list[str]:
        return [" ".join(line.split()[:2]) for line in output if len(line.split()) >= 2]


def _in_run(name: str):
    """The inventory's host of that name when it is in this run, else None (--limit)."""
    other = inventory.get_host(name, default=None)
    return other if other is not None and other in state.active_hosts else None


@operation()
def sync_key(path: str, comment: str, wanted: bool):
    """A fetcher's SSH key for the issuer, made on the host once. Every web host adds this step
    (`wanted` on the fetchers), so that it runs everywhere before the issuer authorizes the keys."""
    if not wanted or (host.get_fact(File, path=path) and host.get_fact(File, path=f"{path}.pub")):
        host.noop("the SSH key to fetch the certificate is there" if wanted else "not a fetcher")
        return
    folder = path.rsplit("/", 1)[0]
    yield (f"mkdir -p {q(folder)} && rm -f {q(path)} {q(path + '.pub')} && "
           f"ssh-keygen -q -t ed25519 -N '' -C {q(comment)} -f {q(path)}")


@operation()
def authorized_fetchers(path: str, fetchers: list[tuple[str, str]], key_path: str, bundle: str, project: str):
    """On the issuer: the fetchers' keys in its certificate user's authorized_keys, read from the
    fetchers when this step runs (after sync_key made them). A fetcher left out of the run keeps
    the line it had."""
    current = host.get_fact(FileContents, path=path) or []
    lines = []
    for name, address in fetchers:
        other = _in_run(name)
        public = other.get_fact(FileContents, path=f"{key_path}.pub") if other is not None else None
        if public:
            lines.append(authorized_key_line(bundle, project, address, public[0], name))
        else:
            lines += [line for line in current if line.endswith(f"-certificate-sync@{name}")]
    yield from files.put._inner(src=StringIO("".join(f"{line}\n" for line in lines)), dest=path,
                                user="root", group="root", mode="644")


@operation()
def publish_certificate(live: str, bundle: str, command: str):
    """On the issuer: the copy the fetchers read made from certbot's certificate (in its `live`
    folder), when it differs."""
    ours = host.get_fact(CertificateDigest, certificates=f"{live}/fullchain.pem", key=f"{live}/privkey.pem")
    if ours is None or ours == host.get_fact(CertificateDigest, certificates=bundle, key=bundle):
        host.noop("the fetchers' copy of the certificate is up to date")
        return
    yield command


@operation()
def fetch_certificate(script: str, issuer: Optional[str], bundle: str, certificate: str, key: str):
    """On a fetcher: the issuer's certificate and key, when they differ from the ones installed
    (compared here, on both hosts, through the deploy's own connections). Every web host adds this
    step (issuer None but on fetchers), so that it runs after the issuer's certificate is there."""
    other = _in_run(issuer) if issuer else None
    if other is None:
        host.noop("not a fetcher" if not issuer else f"{issuer} is not in this run")
        return
    theirs = other.get_fact(CertificateDigest, certificates=bundle, key=bundle)
    if theirs is None:
        host.noop(f"{issuer} has no certificate from the CA yet")
        return
    if theirs == host.get_fact(CertificateDigest, certificates=certificate, key=key):
        host.noop(f"the certificate of {issuer} is installed")
        return
    yield script


def timer_paths(settings: Settings) -> list[str]:
    service = settings.certificate_sync_service
    return [f"/etc/systemd/system/{service}.service", f"/etc/systemd/system/{service}.timer"]


def renewal_recorder(settings: Settings) -> None:
    template("certificates/record-result.sh.j2", settings.certificate_renewal_recorder, settings, mode="755",
             notify=q(notify_program(settings)))


def sync_source(settings: Settings, fetchers: list[tuple[str, str]]) -> None:
    """On the issuer: the user the fetchers log in as, with their keys."""
    user, home = settings.certificate_sync_user, settings.certificate_sync_home
    server.group(name=f"Group {user}", group=user, system=True)
    server.user(name=f"User {user}: the other hosts that serve the site read the certificate as it", user=user, group=user,
                home=home, shell="/bin/sh", system=True, ensure_home=False)
    files.directory(name=f"Directory {home}", path=home, user="root", group=user, mode="750")
    files.directory(name=f"Directory {home}/.ssh", path=f"{home}/.ssh", user="root", group="root", mode="755")
    authorized_fetchers(name=f"Keys of {', '.join(name for name, _ in fetchers)} in {home}/.ssh/authorized_keys",
                        path=f"{home}/.ssh/authorized_keys", fetchers=fetchers, key_path=settings.certificate_sync_key,
                        bundle=settings.certificate_sync_bundle, project=settings.websiteproject)


def fetcher(settings: Settings, reload_command: str) -> None:
    """A fetcher: the issuer's host keys, the fetch script, and its service and timer."""
    issuer = _in_run(settings.acme_issuer)
    known_hosts = settings.certificate_sync_known_hosts
    if issuer is not None:
        keys = issuer.get_fact(SshHostKeys)
        write_files(f"the SSH host keys of {settings.acme_issuer}", [HostFile(
            known_hosts, "".join(f"{settings.acme_issuer_address} {key}\n" for key in keys).encode(), "644")])
    else:
        host.noop(f"{settings.acme_issuer} is not in this run: its SSH host keys are not checked")
    renewal_recorder(settings)
    template("certificates/fetch-certificate.sh.j2", settings.certificate_fetch_script, settings, mode="700",
             reload_command=reload_command, certificates_sed=CERTIFICATES_SED, key_sed=KEY_SED)
    service, timer = timer_paths(settings)
    timer_on(f"{settings.certificate_sync_service}.timer",
             template("certificates/certificate-sync.service.j2", service, settings, mode="644",
                      record_result=settings.certificate_renewal_recorder),
             template("certificates/certificate-sync.timer.j2", timer, settings, mode="644"))


class Account(FactBase):
    """"user" and "group" when a user and a group of this name exist: one look for both (server.user
    and server.group take five round trips to find none)."""

    default = set

    def command(self, account: str) -> str:
        return (f"getent passwd {q(account)} >/dev/null && echo user; "
                f"getent group {q(account)} >/dev/null && echo group; true")

    def process(self, output):
        return set(output)


def no_sync_source(settings: Settings) -> None:
    """No fetchers (or not the issuer): the certificate user and its copy go."""
    home = settings.certificate_sync_home
    user = settings.certificate_sync_user
    account = host.get_fact(Account, account=user)
    if "user" in account:
        server.user(name=f"Remove user {user}", user=user, present=False)
    if "group" in account:
        server.group(name=f"Remove group {user}", group=user, present=False)
    absent(name=f"Remove {home}", paths=[home])


def no_fetcher(settings: Settings) -> None:
    """Not (or no longer) a fetcher: its key, script, service and timer go."""
    remove_units([settings.certificate_sync_service])
    absent(name="Remove the fetcher's key, known hosts and script",
           paths=[settings.certificate_sync_key, f"{settings.certificate_sync_key}.pub",
                  settings.certificate_sync_known_hosts, settings.certificate_fetch_script])
