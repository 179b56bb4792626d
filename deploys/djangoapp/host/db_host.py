"""The services of a db host that every project deployed to it shares: PostgreSQL's listen
addresses, and Redis (its addresses and its users).

Each project records what it needs from them in a claim of its own (CLAIMS_DIR/<project>.json:
the private address other hosts reach them at, and whether it uses PostgreSQL and Redis). The
shared settings are made from every claim on the host, so deploying one project never takes away
what another needs, and removing one takes away only its own. Projects take turns (the db host
lock): a run that planned on claims another project has changed since refuses, changing nothing.

Redis gives each project with a REDIS_PASSWORD a user of its own (an ACL user named after the
project, its password stored hashed), so two projects keep two passwords. A project without one
uses Redis's default user, which has no password: only possible while Redis listens on the
loopback alone. Once a project makes Redis listen on a private address, the default user is
turned off, and a project that would need it is refused.

Redis is not restarted for another project's change: Celery workers may stop consuming after a
Redis restart (a long-standing Celery bug), and those of the other projects are not in this run
to be restarted. Users and addresses are changed on the running Redis (ACL SETUSER, CONFIG SET
bind) by the kit's own admin user, whose password is made on the host and read by root only; the
files stay the truth for the next start.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from urllib.parse import urlsplit
from typing import Optional

from pyinfra import host, state
from pyinfra.api import FactBase, operation
from pyinfra.facts.files import File
from pyinfra.operations import files

from ..core import failure
from ..core.context import render_template, write_files
from ..core.host_files import HostFile, secret_file
from ..core.lock import (RUN_TOKEN, DeployLock, break_command, let_go_if_command, lock_holder, release_lock_command,
                         take_command)
from ..core.shell import q
from ..core.units import refresh_service, reload_units
from ..settings import DeployRefused, Settings
from ..settings.layout import database_name
from .postgres import postgres_access

CLAIMS_DIR = "/etc/django-deploy/db-host"
REDIS_USERS_DIR = "/etc/redis/django-deploy"
REDIS_DROP_IN = "/etc/systemd/system/redis-server.service.d/listen.conf"
# The shared requirepass file of earlier versions of the kit: replaced by the projects' users.
OLD_REDIS_PASSWORD_FILE = "/etc/redis/django-deploy-password.conf"
# The kit's admin user (a project name cannot start with "_") and its password, root's alone.
REDIS_ADMIN = "_deploy-admin"
REDIS_ADMIN_PASSWORD = "/etc/django-deploy/redis-admin.password"
# Held while a project changes the shared services, so that two projects deploying at once take
# turns (each writes what it derives from every claim). In /run: a reboot ends a killed run's.
DB_HOST_LOCK = "/run/django-deploy/db-host.lock"
DB_HOST_LOCK_WAIT = 300  # seconds: another project's turn restarts PostgreSQL or Redis at most


def read_claims(claims_dir: str = CLAIMS_DIR) -> str:
    """Shell: every claim read once, into $claims (CLAIMS_DIGEST: their digest)."""
    return f'claims="$(cat {q(claims_dir)}/*.json 2>/dev/null || true)"'


CLAIMS_DIGEST = 'printf "%s" "$claims" | sha256sum | cut -c1-64'


class DbHostClaims(FactBase):
    """Every project's claim on this host, and their digest: {"claims": {project: claim},
    "digest": ...}."""

    def command(self, claims_dir: str = CLAIMS_DIR) -> str:
        return f'{read_claims(claims_dir)}; echo "digest $({CLAIMS_DIGEST})"; printf "%s\\n" "$claims"'

    def process(self, output):
        claims, digest = {}, None
        for line in output:
            if line.startswith("digest "):
                digest = line.split(" ", 1)[1].strip()
            elif line.strip():
                claim = json.loads(line)
                claims[claim["project"]] = claim
        return {"claims": claims, "digest": digest}


class RedisMajorVersion(FactBase):
    """The major version of Redis installed here, or else of the one apt would install, or None."""

    def command(self) -> str:
        return ("redis-server --version 2>/dev/null | sed -n 's/.* v=\\([0-9][0-9]*\\)\\..*/\\1/p'; "
                "apt-cache policy redis-server 2>/dev/null "
                "| sed -n 's/^ *Candidate: \\([0-9]*:\\)\\{0,1\\}\\([0-9][0-9]*\\)\\..*/\\2/p'")

    def process(self, output):
        versions = [int(line) for line in output if line.strip().isdigit()]
        return versions[0] if versions else None


def project_claim(settings: Settings) -> dict:
    """What this project needs from its db host's shared services."""
    redis = None
    if settings.redis_on_db_host:
        redis = "user" if settings.redis_password else "default"
    return {"project": settings.websiteproject, "listen": settings.shared_addresses,
            "postgresql": settings.database == "postgresql", "redis": redis,
            "redis_db": redis_database(settings.redis_url) if redis else None}


