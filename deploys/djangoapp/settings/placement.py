"""The fleet: which hosts hold which roles, where they reach each other, and what that means for
one host (FleetPlace, mixed into Settings). plan_fleet checks an inventory as a whole."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional
from urllib.parse import urlsplit, urlunsplit

from .environment import host_in_url, mask_credentials

if TYPE_CHECKING:
    from ..settings import Settings

# What a host does for the project: the inventory groups of these names say it. A host in none of
# them holds all three (the one-server case).
ROLES = ("web", "worker", "db")
# A load balancer in front of the web hosts (HAProxy): a host of its own, in the `lb` group.
LB = "lb"

# Variables about the project as a whole: every host of the fleet must have the same value.
FLEET_WIDE = ("websiteproject", "url", "database", "celery", "celery_beat", "redis_url", "lb_backend_port",
              "django_deployment_root_folder", "release_id", "rollback_to", "rolling_batch_size", "migration_host",
              "acme_email", "acme_directory", "acme_ca_certificate", "acme_extra_domains")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
# On the first load balancer, certbot's own server answers the ACME challenges while it asks the
# CA (every load balancer's HAProxy passes them on to it), on its private address: a port below
# 1024, which no process but root's may take while certbot is not running.
ACME_STANDALONE_PORT = 402


@dataclass(frozen=True)
class Fleet:
    """The project's hosts, in inventory order, with their roles and private addresses."""

    roles: dict[str, frozenset[str]]
    addresses: dict[str, Optional[str]]
    migration_host: Optional[str]

    @classmethod
    def single(cls, name: str) -> "Fleet":
        return cls({name: frozenset(ROLES)}, {name: None}, name)

    def hosts(self, role: str) -> list[str]:
        return [name for name, roles in self.roles.items() if role in roles]

    @property
    def app_hosts(self) -> list[str]:
        """The hosts that hold releases: web and worker hosts."""
        return [name for name, roles in self.roles.items() if roles & {"web", "worker"}]

    @property
    def db_host(self) -> Optional[str]:
        return next(iter(self.hosts("db")), None)

    @property
    def front_hosts(self) -> list[str]:
        """The hosts the site's clients reach, which hold its certificate: the load balancers, or
        without any the web hosts."""
        return self.hosts(LB) or self.hosts("web")

    def addresses_of(self, role: str) -> list[str]:
        """The private addresses of the hosts holding `role`, in inventory order."""
        return [self.addresses[name] for name in self.hosts(role) if self.addresses[name]]

    def switch_batches(self, size: Optional[int]) -> list[list[str]]:
        """The order in which hosts switch to a release: web hosts `size` at a time (all at once
        when None), worker-only hosts with the first batch."""
        web = self.hosts("web")
        size = size or len(web) or 1
        batches = [web[start:start + size] for start in range(0, len(web), size)] or [[]]
        batches[0] += [name for name in self.hosts("worker") if name not in web]
        return batches


