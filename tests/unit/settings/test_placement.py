"""The fleet's plan (settings/placement.py) and the names the layout derives (settings/layout.py):
who holds which role, which host migrates, and each refusal in its whole words."""

from __future__ import annotations

import pytest

from deploys.djangoapp.settings.layout import as_user, unix_name
from deploys.djangoapp.settings.placement import Fleet
from tests.unit.settings.test_settings import POSTGRES, VALID, check, fleet_of, four_hosts
from tests.unit.sites import settings


def test_a_lone_app_host_of_a_sqlite_project_keeps_the_database_and_a_db_host_stays_apart():
    fleet, found = fleet_of({"web1": ({"web"}, {})})
    assert found == [] and fleet.roles == {"web1": {"web", "db"}}
    # With a host of its own in the db group, the app host does not take the database too.
    fleet, found = fleet_of({"web1": ({"web"}, {"private_address": "10.0.0.1"}),
                             "db1": ({"db"}, {"private_address": "10.0.0.2"})})
    assert found == [] and fleet.roles == {"web1": {"web"}, "db1": {"db"}}


def test_sqlite_on_a_web_and_a_worker_host_is_refused_naming_both():
    fleet, found = fleet_of({"web1": ({"web"}, {"celery": True, "private_address": "10.0.0.1",
                                                "django_environment_variables": {"REDIS_PASSWORD": "r" * 16}}),
                             "worker1": ({"worker"}, {"celery": True, "private_address": "10.0.0.2",
                                                      "django_environment_variables": {"REDIS_PASSWORD": "r" * 16}})})
    assert fleet is None and found == [
        'database: sqlite keeps the database in a file on one host, but web1, worker1 run the app; use database = '
        '"postgresql"']


def test_the_web_host_first_in_the_inventory_migrates_a_worker_only_host_when_named():
    hosts = four_hosts()
    workers_first = {"worker1": hosts.pop("worker1"), **hosts}
    fleet, found = fleet_of(workers_first)
    assert found == [] and fleet.migration_host == "web1" and fleet.app_hosts == ["worker1", "web1", "web2"]
    fleet, found = fleet_of(four_hosts(migration_host="worker1"))
    assert found == [] and fleet.migration_host == "worker1"


def test_the_fleet_s_refusals_in_their_whole_words():
    no_db = four_hosts()
    del no_db["db1"]
    assert fleet_of(no_db) == (None, [
        "inventory group db: database postgresql needs exactly one host in it (found: none)"])
    # A value that differs is shown per host.
    differing = four_hosts()
    differing["web2"][1]["url"] = "other.example.com"
    fleet, found = fleet_of(differing)
    url = repr(VALID["url"])
    assert fleet is None and found == [f"url: must be the same on every host of the fleet (web1: {url}, "
                                       f"web2: 'other.example.com', worker1: {url}, db1: {url})"]
    # A migration host named where no host holds releases.
    only_db = {"db1": ({"db"}, {**POSTGRES, "migration_host": "web1"})}
    assert fleet_of(only_db) == (None, [
        "inventory group web: no host serves the site; put at least one host in it",
        "migration_host: 'web1' is not a web or worker host of this inventory (there is none)"])


def test_two_hosts_sharing_the_db_host_s_redis_need_its_password():
    two = {"web1": ({"web", "worker"}, {"database": "postgresql", "celery": True, "private_address": "10.0.0.1",
                                        "django_environment_variables": {"DJANGO_DB_PASSWORD": "x"}}),
           "db1": ({"db"}, {"database": "postgresql", "celery": True, "private_address": "10.0.0.2",
                            "django_environment_variables": {"DJANGO_DB_PASSWORD": "x"}})}
    assert fleet_of(two) == (None, ["django_environment_variables: needs REDIS_PASSWORD: the Redis on the db host "
                                    "serves the other hosts over the network"])


def test_a_host_validated_alone_is_a_fleet_of_one_with_no_other_addresses():
    alone = settings()
    assert alone.fleet == Fleet({"localhost": frozenset({"web", "worker", "db"})}, {"localhost": None}, "localhost")
    assert alone.fleet_addresses == [] and alone.database_host == "127.0.0.1" and alone.runs_migrations


@pytest.mark.parametrize("project, name", [
    ("p" * 25, "django-" + "p" * 25),  # 32 characters: kept
    ("p" * 26, "django-" + "p" * 16 + "-"),  # 33: shortened to 32 with a hash of the whole
])
def test_user_names_are_at_most_32_characters(project, name):
    made = unix_name("django", project)
    assert made.startswith(name) and len(made) == 32
    assert unix_name("django", project + "x") != made