def redis_database(url: str) -> int:
    """The database number of a redis:// URL (0 when it names none)."""
    path = urlsplit(url).path.strip("/")
    return int(path) if path.isdigit() else 0


def postgres_listen(claims: dict[str, dict]) -> str:
    """listen_addresses for every project that uses PostgreSQL here."""
    addresses = sorted({a for claim in claims.values() if claim["postgresql"] for a in claim["listen"]})
    return ",".join(["localhost", *addresses])


def redis_bind(claims: dict[str, dict]) -> list[str]:
    """The addresses Redis listens on for every project that uses it here ("-" before ::1: a host
    without IPv6 still starts)."""
    addresses = sorted({a for claim in claims.values() if claim["redis"] for a in claim["listen"]})
    return ["127.0.0.1", "-::1", *addresses]


def redis_user_file(project: str) -> str:
    return f"{REDIS_USERS_DIR}/{project}.conf"


def redis_permissions(redis_major: Optional[int]) -> str:
    """What a project's Redis user may do: every key, channel and command but the `@admin` and
    `@dangerous` ones, which act on the whole server and so on every project sharing it (ACL
    users and passwords, CONFIG, SHUTDOWN, DEBUG, MONITOR, CLIENT LIST/KILL, SLOWLOG, FLUSHALL,
    SWAPDB, INFO, replication). Celery and kombu (BRPOP, LPUSH, pub/sub, Lua scripts: EVALSHA and
    SCRIPT LOAD), Django's RedisCache, django-redis and channels-redis need none of those but two,
    given back:
    - FLUSHDB: Django's `cache.clear()` (and django-redis's). It empties the database this
      connection selected; any key of it could be deleted anyway.
    - KEYS: django-redis's `cache.keys()` and channels-redis's `flush()` (in Lua). It lists
      names SCAN lists too; it is dangerous only as slow on a big database.
    FUNCTION (Redis 7) goes too: functions are the server's, not a database's, so one project
    could replace or flush another's; none of these libraries loads any.
    Redis 7 gives a new user no Pub/Sub channel (Celery uses them): `&*` grants them; Redis 6
    grants them anyway, and knows neither `&` nor FUNCTION."""
    if (redis_major or 7) >= 7:
        return "~* &* +@all -@admin -@dangerous +flushdb +keys -function"
    return "~* +@all -@admin -@dangerous +flushdb +keys"


def redis_admin_permissions(redis_major: Optional[int]) -> str:
    """The kit's admin user: every key, channel and command (it sets the users and addresses)."""
    return "~* &* +@all" if (redis_major or 7) >= 7 else "~* +@all"


def redis_default_user(claims: dict[str, dict], redis_major: Optional[int]) -> str:
    """The rules of Redis's default user, which has no password: off, unless a project here uses
    it (one without REDIS_PASSWORD, possible on the loopback alone); then with a project's
    permissions. Debian's default user may do anything: left so, any process of the host (the
    app of any project) could log in as it and change another project's password. With no project
    using Redis here, it goes back to Debian's settings: live as at its next start."""
    if not any(claim["redis"] for claim in claims.values()):
        return f"on nopass {redis_admin_permissions(redis_major)}"
    bind = redis_bind(claims)
    if len(bind) > 2 or not any(claim["redis"] == "default" for claim in claims.values()):
        return "off"
    return f"on nopass {redis_permissions(redis_major)}"


