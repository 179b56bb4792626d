"""The load balancer's HAProxy config, and the web hosts' side of it (nginx's listener for the load
balancers, and whom it takes a client's address from), rendered here for a placed fleet; the
programs that drain and ready web hosts there, run against a stand-in runtime API, and how a web
host runs them on every load balancer."""

from __future__ import annotations

import json
import re
import subprocess
from types import SimpleNamespace

import pytest
from pyinfra.api.exceptions import OperationError

from deploys.djangoapp.core.context import render_template
from deploys.djangoapp.settings.placement import plan_fleet
from deploys.djangoapp.site import load_balancer
from deploys.djangoapp.site.load_balancer import ConfigProject, drain_command, ready_command
from tests.unit.sites import settings

ADDRESSES = {"lb1": "10.0.0.9", "lb2": "fd00::9", "web1": "10.0.0.1", "web2": "10.0.0.2", "db1": "10.0.0.3"}


def placed(**overrides) -> dict:
    """lb1, lb2 (IPv6), web1, web2 and db1 (PostgreSQL) with `overrides`: host name -> settings."""
    roles = {"lb1": {"lb"}, "lb2": {"lb"}, "web1": {"web"}, "web2": {"web"}, "db1": {"db"}}
    hosts = {name: (groups, settings(database="postgresql", private_address=ADDRESSES[name],
                                     django_environment_variables={"DJANGO_DB_PASSWORD": "x"}, **overrides))
             for name, groups in roles.items()}
    fleet, found = plan_fleet(hosts)
    assert found == [], found
    for name, (_, site) in hosts.items():
        site._fleet, site._host = fleet, name
    return {name: site for name, (_, site) in hosts.items()}


def section(config: str, header: str) -> str:
    return re.search(rf"^{re.escape(header)}\n(.*?)(?=^\S|\Z)", config, re.S | re.M).group(1)


def test_haproxy_ends_tls_and_checks_each_web_host_as_the_deploy_does():
    config = render_template("haproxy/haproxy.cfg.j2", s=placed(health_check_path="/health/?full=1")["lb1"])
    assert config.startswith("# django-deploy mysite: ")
    assert "stats socket /run/haproxy/admin.sock mode 600 level admin" in config
    assert {"retries 2", "option redispatch 1"} <= {line.strip() for line in section(config, "defaults").splitlines()}
    https = section(config, "frontend mysite-https")
    assert re.findall(r"^\s+bind (.*)$", https, re.M) == [
        ":443 ssl crt /etc/haproxy/ssl/mysite.pem alpn h2,http/1.1",
        ":::443 v6only ssl crt /etc/haproxy/ssl/mysite.pem alpn h2,http/1.1"]
    # The client's address and scheme set by the load balancer, over whatever the client sent.
    assert "http-request set-header X-Forwarded-For %[src]" in https
    assert "http-request set-header X-Forwarded-Proto https" in https
    assert "http-request redirect scheme https code 301" in section(config, "frontend mysite-http")
    web = section(config, "backend mysite-web")
    assert "http-check send meth GET uri /health/?full=1 ver HTTP/1.1 hdr Host mysite.example.com" in web
    assert "http-check expect status 200" in web and "default-server inter 1s fall 2 rise 2" in web
    assert "    timeout check 3s\n" in web  # an answer slower than the 1 s between checks is no failure
    assert re.findall(r"^\s+server .*$", web, re.M) == ["    server web1 10.0.0.1:8080 check",
                                                         "    server web2 10.0.0.2:8080 check"]


def test_without_a_health_path_haproxy_takes_what_the_deploy_takes():
    config = render_template("haproxy/haproxy.cfg.j2", s=placed(lb_backend_port=9000)["lb1"])
    web = section(config, "backend mysite-web")
    assert "uri / ver HTTP/1.1" in web and "http-check expect ! rstatus ^(400|5[0-9][0-9])$" in web
    assert "server web2 10.0.0.2:9000 check" in web


