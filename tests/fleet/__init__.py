"""Throwaway test hosts: Debian containers running systemd and sshd, reached on 127.0.0.1.

The hosts are the services of hosts.yml, started through pytest-docker, a compose project for
each test (and for the demo, `python -m tests.fleet demo`, and each benchmark fleet). What compose
cannot say lives here: no container registry is reachable, so the base image is built locally with
debootstrap (build-image.sh) when it is missing; the Docker engine is started when none runs; a
host is ready when systemd has booted and sshd answers; a deployed host is committed as a prepared
image, tagged per checkout.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shlex
import shutil
import subprocess
import tempfile
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pytest_docker import Services
from pytest_docker.plugin import get_docker_services

REPO = Path(__file__).resolve().parents[2]
FLEET_DIR = REPO / ".fleet"
MACHINE_LOCK = Path(tempfile.gettempdir()) / "webapp-testhost.lock"
BUILD_IMAGE = Path(__file__).with_name("build-image.sh")
# Prepared hosts (snapshots of a deployed host) are tagged per checkout: two checkouts on one
# machine (two test runs at once) must not overwrite each other's. Bare base images are shared.
CHECKOUT_TAG = hashlib.sha1(str(REPO).encode()).hexdigest()[:8]

# The test hosts are the services of this compose file, started with Debian's Compose 1.29 (its
# `up` has no --wait: readiness is checked here) through pytest-docker.
COMPOSE_FILE = Path(__file__).with_name("hosts.yml")
COMPOSE_COMMAND = "docker-compose"


def _run(*args: str, check: bool = True, capture: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=check, text=True, capture_output=capture)


@contextmanager
def held_flock(path: Path):
    """An exclusive flock on `path` (made if missing), held for the block."""
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def machine_lock():
    """Held while the engine, base images and key are made: test processes running side by side
    (pytest-xdist workers, other checkouts, a benchmark) must not start two engines or build one
    image twice."""
    return held_flock(MACHINE_LOCK)


def ensure_docker(timeout: float = 60) -> None:
    """Start the Docker engine in the background when none answers."""
    if _run("docker", "info", check=False).returncode == 0:
        return
    with machine_lock():
        if _run("docker", "info", check=False).returncode != 0:
            _start_docker(timeout)


def _start_docker(timeout: float) -> None:
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
    with machine_lock():
        built = subprocess.run(["bash", str(BUILD_IMAGE), suite], check=True, text=True, stdout=subprocess.PIPE)
    return built.stdout.strip().splitlines()[-1]


def ensure_ssh_key() -> Path:
    """A throwaway SSH key pair for the fleet (never used anywhere else)."""
    key = FLEET_DIR / "id_ed25519"
    public = key.with_name(key.name + ".pub")
    with machine_lock():
        _make_ssh_key(key, public)
    return key


def _make_ssh_key(key: Path, public: Path) -> None:
    key.parent.mkdir(exist_ok=True)
    if not (key.is_file() and public.is_file()):
        # A half-made pair, or a .pub that Docker made a folder (a host started while it was missing).
        key.unlink(missing_ok=True)
        if public.is_dir():
            shutil.rmtree(public)
        else:
            public.unlink(missing_ok=True)
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test-fleet", "-f", str(key))


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


def compose_command(key: Path, image: str | None = None, compose: str = COMPOSE_COMMAND) -> str:
    """The compose command line with the variables hosts.yml reads (pytest-docker runs it in a shell)."""
    image_setting = f"TESTHOST_IMAGE={shlex.quote(image)} " if image else ""
    return f"{image_setting}TESTHOST_SSH_KEY={shlex.quote(str(key))} {compose}"


def _container(project: str, service: str) -> str:
    labels = [f"label=com.docker.compose.project={project}", f"label=com.docker.compose.service={service}"]
    found = _run("docker", "ps", "-q", *(arg for label in labels for arg in ("--filter", label))).stdout.split()
    if len(found) != 1:
        raise RuntimeError(f"compose project {project}: expected one container of {service}, found {found}")
    return found[0]


def booted_host(services: Services, project: str, name: str, key: Path, data: dict | None = None,
                service: str | None = None, timeout: float = 90) -> TestHost:
    """The host of a started compose service, once systemd has booted and sshd answers."""
    service = service or name
    container = _container(project, service)
    address = _run("docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                   container).stdout.strip()
    host = TestHost(name, container, services.port_for(service, 22), services.port_for(service, 443),
                    services.port_for(service, 80), address, dict(data or {}))

    def ready() -> bool:
        state = host.exec("systemctl is-system-running --wait", check=False).stdout.strip()
        ssh = _run("ssh", "-i", str(key), "-p", str(host.ssh_port), "-o", "BatchMode=yes",
                   "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                   "-o", "ConnectTimeout=5", "root@127.0.0.1", "true", check=False)
        return state in ("running", "degraded") and ssh.returncode == 0

    services.wait_until_responsive(check=ready, timeout=timeout, pause=1)
    host.exec(f"if [ -s {SAVED_ACLS} ]; then setfacl --restore={SAVED_ACLS}; fi", check=False)
    return host


class HostGroup:
    """The hosts of one compose project (a test, the demo, a benchmark fleet): started from
    hosts.yml's services, from any image, and removed together."""

    def __init__(self, project: str, key: Path, compose: str = COMPOSE_COMMAND, compose_file: Path = COMPOSE_FILE,
                 keep: bool = False):
        self.project, self.key, self.compose, self.compose_file = project, key, compose, compose_file
        self.keep = keep  # the hosts outlive this process (the demo)
        self._stack = ExitStack()
        if not keep:
            # Registered first: the project goes even when starting its hosts failed half-way.
            self._stack.callback(self.down)

    def start(self, *names: str, image: str, data: dict | None = None) -> list[TestHost]:
        services = self._stack.enter_context(get_docker_services(
            compose_command(self.key, image, self.compose), str(self.compose_file), self.project,
            [f"up -d --no-recreate {' '.join(names)}"], []))
        return [booted_host(services, self.project, name, self.key, data) for name in names]

    def down(self) -> None:
        _run("sh", "-c", f"{compose_command(self.key, compose=self.compose)} -f {shlex.quote(str(self.compose_file))} "
             f"-p {shlex.quote(self.project)} down -v", check=False)

    def remove(self) -> None:
        """Remove every host of the project, and its network."""
        self._stack.close()
        if self.keep:
            self.down()


