"""A fleet behind a load balancer: HAProxy on lb1 in front of web1 and web2 (PostgreSQL on db1).
The site over HTTPS (and HTTP/2) through lb1, the client's own address in Django and no address a
client or another host claims, a web host taken out within seconds when its checks fail and put
back when they pass, a second run that changes nothing; then, logged in as the deploy user with
sudo, a rolling release, a rollback and a restart that drain each web host on lb1 before it
switches or reloads, with no failed request; then the same with Apache web hosts, and with
gunicorn's ASGI server behind them (a WebSocket through lb1). Last, two load balancers serving
one certificate from ACME."""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest
import requests

from tests import fleet
from tests.conftest import https_get, run_pyinfra
from tests.e2e.conftest import DEPLOY_USER, deploy_user_data, under_load
from tests.e2e.pebble import (fetched_as_the_timer_does, names, pebble_intermediate, renew_as_the_timer_does,
                              served_certificate, start_pebble)
from tests.e2e.sources import example_source
from tests.e2e.test_app_servers import echo

pytestmark = pytest.mark.e2e

ROLES = {"lb1": ["lb"], "web1": ["web"], "web2": ["web"], "db1": ["db"]}
PROJECT = {"database": "postgresql", "health_check_path": "/health/", "django_environment_variables": {
    "DJANGO_SECRET_KEY": "lb-test-key-0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a",
    "DJANGO_DB_PASSWORD": "lb-test-password"}}
ADMIN_SOCKET = "/run/haproxy/admin.sock"


def backends(lb: fleet.TestHost) -> dict[str, str]:
    """Each web host's state as the load balancer sees it: UP, DOWN, DRAIN, MAINT..."""
    stat = lb.exec(f"echo 'show stat' | socat stdio {ADMIN_SOCKET}").stdout
    rows = [line.split(",") for line in stat.splitlines() if line and not line.startswith("#")]
    return {row[1]: row[17] for row in rows if row[0] == "guestbook-web" and row[1] not in ("BACKEND",)}


