"""The compose file of the scaling curve's fleet: eight web hosts and a db host made like the test
fleet's (bench/scaling.py)."""

import yaml

from bench.scaling import WEB_HOSTS, scaling_compose_file
from tests import fleet


def test_the_scaling_fleet_has_eight_web_hosts_and_a_db_host_made_like_the_test_fleets(tmp_path):
    compose = yaml.safe_load(scaling_compose_file(tmp_path / "hosts.yml").read_text())
    original = yaml.safe_load(fleet.COMPOSE_FILE.read_text())["services"]
    assert list(compose["services"]) == [f"web{number}" for number in range(1, 9)] + ["db1"] == WEB_HOSTS + ["db1"]
    for name in WEB_HOSTS:
        service = compose["services"][name]
        assert service["hostname"] == name
        assert service["networks"]["default"]["aliases"] == [f"{name}.example.test"]
        for key in ("image", "command", "ports", "volumes", "cap_add", "security_opt", "tmpfs"):
            assert service[key] == original["web1"][key], key
        # Published on the loopback only, as every test host.
        assert all(port.startswith("127.0.0.1::") for port in service["ports"])
    assert compose["services"]["db1"] == original["db1"]