def test_with_acme_every_load_balancer_passes_the_challenges_on_to_certbot_on_the_first():
    from deploys.djangoapp.site.certificates import certbot_command

    sites = placed(acme_email="ops@example.com")
    for name in ("lb1", "lb2"):
        config = render_template("haproxy/haproxy.cfg.j2", s=sites[name])
        http = section(config, "frontend mysite-http")
        assert http.index("http-request redirect scheme https code 301 unless acme_challenge") < http.index(
            "use_backend mysite-acme if acme_challenge")
        assert "acl acme_challenge path_beg /.well-known/acme-challenge/" in http
        assert "    server lb1 10.0.0.9:402\n" in section(config, "backend mysite-acme")
    asked = certbot_command(sites["lb1"])
    assert " --standalone --http-01-address 10.0.0.9 --http-01-port 402 " in asked and "webroot" not in asked
    # Without ACME: everything to HTTPS; the web hosts answer no challenge behind load balancers.
    plain = render_template("haproxy/haproxy.cfg.j2", s=placed()["lb1"])
    assert "acme" not in plain and "    http-request redirect scheme https code 301\n" in plain
    assert "acme-challenge" not in render_template("nginx/site.conf.j2", s=sites["web1"])
    assert "webroot" in certbot_command(settings(acme_email="ops@example.com"))


def test_a_web_host_takes_the_client_s_address_from_the_load_balancers_alone():
    web1 = placed()["web1"]
    config = render_template("nginx/site.conf.j2", s=web1)
    https = config[config.index("listen 443"):]
    assert "listen 10.0.0.1:8080;" in https
    assert re.findall(r"set_real_ip_from (\S+);", https) == ["10.0.0.9", "fd00::9"]
    assert "real_ip_header X-Forwarded-For;" in https
    # What comes through the load balancers came over HTTPS: uWSGI tells Django so.
    assert "map $server_port $mysite_through_lb {\n    8080 on;\n    default \"\";\n}" in config
    assert "uwsgi_param HTTPS $mysite_through_lb if_not_empty;" in https
    # The load balancers' own requests (their checks) pass the maintenance page.
    geo = re.search(r"geo \$mysite_maintenance_allowed \{(.*?)\}", config, re.S).group(1)
    assert {"10.0.0.9 1;", "fd00::9 1;"} <= {line.strip() for line in geo.splitlines()}


def test_an_apache_web_host_serves_the_load_balancers_the_same_site_on_its_private_address():
    web2 = placed(webserver="apache2")["web2"]
    config = render_template("apache2/site.conf.j2", s=web2)
    clients = config[config.index("<VirtualHost *:443>"):config.index("</VirtualHost>", config.index("*:443"))]
    listener = config[config.index("<VirtualHost 10.0.0.2:8080>"):]
    # The port opened once for every project that shares it.
    assert ("<IfDefine !django_deploy_listen_10_0_0_2_8080>\n    Define django_deploy_listen_10_0_0_2_8080\n"
            "    Listen 10.0.0.2:8080\n</IfDefine>") in config
    assert re.findall(r"RemoteIPInternalProxy (\S+)", listener) == ["10.0.0.9", "fd00::9"]
    assert "RemoteIPHeader X-Forwarded-For" in listener and "RemoteIP" not in clients
    assert "SetEnv HTTPS on" in listener and "SSLEngine" not in listener
    # Everything but TLS served alike: the same site, the same maintenance page, the same app.
    assert listener[listener.index("    ServerName"):] == clients[clients.index("    ServerName"):] + "</VirtualHost>\n"
    assert "-R '10.0.0.9' || -R 'fd00::9'" in listener


def test_without_a_load_balancer_no_address_is_taken_from_a_header():
    config = render_template("nginx/site.conf.j2", s=settings())
    assert "real_ip" not in config and "through_lb" not in config and ":8080" not in config
    config = render_template("apache2/site.conf.j2", s=settings(webserver="apache2"))
    assert "RemoteIP" not in config and "Listen" not in config and "HTTPS on" not in config


