"""Projects sharing a db host: PostgreSQL and Redis are set up for every project's claim at once,
so no project's deploy (or removal) takes away what another needs."""

import hashlib
import os
import json
import shlex
import shutil
import socket
import subprocess
import time
from datetime import datetime, timezone

import pytest

from deploys.djangoapp.host.db_host import (
    REDIS_ADMIN,
    DbHostClaims,
    RedisMajorVersion,
    postgres_listen,
    redis_admin_command,
    redis_admin_permissions,
    redis_apply_command,
    redis_database,
    redis_default_user,
    redis_drop_in,
    postgres_refusal,
    redis_refusal,
    redis_user_config,
    stale_db_host_lock,
    take_db_host_lock_command,
)
from deploys.djangoapp.core.lock import release_lock_command


def claim(project, listen=(), postgresql=True, redis=None, redis_db=None):
    return {"project": project, "listen": list(listen), "postgresql": postgresql, "redis": redis, "redis_db": redis_db}


FLEET = claim("shop", ["10.0.0.4"], redis="user", redis_db=0)
SINGLE = claim("blog", [], redis="user", redis_db=1)
SQLITE_CELERY = claim("notes", [], postgresql=False, redis="default", redis_db=2)


def test_postgresql_listens_for_every_project_that_uses_it():
    assert postgres_listen({"blog": SINGLE}) == "localhost"
    # A single-host project deployed after a fleet's keeps the fleet's address, whatever the order.
    assert postgres_listen({"shop": FLEET, "blog": SINGLE}) == postgres_listen({"blog": SINGLE, "shop": FLEET}) \
        == "localhost,10.0.0.4"
    assert postgres_listen({"x": claim("x", ["10.0.0.9"], postgresql=False, redis="user")}) == "localhost"


def exec_start(drop_in: str) -> list[str]:
    line = [line for line in drop_in.splitlines() if line.startswith("ExecStart=/")]
    assert len(line) == 1, drop_in
    return shlex.split(line[0].removeprefix("ExecStart="))


def test_redis_starts_with_every_projects_addresses_and_users():
    words = exec_start(redis_drop_in({"shop": FLEET, "blog": SINGLE}, 7))
    assert words[words.index("--bind") + 1:words.index("--bind") + 4] == ["127.0.0.1", "-::1", "10.0.0.4"]
    includes = [words[i + 1] for i, word in enumerate(words) if word == "--include"]
    assert includes == ["/etc/redis/django-deploy/_deploy-admin.conf", "/etc/redis/django-deploy/blog.conf",
                        "/etc/redis/django-deploy/shop.conf"]
    # Reachable from other hosts: the default user (no password) is off.
    assert words[-3:] == ["--user", "default", "off"]


PROJECT_RULES = ["~*", "&*", "+@all", "-@admin", "-@dangerous", "+flushdb", "+keys", "-function"]


def test_on_the_loopback_alone_the_default_user_is_on_for_a_project_without_password_with_its_rights():
    words = exec_start(redis_drop_in({"notes": SQLITE_CELERY, "blog": SINGLE}, 7))
    assert words[words.index("--bind") + 1:][:3] == ["127.0.0.1", "-::1", "--include"]
    assert "/etc/redis/django-deploy/blog.conf" in words
    assert "/etc/redis/django-deploy/notes.conf" not in words
    # notes logs in as the default user (no password): it may do what a project's user may, no more.
    assert words[words.index("--user"):] == ["--user", "default", "on", "nopass", *PROJECT_RULES]
    # Every project with a user of its own: no one logs in without a password.
    assert exec_start(redis_drop_in({"blog": SINGLE}, 7))[-3:] == ["--user", "default", "off"]
    assert redis_default_user({"notes": SQLITE_CELERY}, 6) == "on nopass ~* +@all -@admin -@dangerous +flushdb +keys"
    # No project uses Redis any more (Celery turned off, the last one removed): Debian's default user.
    assert redis_default_user({}, 7) == redis_default_user({"x": claim("x")}, 7) == "on nopass ~* &* +@all"