def redis_user_config(project: str, password: str, redis_major: Optional[int]) -> str:
    """The project's Redis user: its password as a SHA-256 hash (so the file does not hold the
    password itself), and a project's permissions."""
    digest = hashlib.sha256(password.encode()).hexdigest()
    return f"user {project} on #{digest} {redis_permissions(redis_major)}\n"


def redis_admin_command(redis_major: Optional[int], password_file: str = REDIS_ADMIN_PASSWORD,
                        user_file: str = redis_user_file(REDIS_ADMIN)) -> str:
    """Shell: make the admin user's password (random, root's alone) and its user file."""
    password, user_file = q(password_file), q(user_file)
    return (f"(umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n' > {password}) && "
            f"digest=$(tr -d '\\n' < {password} | sha256sum | cut -d ' ' -f 1) && "
            f"install -m 640 -o root -g redis /dev/null {user_file} && "
            f"echo \"user {REDIS_ADMIN} on #$digest {redis_admin_permissions(redis_major)}\" > {user_file}")


def redis_apply_command(bind: list[str], default_user: str, users_dir: str = REDIS_USERS_DIR,
                        admin_password: str = REDIS_ADMIN_PASSWORD) -> str:
    """Shell: bring the running Redis in line with the user files, these addresses and the default
    user's rules (redis_default_user), as the admin user (as the default user when the admin is
    not live yet: it is changed last). Its rules are reset first: a connection open as the default
    user keeps no right it no longer has. Commands go through redis-cli's
    input, never its command line; an answer other than OK (or a count) fails it. A Redis that
    does not answer, or cannot take the change live (Redis 6 cannot change `bind`), is restarted
    with the files instead."""
    users_dir = q(users_dir)
    statements = (
        f"for file in {users_dir}/*.conf; do [ -f \"$file\" ] && sed -n 's/^user \\([^ ]*\\) /ACL SETUSER \\1 reset /p' \"$file\"; done; "
        f"for user in $(cli ACL USERS); do [ \"$user\" = default ] || [ -f {users_dir}/\"$user\".conf ] "
        f"|| echo \"ACL DELUSER $user\"; done; "
        f"echo 'CONFIG SET bind \"{' '.join(bind)}\"'; "
        f"echo 'ACL SETUSER default reset {default_user}'"
    )
    return (
        f"cli() {{ REDISCLI_AUTH=\"$(cat {q(admin_password)})\" redis-cli --no-auth-warning --user {REDIS_ADMIN} \"$@\"; }}; "
        # Not PING: redis-cli goes on as the default user when its login fails, and PING answers.
        f"if [ \"$(cli ACL WHOAMI 2>/dev/null)\" != {REDIS_ADMIN} ]; then cli() {{ redis-cli \"$@\"; }}; fi; "
        "if [ \"$(cli PING 2>/dev/null)\" = PONG ] "
        f"&& answers=$({{ {statements}; }} | cli 2>&1) "
        "&& ! printf '%s\\n' \"$answers\" | grep -qv '^\\(OK\\|[0-9]*\\)$'; "
        "then echo 'Redis changed live'; "
        "else echo 'Redis restarted to take the change'; systemctl restart redis-server; fi"
    )


def postgres_refusal(claims: dict[str, dict]) -> Optional[str]:
    """Why these claims cannot each have a PostgreSQL database and role of their own, or None:
    my-shop's and my_shop's would be one (each deploy would reset the other's password, and the
    removal of one drop the other's data)."""
    owners: dict[str, list[str]] = {}
    for name, claim in sorted(claims.items()):
        if claim["postgresql"]:
            owners.setdefault(database_name(name), []).append(name)
    for database, names in owners.items():
        if len(names) > 1:
            return (f"websiteproject: {' and '.join(names)} would share the PostgreSQL database and role "
                    f"{database} of this db host; give one of them another name")
    return None