@pytest.mark.parametrize("output, project", [
    ([], None),  # no config
    (["found", "# django-deploy otherbook: HAProxy in front of the web hosts."], "otherbook"),
    (["found", "global"], ""),  # Debian's own, or one written by hand
    (["found"], ""),  # an empty file
])
def test_the_config_s_project_is_read_from_its_first_line(output, project):
    assert ConfigProject().process(output) == project


def test_status_reads_each_web_host_s_state_from_the_runtime_api(tmp_path):
    from deploys.djangoapp.site.load_balancer import Backends

    # HAProxy's 'show stat' CSV: pxname, svname, ... status (18th), ... check_status (37th).
    def row(proxy: str, server: str, status: str, check: str) -> str:
        fields = [""] * 40
        fields[0], fields[1], fields[17], fields[36] = proxy, server, status, check
        return ",".join(fields)
    stat = "\n".join(["# pxname,svname,...", row("mysite-https", "FRONTEND", "OPEN", ""),
                      row("mysite-web", "web1", "UP", "* L7OK"), row("mysite-web", "web2", "DOWN", "L7STS"),
                      row("mysite-web", "BACKEND", "UP", ""), row("other-web", "web9", "UP", "L7OK")])
    socat = tmp_path / "socat"
    socat.write_text(f"#!/bin/sh\ncat > /dev/null\ncat <<'EOF'\n{stat}\nEOF\n")
    socat.chmod(0o755)
    command = Backends().command("/run/haproxy/admin.sock", "mysite-web")
    found = subprocess.run(["sh", "-c", command], capture_output=True, text=True, env={"PATH": f"{tmp_path}:/usr/bin:/bin"})
    assert Backends().process(found.stdout.splitlines()) == {"web1": ("UP", "L7OK"), "web2": ("DOWN", "L7STS")}
    socat.write_text("#!/bin/sh\nexit 1\n")
    found = subprocess.run(["sh", "-c", command], capture_output=True, text=True, env={"PATH": f"{tmp_path}:/usr/bin:/bin"})
    assert Backends().process(found.stdout.splitlines()) is None


# A stand-in for HAProxy's runtime API, in place of socat: it keeps each server's state and
# requests in flight in a JSON file; each `show stat` sees one request fewer in flight on a
# draining server; `set server` of an unknown server answers as HAProxy does.
FAKE_SOCAT = r'''#!/usr/bin/env python3
import json, sys
path = sys.argv[0] + ".json"
servers = json.load(open(path))
command = sys.stdin.readline().strip()
open(sys.argv[0] + ".log", "a").write(command + "\n")
if command == "show stat":
    print("# pxname,svname,qcur,qmax,scur")
    for name, server in servers.items():
        fields = [""] * 40
        fields[0], fields[1], fields[4], fields[17], fields[36] = "mysite-web", name, str(server["scur"]), server["status"], "L7OK"
        print(",".join(fields))
        if server["admin"] == "drain" and server["scur"] > 0:
            server["scur"] -= 1
elif command.startswith("set server mysite-web/"):
    name, _, state = command.split("/", 1)[1].split(" ")
    if name not in servers:
        print("No such server.")
    else:
        servers[name]["admin"] = state
        if state == "ready" and servers[name]["status"] == "DRAIN":
            servers[name]["status"] = "UP" if servers[name]["healthy"] else "DOWN"
        if state == "drain":
            servers[name]["status"] = "DRAIN"
        print("")
json.dump(servers, open(path, "w"))
'''


def haproxy_stand_in(tmp_path, **servers) -> dict:
    """The stand-in socat on a PATH, with servers name -> (requests in flight, status, healthy)."""
    socat = tmp_path / "socat"
    socat.write_text(FAKE_SOCAT)
    socat.chmod(0o755)
    state = {name: {"scur": scur, "status": status, "admin": "ready", "healthy": healthy}
             for name, (scur, status, healthy) in servers.items()}
    (tmp_path / "socat.json").write_text(json.dumps(state))
    return {"PATH": f"{tmp_path}:/usr/bin:/bin"}


def run(command: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, env=env, timeout=30)