def test_a_project_without_password_is_refused_by_a_redis_that_serves_other_hosts():
    assert redis_refusal({"notes": SQLITE_CELERY, "blog": SINGLE}) is None
    assert redis_refusal({"shop": FLEET, "blog": SINGLE}) is None
    refusal = redis_refusal({"shop": FLEET, "notes": SQLITE_CELERY})
    assert refusal.startswith("django_environment_variables: needs REDIS_PASSWORD for notes")
    assert "for shop" in refusal


def test_two_projects_in_one_redis_database_are_refused():
    refusal = redis_refusal({"shop": FLEET, "blog": {**SINGLE, "redis_db": 0}})
    assert refusal.startswith("redis_url: blog and shop would share Redis database 0 of this db host")
    assert "redis://127.0.0.1:6379/1" in refusal
    # Claims written before the database was recorded count as database 0.
    assert redis_refusal({"shop": FLEET, "old": {k: v for k, v in SINGLE.items() if k != "redis_db"}})
    assert redis_database("redis://127.0.0.1:6379/3") == 3 and redis_database("redis://127.0.0.1:6379") == 0


def test_the_redis_user_file_holds_a_hash_of_the_password_not_the_password():
    password = "a-long-redis-password-1234"
    line = redis_user_config("shop", password, 7)
    assert password not in line
    assert line == f"user shop on #{hashlib.sha256(password.encode()).hexdigest()} {' '.join(PROJECT_RULES)}\n"
    assert "&*" in redis_user_config("shop", password, None)  # unknown: Debian 12 and later have 7+
    # Redis 6 knows no channel rules, and no FUNCTION command.
    assert redis_user_config("shop", password, 6).split()[4:] == \
        ["~*", "+@all", "-@admin", "-@dangerous", "+flushdb", "+keys"]


def read_claims_fact(claims_dir) -> dict:
    done = subprocess.run(["sh", "-c", DbHostClaims().command(str(claims_dir))], capture_output=True, text=True,
                          check=True)
    return DbHostClaims().process(done.stdout.splitlines())


def test_claims_are_read_from_one_json_line_per_project_with_their_digest(tmp_path):
    assert read_claims_fact(tmp_path / "none")["claims"] == {}
    (tmp_path / "shop.json").write_text(json.dumps(claim("shop")) + "\n")
    (tmp_path / "blog.json").write_text(json.dumps(claim("blog")) + "\n")
    seen = read_claims_fact(tmp_path)
    assert seen["claims"] == {"shop": claim("shop"), "blog": claim("blog")}
    assert len(seen["digest"]) == 64 and seen["digest"] != read_claims_fact(tmp_path / "none")["digest"]


def test_projects_change_the_shared_services_in_turn_and_on_the_claims_they_read(tmp_path):
    """Two projects deploying to one db host at once: the second waits for the first's turn
    (the db host lock), then refuses, changing nothing, when the claims it derived its settings
    from changed meanwhile."""
    claims_dir, lock = tmp_path / "claims", tmp_path / "run" / "db-host.lock"

    def take(token: str, digest: str) -> subprocess.CompletedProcess:
        command = take_db_host_lock_command({"token": token, "operator": token}, digest, str(lock), str(claims_dir),
                                            wait=1)
        return subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=20)

    # The first project on a fresh host: no claims yet.
    first = take("shop-run", read_claims_fact(claims_dir)["digest"])
    assert first.returncode == 0, first.stderr
    subprocess.run(["sh", "-c", release_lock_command(str(lock), "shop-run")], check=True)
    claims_dir.mkdir()
    (claims_dir / "shop.json").write_text(json.dumps(claim("shop")) + "\n")
    seen = read_claims_fact(claims_dir)["digest"]

    assert take("shop-run", seen).returncode == 0
    assert (lock / "token").read_text().strip() == "shop-run"
    waited = take("blog-run", seen)
    assert waited.returncode != 0 and "another deploy holds this db host's shared services" in waited.stderr
    assert "shop-run" in waited.stderr
    # shop writes another claim and lets go: blog, planned on the claims before, refuses.
    (claims_dir / "notes.json").write_text(json.dumps(claim("notes")) + "\n")
    subprocess.run(["sh", "-c", release_lock_command(str(lock), "shop-run")], check=True)
    refused = take("blog-run", seen)
    assert refused.returncode != 0 and "another project changed what it claims on this db host" in refused.stderr
    assert not lock.exists()  # and leaves no lock behind
    assert take("blog-run", read_claims_fact(claims_dir)["digest"]).returncode == 0  # planned again: its turn