def redis_refusal(claims: dict[str, dict]) -> Optional[str]:
    """Why these claims cannot all be served by one Redis, or None. Two projects in one database
    would share Celery's queue, each worker running the other's tasks."""
    users: dict[int, list[str]] = {}
    for name, claim in sorted(claims.items()):
        if claim["redis"]:
            users.setdefault(claim.get("redis_db") or 0, []).append(name)
    for number, names in users.items():
        if len(names) > 1:
            return (f"redis_url: {' and '.join(names)} would share Redis database {number} of this db host, and "
                    f"their Celery workers would run each other's tasks; give each its own database number "
                    f"(redis://127.0.0.1:6379/{max(users) + 1})")
    networked = sorted(name for name, claim in claims.items() if claim["redis"] and claim["listen"])
    passwordless = sorted(name for name, claim in claims.items() if claim["redis"] == "default")
    if networked and passwordless:
        return (f"django_environment_variables: needs REDIS_PASSWORD for {', '.join(passwordless)}: the Redis "
                f"of this db host also serves other hosts (for {', '.join(networked)}), so it lets no one in "
                "without a password")
    return None


def redis_drop_in(claims: dict[str, dict], redis_major: Optional[int]) -> str:
    """The systemd drop-in that starts Redis with the projects' addresses and users."""
    bind = redis_bind(claims)
    users = [redis_user_file(name) for name, claim in sorted(claims.items()) if claim["redis"] == "user"]
    return render_template("systemd/redis-listen.conf.j2", bind=" ".join(bind),
                           users=[redis_user_file(REDIS_ADMIN), *users], networked=len(bind) > 2,
                           default_user=redis_default_user(claims, redis_major),
                           projects=sorted(n for n, c in claims.items() if c["redis"]))


@operation()
def redis_admin(redis_major: Optional[int]):
    """The kit's Redis admin user: made once, with a random password."""
    if host.get_fact(File, path=REDIS_ADMIN_PASSWORD) and host.get_fact(File, path=redis_user_file(REDIS_ADMIN)):
        host.noop("the Redis admin user exists")
        return
    yield redis_admin_command(redis_major)


def _redis(claims: dict[str, dict], settings: Settings, claim: Optional[dict]) -> None:
    """Install the project's Redis user (or take it away), then bring Redis in line with every
    project's users and addresses."""
    user_file = redis_user_file(settings.websiteproject)
    redis_major = host.get_fact(RedisMajorVersion)
    # setgid, as Debian's /etc/redis is: a folder made in it inherits the bit, which chmod keeps.
    files.directory(name="Redis users folder", path=REDIS_USERS_DIR, user="root", group="redis", mode="2750")
    redis_admin(name="Redis admin user of the deploys", redis_major=redis_major)
    if claim and claim["redis"] == "user":
        secret_file(name=f"Redis user {settings.websiteproject}", path=user_file,
                    content=redis_user_config(settings.websiteproject, settings.redis_password, redis_major),
                    user="root", group="redis", mode="640")
    else:
        files.file(name=f"No Redis user {settings.websiteproject}", path=user_file, present=False)
    files.file(name="No shared Redis password (each project has its own user)", path=OLD_REDIS_PASSWORD_FILE,
               present=False)
    if any(other["redis"] for other in claims.values()):
        drop_in = write_files("Redis's addresses and users",
                              [HostFile(REDIS_DROP_IN, redis_drop_in(claims, redis_major).encode(), "644")])
    else:
        drop_in = files.file(name="Redis back to Debian's settings", path=REDIS_DROP_IN, present=False)
    reload_units(drop_in)
    refresh_service(name="Redis with its addresses and users", service="redis-server",
                    inputs=[REDIS_DROP_IN, REDIS_USERS_DIR, user_file],
                    command=redis_apply_command(redis_bind(claims), redis_default_user(claims, redis_major)))


