"""Shared fixtures: the test fleet and a way to run the real pyinfra CLI against it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import urllib3

from deploys.djangoapp.core.audit import LOCK_STEPS
from tests import fleet

REPO = Path(__file__).resolve().parents[1]
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
# The version before this one: the kit before its code moved into packages (0.9.0). Hosts it
# deployed must converge on this version (tests/e2e/test_upgrade.py), which the benchmark
# measures beside it (python -m bench --only previous_version). Each new version moves it forward
# to the commit its own changes started from.
PREVIOUS_VERSION = "3e75d882a9b1ef82e3f8d5800941c81f5bb35d33"




@dataclass
class PyinfraRun:
    returncode: int
    output: str
    results: dict[str, dict[str, str]]  # operation name -> Hosts/Success/Error/No Change

    def changed(self, prefix: str = "") -> list[str]:
        """Operations (whose name starts with `prefix`) that changed something on a host. Taking
        and releasing the deploy lock or the db host lock leaves the host as it was: not counted.
        A run whose results table was not found fails here: "nothing changed" is not taken from
        a table that could not be read."""
        assert self.results and "Grand total" in self.output, \
            f"no results table could be read from pyinfra's output:\n{self.output[-2000:]}"
        return [name for name, row in self.results.items() if name.startswith(prefix) and row["Success"] != "-"
                and not name.endswith(LOCK_STEPS)]


def parse_results(output: str) -> dict[str, dict[str, str]]:
    """The --> Results table pyinfra prints at the end of a run."""
    results: dict[str, dict[str, str]] = {}
    in_table = False
    for line in output.splitlines():
        if re.match(r"^\s+Operation\s+Hosts\s+Success\s+Error\s+No Change", line):
            in_table = True
            continue
        if in_table:
            columns = re.split(r"\s{2,}", line.strip())
            if len(columns) != 5 or columns[0] == "Grand total":
                in_table = columns[0] != "Grand total" and len(columns) == 5
                continue
            results[columns[0]] = dict(zip(["Hosts", "Success", "Error", "No Change"], columns[1:]))
    return results


def pytest_collection_modifyitems(items):
    """Tests marked long first, longest first, then the others in the order found: the workers
    (pytest-xdist, dealing tests out in turn) start with the long ones side by side and the short
    ones fill in, so that no worker is left running a long test alone at the end."""
    def minutes(item) -> float:
        long = item.get_closest_marker("long")
        return long.kwargs["minutes"] if long else 0
    items.sort(key=lambda item: -minutes(item))


@pytest.fixture(scope="session")
def fleet_key() -> Path:
    """The Docker engine, the base image and the SSH key: ready once per session."""
    fleet.ensure_docker()
    fleet.ensure_image("bookworm")
    return fleet.ensure_ssh_key()


@pytest.fixture
def start_hosts(fleet_key, tmp_path):
    """Start hosts (services of hosts.yml) for one test, in a compose project of its own; they are
    removed afterwards. Returns (hosts, fleet file)."""
    group = fleet.HostGroup(f"test{uuid.uuid4().hex[:8]}", fleet_key)

    def start(*names: str, image: str | None = None, data: dict | None = None):
        hosts = group.start(*names, image=image or fleet.ensure_image("bookworm"), data=data)
        return hosts, fleet.write_fleet_file(tmp_path / "fleet.json", fleet_key, hosts)

    yield start
    group.remove()


def run_pyinfra(fleet_file: Path, *deploys: str, data: dict | None = None, extra: tuple = (),
                timeout: int = 900, kit: Path = REPO) -> PyinfraRun:
    """Run the pyinfra CLI from the repository (or another copy of the kit, `kit`), as a user
    would, against the fleet file's hosts. -y (no prompt, no change detection) unless it is a
    --dry run, which detects and stops."""
    command = [sys.executable, "-m", "pyinfra", *(() if "--dry" in extra else ("-y",)), *extra]
    for key, value in (data or {}).items():
        command += ["--data", f"{key}={value}"]
    command += ["inventories/local.py", *deploys]
    completed = subprocess.run(
        command, cwd=kit, text=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        timeout=timeout,
        env={**os.environ, "DEPLOY_FLEET_FILE": str(fleet_file), "COLUMNS": "200"},
    )
    return PyinfraRun(completed.returncode, completed.stdout, parse_results(completed.stdout))


def kit_at(commit: str, folder: Path) -> Path:
    """The kit as it was at `commit` (from this clone's history), unpacked into `folder`."""
    folder.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", commit], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def https_get(host: fleet.TestHost, path: str = "/", server_name: str = "localhost", **kwargs) -> requests.Response:
    """GET a page of the host over HTTPS on its published port, as `server_name`."""
    return requests.get(f"https://127.0.0.1:{host.https_port}{path}", headers={"Host": server_name},
                        verify=False, timeout=10, **kwargs)