def run_with_fake_tools(tmp_path, redis_server: str | None, apt_cache: str) -> int | None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, output in (("redis-server", redis_server), ("apt-cache", apt_cache)):
        tool = bin_dir / name
        # Not installed: as the shell would answer (this machine may have the real one in /usr/bin).
        tool.write_text("#!/bin/sh\necho 'not found' >&2; exit 127\n" if output is None
                        else f"#!/bin/sh\ncat <<'EOF'\n{output}\nEOF\n")
        tool.chmod(0o755)
    done = subprocess.run(["sh", "-c", RedisMajorVersion().command()], capture_output=True, text=True,
                          env={"PATH": f"{bin_dir}:/usr/bin:/bin"}, check=True)
    return RedisMajorVersion().process(done.stdout.splitlines())


def test_the_redis_version_comes_from_the_installed_server_or_else_apt(tmp_path):
    policy = "redis-server:\n  Installed: (none)\n  Candidate: 5:6.0.16-1ubuntu1\n  Version table:"
    assert run_with_fake_tools(tmp_path, None, policy) == 6
    installed = "Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=c4b26c1b8ca9d3"
    assert run_with_fake_tools(tmp_path, installed, policy) == 7
    assert run_with_fake_tools(tmp_path, None, "redis-server:\n  Candidate: (none)") is None


# A stand-in for redis-cli: $PONG_FOR is the login the live Redis takes ("admin", "default" or
# nobody); as the real one does, a failed login says so and goes on as the default user. Answers PING and ACL
# WHOAMI as that user, ACL USERS with $LIVE_USERS, anything on its input with $ANSWER; records
# what it was sent.
FAKE_REDIS_CLI = r"""#!/bin/sh
user=default
while [ $# -gt 0 ]; do
    case "$1" in --user) user=$2; shift 2;; --no-auth-warning) shift;; *) break;; esac
done
if [ "$user" = _deploy-admin ] && [ "$REDISCLI_AUTH" = s3cret ] && [ "$PONG_FOR" = admin ]; then as=_deploy-admin
elif [ "$PONG_FOR" = default ]; then
    as=default
    [ "$user" = default ] || echo "AUTH failed: WRONGPASS invalid username-password pair" >&2
else as=; fi
case "$1 $2" in
    "PING ") if [ -n "$as" ]; then echo PONG; else echo NOAUTH; fi;;
    "ACL WHOAMI") if [ -n "$as" ]; then echo "$as"; else echo NOAUTH; fi;;
    "ACL USERS") printf '%s\n' $LIVE_USERS;;
    " ") echo "as $as" >> "$LOG"; cat >> "$LOG"; printf '%s\n' $ANSWER;;
esac
"""


def apply(tmp_path, pong_for: str, answer: str = "OK", live_users: str = "default _deploy-admin shop gone"):
    bin_dir, users = tmp_path / "bin", tmp_path / "users"
    for folder in (bin_dir, users):
        folder.mkdir(exist_ok=True)
    (bin_dir / "redis-cli").write_text(FAKE_REDIS_CLI)
    (bin_dir / "systemctl").write_text('#!/bin/sh\necho "systemctl $*" >> "$LOG"\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    (users / "_deploy-admin.conf").write_text("user _deploy-admin on #aaaa ~* &* +@all\n")
    (users / "shop.conf").write_text("user shop on #bbbb ~* &* +@all\n")
    (tmp_path / "admin.password").write_text("s3cret")
    log = tmp_path / "log"
    log.write_text("")
    command = redis_apply_command(["127.0.0.1", "-::1", "10.0.0.4"], "off", str(users), str(tmp_path / "admin.password"))
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True, env={
        "PATH": f"{bin_dir}:/usr/bin:/bin", "LOG": str(log), "PONG_FOR": pong_for, "ANSWER": answer,
        "LIVE_USERS": live_users})
    return done.stdout.strip(), log.read_text().splitlines()


