"""PostgreSQL on the db host, through psql as the postgres user: the project's role and database,
where the server listens, and which hosts may connect."""

from __future__ import annotations


from pyinfra import host
from pyinfra.api import FactBase, operation
from pyinfra.operations import postgres

from ..core.shell import q


class PostgresNames(FactBase):
    """Roles or databases of the local PostgreSQL server; none when it does not answer (remove.py
    runs on hosts where it may be stopped or gone)."""

    default = list

    def command(self, kind: str) -> str:
        table, column = {"roles": ("pg_roles", "rolname"), "databases": ("pg_database", "datname")}[kind]
        return (f"runuser -u postgres -- psql -XtAc 'SELECT {column} FROM {table}' 2>/dev/null || true")

    def process(self, output):
        return [line.strip() for line in output if line.strip()]


def postgres_role_and_database(role: str) -> tuple:
    """A login role and a database it owns, both called `role`: pyinfra's own operations, run as
    the postgres user (its login through the local socket). The password is set separately, from
    the secret file (see skeleton), so it never appears in a command line. Returns both steps."""
    as_postgres = {"_sudo": True, "_sudo_user": "postgres"}
    return (postgres.role(name=f"PostgreSQL role {role}", role=role, login=True, **as_postgres),
            postgres.database(name=f"PostgreSQL database {role}", database=role, owner=role, **as_postgres))


class PostgresAccess(FactBase):
    """PostgreSQL's listen_addresses and the project's block of pg_hba.conf, or None when no
    server answers yet."""

    def command(self, project: str) -> str:
        psql = "runuser -u postgres -- psql -XAt"
        return (f"hba=$({psql} -c 'SHOW hba_file' 2>/dev/null) || exit 0; "
                f"echo \"listen=$({psql} -c 'SHOW listen_addresses')\"; "
                f"sed -n '/^# BEGIN django-deploy {project}$/,/^# END django-deploy {project}$/p' \"$hba\"")

    def process(self, output):
        lines = [line for line in output if line.strip()]
        if not lines:
            return None
        return {"listen": lines[0].removeprefix("listen="), "block": lines[1:]}


def pg_hba_block(project: str, database: str, role: str, clients: list[str]) -> list[str]:
    """The project's pg_hba.conf lines: its role, to its database, from these addresses only."""
    if not clients:
        return []
    rules = [f"host {database} {role} {address}/{128 if ':' in address else 32} scram-sha-256"
             for address in clients]
    return [f"# BEGIN django-deploy {project}", *rules, f"# END django-deploy {project}"]


@operation()
def postgres_access(project: str, database: str, role: str, listen: str, clients: list[str]):
    """PostgreSQL listens on `listen` only (ALTER SYSTEM; a restart applies it), and lets the
    project's role into its database from the `clients` addresses (pg_hba.conf block; a reload
    applies it). Debian's own rules (local socket, loopback) stay as they are."""
    current = host.get_fact(PostgresAccess, project=project)
    block = pg_hba_block(project, database, role, clients)
    changed = False
    if (current["block"] if current else []) != block:
        changed = True
        yield (f"hba=$(runuser -u postgres -- psql -XAtc 'SHOW hba_file') && "
               f"sed -i '/^# BEGIN django-deploy {project}$/,/^# END django-deploy {project}$/d' \"$hba\" && "
               + (f"printf '%s\\n' {' '.join(q(line) for line in block)} >> \"$hba\" && " if block else "")
               + "systemctl reload postgresql")
    if (current["listen"] if current else "localhost") != listen:
        changed = True
        yield (f"runuser -u postgres -- psql -Xq -v ON_ERROR_STOP=1 -c \"ALTER SYSTEM SET listen_addresses = "
               f"'{listen}'\" && systemctl restart postgresql")
    if not changed:
        host.noop(f"PostgreSQL listens on {listen}; {len(clients)} other hosts may connect")