def test_as_user_gives_up_root_s_environment_unless_it_is_kept():
    assert as_user("u", "g") == "/usr/bin/setpriv --reuid=u --regid=g --init-groups --reset-env --"
    assert as_user("u", "g", keep_environment=True) == "/usr/bin/setpriv --reuid=u --regid=g --init-groups --"


def behind_a_load_balancer(**overrides) -> dict:
    hosts = four_hosts(**overrides)
    return {"lb1": ({"lb"}, {**hosts["web1"][1], "private_address": "10.0.0.9"}), **hosts}


def test_a_load_balancer_knows_the_web_hosts_and_the_web_hosts_know_the_load_balancers():
    hosts = behind_a_load_balancer()
    fleet, found = fleet_of(hosts)
    assert found == [] and fleet.roles["lb1"] == {"lb"} and fleet.migration_host == "web1"
    placed = {}
    for name, (_, overrides) in hosts.items():
        placed[name] = check(**overrides)[0]
        placed[name]._fleet, placed[name]._host = fleet, name
    assert placed["lb1"].is_lb and not placed["lb1"].holds_releases and not placed["web1"].is_lb
    assert placed["lb1"].lb_backends == [("web1", "10.0.0.1"), ("web2", "10.0.0.2")]
    assert placed["web1"].lb_addresses == ["10.0.0.9"] and placed["db1"].fleet_addresses == [
        "10.0.0.1", "10.0.0.2", "10.0.0.3"]  # the load balancer does not reach the database
    assert placed["web1"].lb_listener == "10.0.0.1:8080"
    assert (placed["lb1"].ssl_certificate_path, placed["lb1"].ssl_key_path) == (
        "/etc/haproxy/ssl/code_doc.pem", "/etc/haproxy/ssl/code_doc.pem.key")
    assert fleet.switch_batches(1) == [["web1", "worker1"], ["web2"]]
    # Without one, no host trusts a forwarded address.
    alone = settings()
    assert alone.lb_addresses == [] and not alone.is_lb


def test_behind_load_balancers_the_first_asks_the_ca_the_others_fetch_and_the_web_hosts_keep_out():
    hosts = behind_a_load_balancer(acme_email="ops@example.com")
    hosts = {"lb2": ({"lb"}, {**hosts["lb1"][1], "private_address": "fd00::8"}), **hosts}  # first in the inventory
    fleet, found = fleet_of(hosts)
    assert found == [] and fleet.front_hosts == ["lb2", "lb1"]
    placed = {}
    for name, (_, overrides) in hosts.items():
        placed[name] = check(**overrides)[0]
        placed[name]._fleet, placed[name]._host = fleet, name
    lb2, lb1, web1 = placed["lb2"], placed["lb1"], placed["web1"]
    assert lb2.issues_certificate and lb2.uses_acme and not lb2.fetches_certificate
    assert lb2.certificate_fetchers == [("lb1", "10.0.0.9")]
    assert lb1.fetches_certificate and lb1.acme_issuer_address == "fd00::8" and lb1.acme_challenge_proxy is None
    # certbot's own server on lb2's private address; both load balancers pass the challenges to it.
    assert lb1.acme_standalone_server == lb2.acme_standalone_server == "[fd00::8]:402"
    assert lb2.acme_standalone_address == "fd00::8"
    # The web hosts keep their self-signed certificates for their own HTTPS: no ACME there.
    assert not any((web1.uses_acme, web1.issues_certificate, web1.fetches_certificate, web1.acme_challenge_proxy,
                    web1.acme_standalone_address, web1.certificate_fetchers))
    # Without load balancers, the web hosts are the ones the clients reach.
    alone = four_hosts(acme_email="ops@example.com")
    fleet, _ = fleet_of(alone)
    assert fleet.front_hosts == fleet.hosts("web") and fleet.front_hosts[0] == "web1"


def test_a_load_balancer_is_a_host_of_its_own():
    hosts = behind_a_load_balancer()
    hosts["lb1"][0].add("web")
    assert fleet_of(hosts)[1] == ["inventory group lb: host lb1 is also in web: a load balancer is a host of its own"]
    hosts = behind_a_load_balancer()
    hosts["web2"][1]["webserver"] = "apache2"
    assert fleet_of(hosts)[1] == []  # nginx and Apache web hosts alike
    assert check(lb_backend_port=0)[1] == ["lb_backend_port: must be a TCP port, 1 to 65535 (got 0)"]