def test_redis_takes_users_and_addresses_live_as_the_admin(tmp_path):
    said, sent = apply(tmp_path, pong_for="admin")
    assert said == "Redis changed live"
    assert sent == ["as _deploy-admin",
                    "ACL SETUSER _deploy-admin reset on #aaaa ~* &* +@all",
                    "ACL SETUSER shop reset on #bbbb ~* &* +@all",
                    "ACL DELUSER gone",  # its project was removed: no user file left
                    'CONFIG SET bind "127.0.0.1 -::1 10.0.0.4"',
                    "ACL SETUSER default reset off"]


def test_before_the_admin_is_live_the_default_user_makes_it(tmp_path):
    said, sent = apply(tmp_path, pong_for="default", live_users="default")
    assert said == "Redis changed live" and sent[0] == "as default"
    assert "ACL SETUSER _deploy-admin reset on #aaaa ~* &* +@all" in sent and "systemctl" not in " ".join(sent)


def test_a_redis_that_refuses_the_change_or_does_not_answer_is_restarted(tmp_path):
    said, sent = apply(tmp_path, pong_for="admin", answer="ERR_Unsupported_CONFIG_parameter")
    assert said == "Redis restarted to take the change" and sent[-1] == "systemctl restart redis-server"
    said, sent = apply(tmp_path, pong_for="nobody")
    assert said == "Redis restarted to take the change" and sent == ["systemctl restart redis-server"]


def test_the_admin_password_is_made_on_the_host_and_only_its_hash_is_in_the_user_file():
    command = redis_admin_command(7)
    assert "/dev/urandom" in command and "umask 077" in command and "sha256sum" in command
    assert "install -m 640 -o root -g redis" in command and command.endswith("#$digest ~* &* +@all\" > "
                                                                              "/etc/redis/django-deploy/_deploy-admin.conf")
    assert "~* +@all" in redis_admin_command(6) and "&" not in redis_admin_command(6).split("echo")[-1]
    assert "-@" not in redis_admin_command(6)  # the kit's admin keeps every right


# ---------------------------------------------------------------- a real Redis (the package redis-server)

SHOP_PASSWORD = "shop-redis-password-4f5e6d"
ADMIN_PASSWORD = "admin-redis-password-9a8b7c"


def redis_tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is missing: scripts/setup.sh installs the package redis-server"
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cli(port: int, user: str | None, *command: str, password: str | None = None) -> str:
    """What redis-cli prints for `command`, logged in as `user` (None: no login, the default user)."""
    login = ["--user", user] if user else []
    done = subprocess.run([redis_tool("redis-cli"), "--no-auth-warning", "-p", str(port), *login, *command],
                          capture_output=True, text=True, timeout=10,
                          env={"REDISCLI_AUTH": password} if password else {})
    return (done.stdout + done.stderr).strip()


def user_files(folder, redis_major: int = 7, **passwords: str) -> None:
    """The user files the deploy writes: the admin's (as redis_admin_command does) and each project's."""
    folder.mkdir(exist_ok=True)
    digest = hashlib.sha256(ADMIN_PASSWORD.encode()).hexdigest()
    (folder / f"{REDIS_ADMIN}.conf").write_text(f"user {REDIS_ADMIN} on #{digest} {redis_admin_permissions(redis_major)}\n")
    for project, password in passwords.items():
        (folder / f"{project}.conf").write_text(redis_user_config(project, password, redis_major))


@pytest.fixture
def redis_server(tmp_path):
    """start(words): a real redis-server with these arguments, on a free loopback port, its data in
    tmp_path, DEBUG allowed by its configuration (so that only the ACL can refuse it): the port."""
    started = []

    def start(words: list[str]) -> int:
        port = free_port()
        config = tmp_path / "redis.conf"
        config.write_text(f'port {port}\ndir {tmp_path}\nsave ""\nappendonly no\nenable-debug-command yes\n')
        words = [str(config) if word == "/etc/redis/redis.conf" else word for word in words]
        started.append(subprocess.Popen([redis_tool("redis-server"), *words], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL))
        for _ in range(100):
            if "Connection refused" not in cli(port, None, "PING"):
                return port
            assert started[-1].poll() is None, f"redis-server {' '.join(words)} did not start"
            time.sleep(0.05)
        raise AssertionError("redis-server did not answer")

    yield start
    for server in started:
        server.kill()
        server.wait()