class FleetPlace:
    """This host's place in the fleet: its roles and how it reaches the db host's services. Set by
    validate_inventory (a host validated alone is the whole fleet)."""

    @property
    def host_name(self) -> str:
        return self._host or "localhost"

    @property
    def fleet(self) -> Fleet:
        return self._fleet or Fleet.single(self.host_name)

    @property
    def roles(self) -> frozenset[str]:
        return self.fleet.roles[self.host_name]

    @property
    def role_names(self) -> str:
        """This host's roles, as the inventory groups name them: "web, worker", "lb"..."""
        return ", ".join(role for role in (*ROLES, LB) if role in self.roles)

    @property
    def is_web(self) -> bool:
        return "web" in self.roles

    @property
    def is_worker(self) -> bool:
        return "worker" in self.roles

    @property
    def is_db(self) -> bool:
        return "db" in self.roles

    @property
    def is_lb(self) -> bool:
        return LB in self.roles

    @property
    def lb_addresses(self) -> list[str]:
        """The load balancers' private addresses: the web hosts take the client's address from
        their X-Forwarded-For header, and from no one else's (none: no load balancer)."""
        return self.fleet.addresses_of(LB)

    @property
    def lb_backends(self) -> list[tuple[str, str]]:
        """(name, private address) of the web hosts a load balancer sends the site's requests to."""
        return [(name, self.fleet.addresses[name]) for name in self.fleet.hosts("web")]

    @property
    def holds_releases(self) -> bool:
        return self.is_web or self.is_worker

    @property
    def runs_migrations(self) -> bool:
        """This host takes the snapshot and runs the migrations of a release (once per fleet)."""
        return self.fleet.migration_host == self.host_name

    @property
    def database_host(self) -> str:
        """Where this host reaches the db host's services (PostgreSQL, Redis)."""
        db_host = self.fleet.db_host
        return "127.0.0.1" if db_host in (None, self.host_name) else self.fleet.addresses[db_host]

    @property
    def redis_on_db_host(self) -> bool:
        """Redis is installed on the db host when redis_url names the loopback; any other address
        is a Redis run elsewhere, which the deploy leaves alone."""
        return self.celery and urlsplit(self.redis_url).hostname in LOOPBACK

    @property
    def redis_password(self) -> Optional[str]:
        """The password of the Redis installed on the db host (REDIS_PASSWORD of the secrets)."""
        return self.django_environment_variables.get("REDIS_PASSWORD") if self.redis_on_db_host else None

    @property
    def broker_url(self) -> str:
        """redis_url as this host reaches it: a loopback Redis is the db host's, logged into as the
        project's own Redis user when it has a password (so this URL is a secret then)."""
        if not self.redis_on_db_host:
            return self.redis_url
        parts = urlsplit(self.redis_url)
        netloc = parts.netloc.rsplit("@", 1)
        address = host_in_url(self.database_host)
        location = f"{address}:{parts.port}" if parts.port else address
        user = f"{self.websiteproject}:{self.redis_password}" if self.redis_password else netloc[0] if len(netloc) == 2 else ""
        return urlunsplit(parts._replace(netloc=f"{user}@{location}" if user else location))

    @property
    def is_front(self) -> bool:
        """The site's clients reach this host (Fleet.front_hosts): it holds the site's certificate."""
        return self.host_name in self.fleet.front_hosts

    @property
    def uses_acme(self) -> bool:
        """This host serves a certificate from ACME (acme_email, on a host the clients reach)."""
        return bool(self.acme_email) and self.is_front

    @property
    def acme_issuer(self) -> Optional[str]:
        """The host that asks the ACME CA for the site's certificate (the first of the front
        hosts); the others pass the CA's challenges on to it and fetch the certificate from it."""
        return next(iter(self.fleet.front_hosts), None)

    @property
    def issues_certificate(self) -> bool:
        return self.is_front and self.acme_issuer == self.host_name

    @property
    def fetches_certificate(self) -> bool:
        """A front host of a fleet with ACME that is not the issuer: it gets its certificate from it."""
        return self.uses_acme and not self.issues_certificate

    @property
    def certificate_fetchers(self) -> list[tuple[str, str]]:
        """(name, private address) of the front hosts that fetch the certificate from this one."""
        if not (self.uses_acme and self.issues_certificate):
            return []
        return [(name, self.fleet.addresses[name]) for name in self.fleet.front_hosts if name != self.host_name]

    @property
    def acme_issuer_address(self) -> Optional[str]:
        """Where a host that fetches the certificate reaches the issuer (its private address)."""
        return self.fleet.addresses[self.acme_issuer] if self.fetches_certificate else None

    @property
    def acme_challenge_proxy(self) -> Optional[str]:
        """The issuer's plain-HTTP server, which this web host passes the CA's challenges on to."""
        address = self.acme_issuer_address
        if address is None or self.is_lb:
            return None
        return f"http://{host_in_url(address)}"

    @property
    def acme_standalone_address(self) -> Optional[str]:
        """On load balancers with ACME: the address where certbot's own server answers the
        challenges while it asks the CA (the issuer's private address, on ACME_STANDALONE_PORT);
        every load balancer's HAProxy passes them on to it."""
        if not (self.uses_acme and self.is_lb):
            return None
        return self.fleet.addresses[self.acme_issuer] or "127.0.0.1"

    @property
    def acme_standalone_server(self) -> Optional[str]:
        """acme_standalone_address and its port, as HAProxy names a server."""
        address = self.acme_standalone_address
        return None if address is None else f"{host_in_url(address)}:{ACME_STANDALONE_PORT}"

    @property
    def fleet_addresses(self) -> list[str]:
        """Private addresses of the other hosts that use the database and Redis."""
        return [address for name, address in self.fleet.addresses.items()
                if name != self.host_name and address and name in self.fleet.app_hosts]