def take_db_host_lock_command(holder: dict, digest: Optional[str], lock_dir: str = DB_HOST_LOCK,
                              claims_dir: str = CLAIMS_DIR, wait: int = DB_HOST_LOCK_WAIT) -> str:
    """Shell: take the db host lock (waiting for another project's turn), then the claims must
    be those the run read (`digest`): what it writes is derived from every project's claim."""
    changed = ("another project changed what it claims on this db host while this run was being planned "
               "or waited for its turn: run it again; nothing was changed")
    return (f"install -d -m 755 {q(os.path.dirname(lock_dir))} && "
            + take_command(lock_dir, holder, wait, what="this db host's shared services")
            + f" && {read_claims(claims_dir)} && "
            + let_go_if_command(lock_dir, holder["token"], f'[ "$({CLAIMS_DIGEST})" != {q(digest or "")} ]', changed))


def stale_db_host_lock(holder: Optional[dict], now: datetime) -> bool:
    """Whether the db host lock's holder has held it longer than any turn takes (a killed run's)."""
    try:
        started = datetime.fromisoformat(str((holder or {}).get("started")))
    except ValueError:
        return holder is not None  # unreadable: no run could release it either
    return (now - started).total_seconds() > DB_HOST_LOCK_WAIT


@operation(is_idempotent=False)
def take_db_host_lock(digest: Optional[str], break_lock: bool):
    """The db host lock, once the claims are as they were read (take_db_host_lock_command); with
    release_break_lock, a lock a killed run left is broken, never one a turn may still hold."""
    held = host.get_fact(DeployLock, lock_dir=DB_HOST_LOCK)
    if break_lock and stale_db_host_lock(held, datetime.now(timezone.utc)):
        yield break_command(DB_HOST_LOCK, str(held.get("token", "")))
    yield take_db_host_lock_command(lock_holder("the db host's shared services"), digest)


@operation(is_idempotent=False)
def release_db_host_lock():
    yield release_lock_command(DB_HOST_LOCK, RUN_TOKEN)


def shared_services(settings: Settings, present: bool = True) -> None:
    """Record this project's claim (or, with `present` False or nothing to claim, take it away)
    and set PostgreSQL and Redis up for every claim on the host, holding the db host lock."""
    project = settings.websiteproject
    seen = host.get_fact(DbHostClaims)
    current = seen["claims"]
    before = current.get(project)
    claim = project_claim(settings) if present else None
    if claim and not claim["postgresql"] and not claim["redis"]:
        claim = None
    if claim is None and before is None:
        return
    claims = {name: other for name, other in current.items() if name != project}
    if claim:
        claims[project] = claim
        refusal = postgres_refusal(claims) or redis_refusal(claims)
        if refusal:
            raise DeployRefused(f"host {host.name}: {refusal}; nothing was changed")
    take_db_host_lock(name="Take the db host lock",
                      digest=seen["digest"], break_lock=settings.release_break_lock)
    failure.on_failure(state, host, release_lock_command(DB_HOST_LOCK, RUN_TOKEN), undoes="the db host lock")
    _change_shared_services(settings, claims, claim, before)
    release_db_host_lock(name="Release the db host lock")


def _change_shared_services(settings: Settings, claims: dict[str, dict], claim: Optional[dict],
                            before: Optional[dict]) -> None:
    project = settings.websiteproject
    if claim:
        # Its folder, if new, is made root's (755) in the same step.
        write_files(f"the claim of {project} on this db host", [
            HostFile(f"{CLAIMS_DIR}/{project}.json", (json.dumps(claim) + "\n").encode(), "644")])
    else:
        files.file(name=f"Remove the claim of {project}", path=f"{CLAIMS_DIR}/{project}.json", present=False)
    if (claim and claim["postgresql"]) or (before and before["postgresql"]):
        postgres_access(
            name="PostgreSQL reachable from the project's hosts only",
            project=project,
            database=settings.db_name,
            role=settings.db_name,
            listen=postgres_listen(claims),
            clients=settings.fleet_addresses if claim and claim["postgresql"] else [],
        )
    if (claim and claim["redis"]) or (before and before["redis"]):
        _redis(claims, settings, claim)