# What acts on the whole server, and so on every project sharing it.
SERVER_WIDE = [("FLUSHALL",), ("CONFIG", "SET", "maxmemory", "1"), ("CONFIG", "GET", "requirepass"),
               ("ACL", "SETUSER", "shop", "on", ">taken-over-password"), ("ACL", "SETUSER", "default", "on"),
               ("ACL", "LIST"), ("DEBUG", "SLEEP", "0"), ("SHUTDOWN", "NOSAVE"), ("CLIENT", "LIST"), ("INFO",),
               ("FUNCTION", "FLUSH")]


def assert_a_projects_rights(port: int, user: str | None, password: str | None) -> None:
    """`user` may do what Celery, Django's cache and channels do, and nothing that acts on the
    whole server."""
    def run(*command: str) -> str:
        return cli(port, user, *command, password=password)

    for command in SERVER_WIDE:
        assert "NOPERM" in run(*command), (user, command)
    # Nor from a script, which runs with its caller's rights.
    assert "can't run this command" in run("EVAL", "return redis.call('FLUSHALL')", "0"), user
    assert run("PING") == "PONG"  # still up: SHUTDOWN was refused
    # Celery's broker and results (kombu: LPUSH, BRPOP, Lua scripts), Django's cache and channels.
    assert run("SET", "k", "v") == "OK" and run("GET", "k") == "v"
    assert run("LPUSH", "celery", "task") == "1" and run("BRPOP", "celery", "1").split() == ["celery", "task"]
    assert run("EVAL", "return redis.call('INCR', KEYS[1])", "1", "n") == "1"
    sha = run("SCRIPT", "LOAD", "return redis.call('GET', KEYS[1])")
    assert run("EVALSHA", sha, "1", "k") == "v"
    assert run("KEYS", "*") and run("SCAN", "0")
    assert run("FLUSHDB") == "OK" and run("GET", "k") == ""  # Django's cache.clear()
    assert run("-n", "1", "SET", "in-one", "x") == "OK"  # SELECT: redis_url's database number
    subscriber = subprocess.Popen([redis_tool("redis-cli"), "--no-auth-warning", "-p", str(port),
                                   *(["--user", user] if user else []), "SUBSCRIBE", "celery.pidbox"],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  env={"REDISCLI_AUTH": password} if password else {})
    try:
        heard = [subscriber.stdout.readline().strip() for _ in range(3)]
        assert heard == ["subscribe", "celery.pidbox", "1"], (user, heard)
        assert run("PUBLISH", "celery.pidbox", "ping") == "1"
        assert [subscriber.stdout.readline().strip() for _ in range(3)] == ["message", "celery.pidbox", "ping"]
    finally:
        subscriber.kill()
        subscriber.wait()


def started_as_the_drop_in_says(redis_server, tmp_path, claims: dict[str, dict], **passwords: str) -> int:
    """Redis started with the words of the drop-in's ExecStart, the user files in tmp_path."""
    user_files(tmp_path / "users", **passwords)
    words = exec_start(redis_drop_in(claims, 7))[1:]
    return redis_server([str(tmp_path / "users" / word.rsplit("/", 1)[1])
                         if word.startswith("/etc/redis/django-deploy/") else word for word in words])


def test_a_projects_redis_user_is_refused_what_acts_on_the_whole_server(redis_server, tmp_path):
    port = started_as_the_drop_in_says(redis_server, tmp_path, {"shop": claim("shop", redis="user")},
                                       shop=SHOP_PASSWORD)
    assert_a_projects_rights(port, "shop", SHOP_PASSWORD)
    # Every project has a user of its own: no login without a password.
    assert cli(port, None, "GET", "k").startswith("NOAUTH")
    # The kit's admin keeps every right.
    assert "user shop on" in cli(port, REDIS_ADMIN, "ACL", "LIST", password=ADMIN_PASSWORD)