def servers(tmp_path) -> dict:
    return json.loads((tmp_path / "socat.json").read_text())


def test_a_batch_is_drained_once_its_requests_in_flight_end_the_others_made_ready_first(tmp_path):
    lb1 = placed()["lb1"]
    env = haproxy_stand_in(tmp_path, web1=(3, "UP", True), web2=(5, "DRAIN", True))
    drained = run(drain_command(lb1, ["web1"], ["web2"]), env)
    assert drained.returncode == 0, drained.stderr
    assert drained.stdout.splitlines() == ["drained: web1"]
    found = servers(tmp_path)
    assert found["web1"]["scur"] == 0 and found["web1"]["admin"] == "drain"
    # web2, left drained by a failed run, serves again before web1 stops taking requests.
    assert found["web2"]["admin"] == "ready" and found["web2"]["status"] == "UP"
    sent = (tmp_path / "socat.log").read_text().splitlines()
    assert sent[:2] == ["set server mysite-web/web2 state ready", "set server mysite-web/web1 state drain"]
    assert set(sent[2:]) == {"show stat"} and len(sent[2:]) == 4  # 3, 2, 1, then none in flight


def test_requests_still_in_flight_after_the_drain_timeout_are_left_to_the_graceful_reload(tmp_path):
    lb1 = placed(lb_drain_timeout=1)["lb1"]
    env = haproxy_stand_in(tmp_path, web1=(10 ** 6, "UP", True), web2=(0, "UP", True))
    drained = run(drain_command(lb1, ["web1"], ["web2"]), env)
    assert drained.returncode == 0, drained.stderr
    assert drained.stdout.splitlines() == [
        "requests still in flight on web1 after 1 s (lb_drain_timeout): switching anyway; the app server's "
        "graceful reload lets them end", "drained: web1"]


def test_a_batch_is_back_once_the_load_balancer_sees_it_up_or_the_run_fails_naming_it(tmp_path):
    lb1 = placed(health_check_timeout=1)["lb1"]
    env = haproxy_stand_in(tmp_path, web1=(0, "DRAIN", True), web2=(0, "UP", True))
    back = run(ready_command(lb1, ["web1"]), env)
    assert back.returncode == 0 and back.stdout.splitlines() == ["serving again: web1"], back.stderr
    env = haproxy_stand_in(tmp_path, web1=(0, "DRAIN", False), web2=(0, "UP", True))
    back = run(ready_command(lb1, ["web1"]), env)
    assert back.returncode == 1
    assert back.stderr.splitlines() == ["the load balancer does not see web1 up after 1 s:", "web1: DOWN (L7OK)"]


def test_a_server_the_load_balancer_does_not_know_fails_the_step(tmp_path):
    env = haproxy_stand_in(tmp_path, web1=(0, "UP", True))
    drained = run(drain_command(placed()["lb1"], ["web9"], ["web1"]), env)
    assert drained.returncode != 0
    assert "HAProxy: set server mysite-web/web9 state drain: No such server." in drained.stderr


def test_the_load_balancers_run_the_command_as_their_inventory_says_and_a_failure_fails_the_step(monkeypatch):
    ran = []

    def run(state, balancer, command):
        ran.append((balancer.name, command))
        return balancer.name != "lb2", SimpleNamespace(output_lines=[f"{command} done"])
    monkeypatch.setattr(load_balancer, "run_on_other_host", run)
    logged = []
    monkeypatch.setattr(load_balancer.logger, "info", logged.append)
    balancers = {name: SimpleNamespace(name=name, print_prefix=f"[{name}] ") for name in ("lb1", "lb2")}
    state = SimpleNamespace(inventory=SimpleNamespace(get_host=balancers.__getitem__))
    with pytest.raises(OperationError, match="on the load balancer lb2: failed"):
        load_balancer.on_load_balancers(state, None, placed()["web1"], "drain")
    assert ran == [("lb1", "drain"), ("lb2", "drain")]
    assert logged == ["[lb1] drain done", "[lb2] drain done"]