# Docker's image layers keep no ACLs (of the extended attributes, only file capabilities): a
# snapshot writes the host's ACLs to this file, and a host started from it sets them again, as a
# real host's disk would have kept them (the releases' entry for the webserver's group).
SAVED_ACLS = "/var/lib/test-host-acls"


def snapshot(host: TestHost, image: str) -> str:
    """Save a host's file system as an image, to start other hosts from that state."""
    host.exec(f"getfacl -R -s -p /srv /etc /opt /var/lib /var/cache > {SAVED_ACLS} 2>/dev/null || true", check=False)
    _run("docker", "commit", host.container, image)
    return image


def network_gateway(host: TestHost) -> str:
    """The address of this machine on the host's compose network."""
    network = subprocess.run(["docker", "inspect", "-f", "{{range $name, $_ := .NetworkSettings.Networks}}{{$name}}{{end}}",
                              host.container], check=True, capture_output=True, text=True).stdout.strip()
    return subprocess.run(["docker", "network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", network],
                          check=True, capture_output=True, text=True).stdout.strip()


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


__all__ = ["COMPOSE_COMMAND", "COMPOSE_FILE", "FOUR_HOSTS", "HostGroup", "TestHost", "booted_host", "compose_command",
           "ensure_docker", "ensure_image", "ensure_ssh_key", "give_roles", "held_flock", "image_exists", "machine_lock",
           "prepared_image",
           "snapshot", "write_fleet_file"]