def plan_fleet(hosts: dict[str, tuple[set[str], Settings]]) -> tuple[Optional[Fleet], list[str]]:
    """The fleet the inventory describes (hosts in order, each with its groups and valid settings),
    or every problem with it, each naming its variable or inventory group."""
    found = []
    for variable in FLEET_WIDE:
        values = {name: getattr(settings, variable) for name, (_, settings) in hosts.items()}
        if len({repr(value) for value in values.values()}) > 1:
            found.append(f"{variable}: must be the same on every host of the fleet ("
                         + ", ".join(f"{name}: {mask_credentials(repr(value))}" for name, value in values.items())
                         + ")")
    if found:
        return None, found
    project = next(iter(hosts.values()))[1]
    roles = {name: frozenset(groups & {*ROLES, LB}) or frozenset(ROLES) for name, (groups, _) in hosts.items()}

    def holding(*wanted: str) -> list[str]:
        return [name for name, held in roles.items() if held & set(wanted)]

    app_hosts, db_hosts = holding("web", "worker"), holding("db")
    if not holding("web"):
        found.append("inventory group web: no host serves the site; put at least one host in it")
    if project.celery and not holding("worker"):
        found.append("inventory group worker: celery is on but no host runs it; put at least one host in it")
    if project.database == "sqlite":
        if len(app_hosts) > 1:
            found.append(f"database: sqlite keeps the database in a file on one host, but {', '.join(app_hosts)} "
                         'run the app; use database = "postgresql"')
        elif app_hosts and not db_hosts:
            # The sqlite file, and Redis, live with the app.
            roles[app_hosts[0]] |= {"db"}
    elif len(db_hosts) != 1:
        found.append(f"inventory group db: database postgresql needs exactly one host in it (found: "
                     f"{', '.join(db_hosts) or 'none'})")
    found += [f"inventory group lb: host {name} is also in {', '.join(sorted(held - {LB}))}: a load balancer is a "
              "host of its own" for name, held in roles.items() if LB in held and held != {LB}]
    if len(hosts) > 1:
        found += [f"private_address: host {name} needs one: the project runs on several hosts, which reach each "
                  "other at these addresses" for name, (_, settings) in hosts.items() if not settings.private_address]
    if (project.redis_on_db_host and len(hosts) > 1
            and not project.django_environment_variables.get("REDIS_PASSWORD")):
        found.append("django_environment_variables: needs REDIS_PASSWORD: the Redis on the db host serves the "
                     "other hosts over the network")
    if project.migration_host and project.migration_host not in app_hosts:
        found.append(f"migration_host: {project.migration_host!r} is not a web or worker host of this inventory "
                     f"({', '.join(app_hosts) or 'there is none'})")
    if found:
        return None, found
    migration_host = project.migration_host or next(iter(holding("web") + app_hosts), None)
    addresses = {name: settings.private_address for name, (_, settings) in hosts.items()}
    return Fleet(roles, addresses, migration_host), []
