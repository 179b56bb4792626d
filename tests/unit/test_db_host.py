"""Projects sharing a db host: PostgreSQL and Redis are set up for every project's claim at once,
so no project's deploy (or removal) takes away what another needs."""

import hashlib
import shlex
import subprocess

from deploys.djangoapp.db_host import (
    DbHostClaims,
    RedisMajorVersion,
    postgres_listen,
    redis_admin_command,
    redis_apply_command,
    redis_database,
    redis_drop_in,
    redis_refusal,
    redis_user_config,
)


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
    words = exec_start(redis_drop_in({"shop": FLEET, "blog": SINGLE}))
    assert words[words.index("--bind") + 1:words.index("--bind") + 4] == ["127.0.0.1", "-::1", "10.0.0.4"]
    includes = [words[i + 1] for i, word in enumerate(words) if word == "--include"]
    assert includes == ["/etc/redis/django-deploy/_deploy-admin.conf", "/etc/redis/django-deploy/blog.conf",
                        "/etc/redis/django-deploy/shop.conf"]
    # Reachable from other hosts: the default user (no password) is off.
    assert words[-3:] == ["--user", "default", "off"]


def test_redis_on_the_loopback_alone_keeps_the_default_user():
    drop_in = redis_drop_in({"notes": SQLITE_CELERY, "blog": SINGLE})
    words = exec_start(drop_in)
    assert "default" not in words and words[words.index("--bind") + 1:][:3] == ["127.0.0.1", "-::1", "--include"]
    assert "/etc/redis/django-deploy/blog.conf" in words
    assert "/etc/redis/django-deploy/notes.conf" not in words


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
    assert line == f"user shop on #{hashlib.sha256(password.encode()).hexdigest()} ~* &* +@all\n"
    assert "&*" in redis_user_config("shop", password, None)  # unknown: Debian 12 and later have 7+
    assert "&" not in redis_user_config("shop", password, 6)  # Redis 6 knows no channel rules


def test_claims_are_read_from_one_json_line_per_project():
    assert DbHostClaims().process(['{"project": "shop", "listen": [], "postgresql": true, "redis": null, '
                                   '"redis_db": null}', ""]) == {"shop": claim("shop")}
    assert DbHostClaims().process([]) == {}


def run_with_fake_tools(tmp_path, redis_server: str | None, apt_cache: str) -> int | None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, output in (("redis-server", redis_server), ("apt-cache", apt_cache)):
        tool = bin_dir / name
        if output is None:
            tool.unlink(missing_ok=True)
            continue
        tool.write_text(f"#!/bin/sh\ncat <<'EOF'\n{output}\nEOF\n")
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


# A stand-in for redis-cli: answers PING with $PONG_FOR (the user it lets in: "admin", "default" or
# nobody), ACL USERS with $LIVE_USERS, anything on its input with $ANSWER; records what it was sent.
FAKE_REDIS_CLI = r"""#!/bin/sh
user=default
while [ $# -gt 0 ]; do
    case "$1" in --user) user=$2; shift 2;; --no-auth-warning) shift;; *) break;; esac
done
case "$1" in
    PING) if { [ "$user" = _deploy-admin ] && [ "$REDISCLI_AUTH" = s3cret ] && [ "$PONG_FOR" = admin ]; } ||
              { [ "$user" = default ] && [ "$PONG_FOR" = default ]; }; then echo PONG; else echo NOAUTH; fi;;
    ACL) printf '%s\n' $LIVE_USERS;;
    "") echo "as $user" >> "$LOG"; cat >> "$LOG"; printf '%s\n' $ANSWER;;
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
    command = redis_apply_command(["127.0.0.1", "-::1", "10.0.0.4"], True, str(users), str(tmp_path / "admin.password"))
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
                    "ACL SETUSER default off"]


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
    assert "install -m 640 -o root -g redis" in command and "~* &* +@all" in command
    assert "~* +@all" in redis_admin_command(6) and "&" not in redis_admin_command(6).split("echo")[-1]