def test_the_default_user_a_project_without_password_uses_has_a_projects_rights_only(redis_server, tmp_path):
    claims = {"shop": claim("shop", redis="user"), "notes": claim("notes", redis="default", redis_db=1)}
    port = started_as_the_drop_in_says(redis_server, tmp_path, claims, shop=SHOP_PASSWORD)
    assert_a_projects_rights(port, None, None)
    assert_a_projects_rights(port, "shop", SHOP_PASSWORD)
    assert "WRONGPASS" in cli(port, "shop", "PING", password="taken-over-password")


def test_a_running_redis_takes_the_projects_rights_live(redis_server, tmp_path):
    # Redis as Debian starts it (its default user may do anything), then the kit's change, live.
    port = redis_server(["/etc/redis/redis.conf", "--bind", "127.0.0.1"])
    user_files(tmp_path / "users", shop=SHOP_PASSWORD)
    (tmp_path / "admin.password").write_text(ADMIN_PASSWORD)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "redis-cli").write_text(f'#!/bin/sh\nexec {redis_tool("redis-cli")} -p {port} "$@"\n')
    (bin_dir / "systemctl").write_text(f'#!/bin/sh\necho "systemctl $*" >> {tmp_path}/systemctl.log\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    claims = {"shop": claim("shop", redis="user")}
    command = redis_apply_command(["127.0.0.1"], redis_default_user(claims, 7), str(tmp_path / "users"),
                                  str(tmp_path / "admin.password"))
    for run in ("as the default user", "as the admin"):
        done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=30,
                              env={"PATH": f"{bin_dir}:/usr/bin:/bin"})
        assert done.stdout.strip() == "Redis changed live", (run, done.stdout, done.stderr)
        assert not (tmp_path / "systemctl.log").exists(), run
        assert_a_projects_rights(port, "shop", SHOP_PASSWORD)
        assert cli(port, None, "GET", "k").startswith("NOAUTH"), run


def test_two_projects_whose_names_make_one_postgresql_database_are_refused():
    """my-shop and my_shop would share a database and role: each deploy would reset the other's
    password, and removing one would drop the other's data."""
    refused = postgres_refusal({"my-shop": claim("my-shop"), "my_shop": claim("my_shop")})
    assert refused == ("websiteproject: my-shop and my_shop would share the PostgreSQL database and role my_shop of "
                       "this db host; give one of them another name")
    assert postgres_refusal({"my-shop": claim("my-shop"), "my_shop": claim("my_shop", postgresql=False)}) is None
    assert postgres_refusal({"my-shop": claim("my-shop"), "myshop": claim("myshop")}) is None


def test_only_a_db_host_lock_held_longer_than_any_turn_is_stale():
    now = datetime(2026, 12, 6, 12, 0, tzinfo=timezone.utc)
    assert not stale_db_host_lock(None, now)
    assert not stale_db_host_lock({"started": "2026-12-06T11:58:00+00:00"}, now)  # another project's turn
    assert stale_db_host_lock({"started": "2026-12-06T11:50:00+00:00"}, now)
    assert stale_db_host_lock({"operator": "unknown (unreadable holder.json)"}, now)


@pytest.mark.skipif(os.geteuid() != 0, reason="the user file is given to the group redis: run as root (CI is)")
def test_the_admin_user_the_deploy_makes_logs_into_a_real_redis_with_every_right(redis_server, tmp_path):
    password_file, user_file = tmp_path / "admin.password", tmp_path / f"{REDIS_ADMIN}.conf"
    made = subprocess.run(["sh", "-c", redis_admin_command(7, str(password_file), str(user_file))],
                          capture_output=True, text=True, timeout=30)
    assert made.returncode == 0, made.stderr
    password = password_file.read_text().strip()
    assert len(password) == 64 and password not in user_file.read_text()
    assert (oct(password_file.stat().st_mode & 0o777), oct(user_file.stat().st_mode & 0o777)) == ("0o600", "0o640")
    assert user_file.group() == "redis"
    port = redis_server(["/etc/redis/redis.conf", "--include", str(user_file)])
    assert cli(port, REDIS_ADMIN, "ACL", "WHOAMI", password=password) == REDIS_ADMIN
    assert cli(port, REDIS_ADMIN, "CONFIG", "SET", "maxmemory", "0", password=password) == "OK"
    assert "WRONGPASS" in cli(port, REDIS_ADMIN, "PING", password="not-the-password")
