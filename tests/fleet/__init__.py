"""Throwaway test hosts: Debian containers running systemd and sshd, reached on 127.0.0.1.

Used by the test suite and by the demo (`python -m tests.fleet demo`). No container registry is
reachable here, so the base image is built locally with debootstrap (build-image.sh) when it is
missing, and the Docker engine is started when none runs.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FLEET_DIR = REPO / ".fleet"
BUILD_IMAGE = Path(__file__).with_name("build-image.sh")
LABEL = "webapp-testhost=1"
# Prepared hosts (snapshots of a deployed host) are tagged per checkout: two checkouts on one
# machine (two test runs at once) must not overwrite each other's. Bare base images are shared.
CHECKOUT_TAG = hashlib.sha1(str(REPO).encode()).hexdigest()[:8]

# systemd as PID 1 without --privileged (see the project notes): cgroups of the machine, no seccomp
# or AppArmor filter, and SYS_PTRACE so that init scripts can see other users' processes.
SYSTEMD_RUN_ARGS = [
    "--cap-add", "SYS_ADMIN", "--cap-add", "SYS_PTRACE",
    "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
    "--cgroupns=host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--tmpfs", "/run", "--tmpfs", "/run/lock",
    # IPv6 on the loopback, as on a real server (Debian 13's memcached listens on ::1 too).
    "--sysctl", "net.ipv6.conf.all.disable_ipv6=0",
]


def _run(*args: str, check: bool = True, capture: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=check, text=True, capture_output=capture)


def ensure_docker(timeout: float = 60) -> None:
    """Start the Docker engine in the background when none answers."""
    if _run("docker", "info", check=False).returncode == 0:
        return
    dockerd = shutil.which("dockerd")
    if not dockerd:
        raise RuntimeError("no Docker engine: install Debian's docker.io (scripts/setup.sh does)")
    FLEET_DIR.mkdir(exist_ok=True)
    with open(FLEET_DIR / "dockerd.log", "ab") as log:
        subprocess.Popen([dockerd], stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + timeout
    while _run("docker", "info", check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the Docker engine did not start; see {FLEET_DIR / 'dockerd.log'}")
        time.sleep(1)


def ensure_image(suite: str = "bookworm") -> str:
    """The base image of a bare host, built once with debootstrap (progress goes to stderr)."""
    built = subprocess.run(["bash", str(BUILD_IMAGE), suite], check=True, text=True, stdout=subprocess.PIPE)
    return built.stdout.strip().splitlines()[-1]


def ensure_ssh_key() -> Path:
    """A throwaway SSH key pair for the fleet (never used anywhere else)."""
    FLEET_DIR.mkdir(exist_ok=True)
    key = FLEET_DIR / "id_ed25519"
    if not key.exists():
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test-fleet", "-f", str(key))
    return key


@dataclass
class TestHost:
    name: str
    container: str
    ssh_port: int
    https_port: int
    http_port: int
    address: str  # on the Docker network the fleet's hosts share: its "private network"
    data: dict = field(default_factory=dict)
    groups: list[str] | None = None  # inventory groups (roles); None: all of web, worker, db

    def exec(self, command: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run a shell command on the host as root (through docker, not SSH)."""
        return _run("docker", "exec", self.container, "bash", "-c", command, check=check)

    def fleet_entry(self) -> dict:
        entry = {"name": self.name, "ssh_port": self.ssh_port, "data": self.data}
        return {**entry, "groups": self.groups} if self.groups is not None else entry


def _published_port(container: str, port: int) -> int:
    out = _run("docker", "port", container, f"{port}/tcp").stdout.strip().splitlines()[0]
    return int(out.rsplit(":", 1)[1])


def start_host(name: str, image: str, key: Path, container: str | None = None,
               data: dict | None = None, timeout: float = 90) -> TestHost:
    """Start a host from `image` and wait until systemd has booted and sshd answers."""
    container = container or f"testhost-{name}"
    _run("docker", "rm", "-f", container, check=False)
    _run(
        "docker", "run", "-d", "--name", container, "--hostname", name, "--label", LABEL,
        *SYSTEMD_RUN_ARGS,
        "-v", f"{key}.pub:/root/.ssh/authorized_keys:ro",
        # Published on the loopback only: nothing outside this machine can reach a test host.
        "-p", "127.0.0.1::22", "-p", "127.0.0.1::443", "-p", "127.0.0.1::80",
        image, "/sbin/init",
    )
    address = _run("docker", "inspect", "-f", "{{.NetworkSettings.IPAddress}}", container).stdout.strip()
    host = TestHost(name, container, _published_port(container, 22), _published_port(container, 443),
                    _published_port(container, 80), address, dict(data or {}))
    deadline = time.monotonic() + timeout
    while True:
        state = host.exec("systemctl is-system-running --wait", check=False).stdout.strip()
        ssh = _run("ssh", "-i", str(key), "-p", str(host.ssh_port), "-o", "BatchMode=yes",
                   "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                   "-o", "ConnectTimeout=5", "root@127.0.0.1", "true", check=False)
        if state in ("running", "degraded") and ssh.returncode == 0:
            return host
        if time.monotonic() > deadline:
            raise RuntimeError(f"{container} did not boot: systemd {state!r}, ssh {ssh.stderr.strip()!r}")
        time.sleep(1)


def remove_host(host: TestHost) -> None:
    _run("docker", "rm", "-f", host.container, check=False)


def snapshot(host: TestHost, image: str) -> str:
    """Save a host's file system as an image, to start other hosts from that state."""
    _run("docker", "commit", host.container, image)
    return image


def prepared_image(name: str) -> str:
    """The image name of a prepared host of this checkout."""
    return f"webapp-testhost:{name}-{CHECKOUT_TAG}"


def image_exists(image: str) -> bool:
    return _run("docker", "image", "inspect", image, check=False).returncode == 0


# The fleet of the several-hosts test and benchmark: name -> inventory groups (roles).
FOUR_HOSTS = {"web1": ["web"], "web2": ["web"], "worker1": ["worker"], "db1": ["db"]}


def give_roles(hosts: list[TestHost], roles: dict[str, list[str] | None], data: dict | None = None) -> None:
    """Give each host its inventory groups from `roles` (None: all roles) and `data`; when there
    are several, each also gets its address on the Docker network as private_address."""
    for host in hosts:
        host.groups = roles[host.name]
        host.data = {**(data or {}), **({"private_address": host.address} if len(hosts) > 1 else {})}


def write_fleet_file(path: Path, key: Path, hosts: list[TestHost]) -> Path:
    """The file inventories/local.py reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"ssh_key": str(key), "hosts": [h.fleet_entry() for h in hosts]}, indent=2))
    return path


__all__ = ["FOUR_HOSTS", "TestHost", "ensure_docker", "ensure_image", "ensure_ssh_key", "give_roles", "image_exists",
           "prepared_image", "remove_host", "snapshot", "start_host", "write_fleet_file"]