def wait_for(condition, timeout: float, what: str) -> float:
    """Seconds until `condition()` holds; fails after `timeout`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.2)
    return time.monotonic() - started


def client_seen_as_itself(lb: fleet.TestHost, web: fleet.TestHost, other: fleet.TestHost) -> None:
    """Django sees the client's own address (here the Docker network's gateway, which carries the
    published port to lb1), and HTTPS; a forwarded address the client claims changes nothing.
    Another host of the private network that reaches `web`'s load balancer port directly is seen
    as itself, whatever it claims."""
    gateway = lb.exec("ip route | awk '/^default/ {print $3}'").stdout.strip()
    client = https_get(lb, "/client/").json()
    assert client == {"remote_addr": gateway, "secure": True}, client
    claimed = requests.get(f"https://127.0.0.1:{lb.https_port}/client/", verify=False, timeout=10,
                           headers={"Host": "localhost", "X-Forwarded-For": "203.0.113.9"}).json()
    assert claimed["remote_addr"] == gateway, claimed
    direct = other.exec(f"curl -s -H 'Host: localhost' -H 'X-Forwarded-For: 203.0.113.9' "
                        f"http://{web.address}:8080/client/").stdout
    assert json.loads(direct)["remote_addr"] == other.address, direct


@pytest.fixture
def behind_lb(start_hosts, fleet_key, tmp_path):
    hosts, _ = start_hosts(*ROLES)
    fleet.give_roles(hosts, ROLES, PROJECT)
    return {host.name: host for host in hosts}, fleet.write_fleet_file(tmp_path / "fleet.json", fleet_key, hosts)


@pytest.mark.long(minutes=7)
def test_a_fleet_behind_a_load_balancer(behind_lb, fleet_key, tmp_path):
    hosts, fleet_file = behind_lb
    lb, web1, web2 = hosts["lb1"], hosts["web1"], hosts["web2"]
    deploy_user = deploy_user_data(fleet_key)
    first = run_pyinfra(fleet_file, "deploys/all.py", data=deploy_user)
    assert first.returncode == 0, first.output
    assert lb.exec("systemctl is-active haproxy").stdout.strip() == "active"
    # The load balancer holds nothing of the app: no release, secrets or app user.
    assert lb.exec("ls /srv/www/guestbook").stdout.split() == ["audit.jsonl"]
    assert lb.exec("id django-guestbook", check=False).returncode != 0
    wait_for(lambda: backends(lb) == {"web1": "UP", "web2": "UP"}, 10, "both web hosts up")

    # The site through lb1, over HTTPS; both web hosts serve it in turn.
    def served(web: fleet.TestHost) -> int:
        return int(web.exec("grep -c 'GET /health/?turn' /var/log/nginx/access.log || true").stdout)
    assert all(https_get(lb, "/health/?turn").status_code == 200 for _ in range(6))
    assert served(web1) == served(web2) == 3
    assert https_get(lb, "/").status_code == 200
    http2 = subprocess.run(["curl", "-sk", "--http2", "-o", "/dev/null", "-w", "%{http_version}",
                            "--resolve", f"localhost:{lb.https_port}:127.0.0.1", f"https://localhost:{lb.https_port}/"],
                           capture_output=True, text=True, timeout=30)
    assert http2.stdout == "2", http2

    client_seen_as_itself(lb, web1, hosts["db1"])

    # web2's app stops: out within seconds, every request answered by web1 meanwhile; back once
    # it serves again.
    web2.exec("systemctl stop uwsgi-guestbook.socket uwsgi-guestbook")
    out_after = wait_for(lambda: backends(lb)["web2"] == "DOWN", 10, "web2 out")
    assert all(https_get(lb, "/health/").status_code == 200 for _ in range(20))
    web2.exec("systemctl start uwsgi-guestbook.socket uwsgi-guestbook")
    back_after = wait_for(lambda: backends(lb)["web2"] == "UP", 15, "web2 back")
    assert out_after < 5 and back_after < 10, (out_after, back_after)

    again = run_pyinfra(fleet_file, "deploys/all.py", data=deploy_user)
    assert again.returncode == 0 and again.changed() == [], again.output

    # A rolling release, a rollback and a restart through the deploy user's sudo login: each web
    # host drained on lb1 before it switches or reloads and back after, every request through lb1
    # answered.
    for each in hosts.values():
        each.data = {**each.data, "ssh_user": DEPLOY_USER, "_sudo": True}
    as_deployer = fleet.write_fleet_file(tmp_path / "deployer.json", fleet_key, list(hosts.values()))
    v2 = {"django_source_dir": example_source(tmp_path / "v2", "v2"), "release_id": "v2", "rolling_batch_size": 1}
    with under_load(lb) as first_client, under_load(lb) as second_client:
        released = run_pyinfra(as_deployer, "deploys/release.py", data=v2)
        assert released.returncode == 0, released.output
        assert https_get(lb, "/health/").json()["release"] == "v2"
        rolled_back = run_pyinfra(as_deployer, "deploys/rollback.py", data={"rolling_batch_size": 1})
        assert rolled_back.returncode == 0, rolled_back.output
        restarted = run_pyinfra(as_deployer, "deploys/restart.py", data={"rolling_batch_size": 1})
        assert restarted.returncode == 0, restarted.output
    answers = first_client + second_client
    assert answers and set(answers) == {200}, [answer for answer in answers if answer != 200]
    for run in (released, rolled_back, restarted):
        for number, web in enumerate(("web1", "web2"), 1):
            assert f"Drain {web} on the load balancers (batch {number} of 2)" in run.output
            assert re.search(rf"\[lb1\]\s+drained: {web}\n", run.output), run.output
            assert re.search(rf"\[lb1\]\s+serving again: {web}\n", run.output), run.output
    assert backends(lb) == {"web1": "UP", "web2": "UP"}
    assert https_get(lb, "/health/").json()["release"] != "v2"
    shown = run_pyinfra(as_deployer, "deploys/status.py")
    assert "load balancer: web1 UP (L7OK)" in shown.output, shown.output

    # Apache web hosts in nginx's place: the same site through lb1, the client seen as itself, and
    # a rolling release under load that fails no request.
    apache = {"webserver": "apache2", "rolling_batch_size": 1}
    moved = run_pyinfra(as_deployer, "deploys/all.py", data={**deploy_user, **apache})
    assert moved.returncode == 0, moved.output
    assert web1.exec("systemctl is-active nginx", check=False).stdout.strip() == "inactive"
    wait_for(lambda: backends(lb) == {"web1": "UP", "web2": "UP"}, 10, "both Apache web hosts up")

    def served_by_apache(web: fleet.TestHost) -> int:
        return int(web.exec("grep -c 'GET /health/?apache' /var/log/apache2/other_vhosts_access.log || true").stdout)
    assert all(https_get(lb, "/health/?apache").status_code == 200 for _ in range(6))
    assert served_by_apache(web1) == served_by_apache(web2) == 3
    client_seen_as_itself(lb, web2, hosts["db1"])
    v3 = {**apache, "django_source_dir": example_source(tmp_path / "v3", "v3"), "release_id": "v3"}
    with under_load(lb) as client:
        released = run_pyinfra(as_deployer, "deploys/release.py", data=v3)
        assert released.returncode == 0, released.output
    assert client and set(client) == {200}, [answer for answer in client if answer != 200]
    assert "Drain web2 on the load balancers (batch 2 of 2)" in released.output
    assert https_get(lb, "/health/").json()["release"] == "v3"

    # gunicorn's ASGI server behind the same Apache web hosts: the client seen as itself (gunicorn
    # knows only its socket's peer: the webserver tells it), and a WebSocket through lb1.
    to_asgi = run_pyinfra(as_deployer, "deploys/all.py", data={**deploy_user, **apache, "app_server": "asgi"})
    assert to_asgi.returncode == 0, to_asgi.output
    wait_for(lambda: backends(lb) == {"web1": "UP", "web2": "UP"}, 10, "both gunicorn web hosts up")
    client_seen_as_itself(lb, web1, hosts["db1"])
    live = https_get(lb, "/health/").json()["release"]
    assert echo(lb, "hello through lb1") == f"{live}: hello through lb1"

    # Removed, the load balancer keeps nothing of the project, HAProxy stopped.
    removed = run_pyinfra(as_deployer, "deploys/remove.py", data={"confirm_remove": "guestbook"})
    assert removed.returncode == 0, removed.output
    assert lb.exec("systemctl is-active haproxy", check=False).stdout.strip() == "inactive"
    assert lb.exec("ls /etc/haproxy /etc/haproxy/ssl /srv/www").stdout.split() == [
        "/etc/haproxy:", "errors", "ssl", "/etc/haproxy/ssl:", "/srv/www:"]


@pytest.mark.long(minutes=3)
def test_two_load_balancers_serve_one_certificate_from_acme(start_hosts, fleet_key, tmp_path):
    """lb1 asks pebble for the site's certificate (both load balancers' names), certbot's own
    server answering the challenges that either load balancer's HAProxy passes on to it; lb2
    fetches it from lb1; a renewal reaches both; then, logged in as the deploy user with sudo, a
    run that changes nothing, and ACME turned off leaving nothing of it."""
    (acme,), _ = start_hosts("acme")
    directory_root = start_pebble(acme)
    hosts, _ = start_hosts("lb1", "lb2", "web1")
    roles = {"lb1": ["lb"], "lb2": ["lb"], "web1": ["web", "db"]}
    project = {"url": "lb1.example.test", "acme_extra_domains": ["lb2.example.test"], "acme_email": "ops@example.test",
               "acme_directory": "https://acme:14000/dir", "acme_ca_certificate": directory_root}
    fleet.give_roles(hosts, roles, project)
    lb1, lb2, web1 = hosts
    fleet_file = fleet.write_fleet_file(tmp_path / "fleet.json", fleet_key, hosts)
    # A release too: before one, the load balancers' checks would start web1's app server, which
    # has nothing to run yet, until systemd gives up on its socket (the next run starts it again).
    deploy = ("deploys/all.py",)
    deploy_user = deploy_user_data(fleet_key)
    first = run_pyinfra(fleet_file, *deploy, data=deploy_user)
    assert first.returncode == 0, first.output
    issued = served_certificate(lb1)
    assert served_certificate(lb2).serial_number == issued.serial_number
    assert names(issued) == ["lb1.example.test", "lb2.example.test"]
    issued.verify_directly_issued_by(pebble_intermediate(acme))
    assert lb2.exec("test -e /etc/letsencrypt/live/guestbook", check=False).returncode != 0  # lb1 alone asked
    # The web host keeps its own self-signed certificate and answers no challenge.
    assert "Pebble" not in served_certificate(web1).issuer.rfc4514_string()
    assert web1.exec("test -e /etc/letsencrypt/live/guestbook || dpkg -s certbot", check=False).returncode != 0

    # From here on logged in as the shipped inventories do: the deploy user, through sudo.
    for host in hosts:
        host.data = {**host.data, "ssh_user": DEPLOY_USER, "_sudo": True}
    fleet_file = fleet.write_fleet_file(tmp_path / "deployer.json", fleet_key, hosts)
    again = run_pyinfra(fleet_file, *deploy, data=deploy_user)
    assert again.returncode == 0 and again.changed() == [], again.output

    # certbot renews on lb1 as its timer runs it (the challenge for lb2's name through lb2);
    # lb2's timer's service brings the new certificate over.
    renew_as_the_timer_does(lb1, issued)
    fetched_as_the_timer_does(lb2, lb1)
    shown = run_pyinfra(fleet_file, "deploys/status.py")
    assert re.search(r"\[lb2\].*certificate: .*Pebble", shown.output), shown.output

    # ACME turned off: self-signed certificates again, nothing of certbot's or the sync's left.
    for host in hosts:
        host.data = {key: value for key, value in host.data.items() if not key.startswith("acme_")}
    plain = fleet.write_fleet_file(tmp_path / "plain.json", fleet_key, hosts)
    off = run_pyinfra(plain, "deploys/skeleton.py", data=deploy_user)
    assert off.returncode == 0, off.output
    for lb in (lb1, lb2):
        assert "Pebble" not in served_certificate(lb).issuer.rfc4514_string()
        left = lb.exec("find /etc/letsencrypt /etc/django-deploy /etc/systemd/system /var/lib/django-deploy "
                       "-name '*guestbook*' -not -name 'guestbook.pem*'; id certsync-guestbook 2>&1 || true").stdout
        assert left.strip() == "id: 'certsync-guestbook': no such user", (lb.name, left)
    assert "acme" not in lb1.exec("cat /etc/haproxy/haproxy.cfg").stdout
