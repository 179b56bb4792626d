"""The local test fleet: Debian containers on this machine, reached over SSH on 127.0.0.1.

The containers are started by `python -m tests.fleet` (the demo) or by the test suite, which
write their ports and the throwaway SSH key to a fleet file (default .fleet/hosts.json, or the
path in DEPLOY_FLEET_FILE). Values for the example app are in group_data/local.py.
"""

import json
import os

_fleet_file = os.environ.get("DEPLOY_FLEET_FILE", os.path.join(os.path.dirname(__file__), "..", ".fleet", "hosts.json"))
if not os.path.exists(_fleet_file):
    raise SystemExit(f"no test fleet: {_fleet_file} is missing (start one with: python -m tests.fleet up)")
with open(_fleet_file, encoding="utf-8") as _handle:
    _fleet = json.load(_handle)

# Host keys of throwaway containers change with every container: no known-hosts file here.
# Real inventories (staging.py, prod.py) keep host key checking on.
_connection = {
    "ssh_hostname": "127.0.0.1",
    "ssh_user": "root",
    "ssh_key": _fleet["ssh_key"],
    "ssh_known_hosts_file": "/dev/null",
    "ssh_strict_host_key_checking": "no",
}

# Each host's roles are the groups its fleet file entry names; by default it holds all three.
_hosts = [(host["name"], {**_connection, "ssh_port": host["ssh_port"], **host.get("data", {})},
           host.get("groups", ["web", "worker", "db"])) for host in _fleet["hosts"]]
web = [(name, data) for name, data, groups in _hosts if "web" in groups]
worker = [(name, data) for name, data, groups in _hosts if "worker" in groups]
db = [(name, data) for name, data, groups in _hosts if "db" in groups]
lb = [(name, data) for name, data, groups in _hosts if "lb" in groups]
