"""The scaling curve: a code-only release to 1, 2, 4 and 8 web hosts (and a PostgreSQL db host),
in one run, with where the time goes: the CPU time of the pyinfra process on the control machine,
the CPU time of the hosts (their containers' cgroups), and pyinfra's phases (connecting,
preparing the operations, running them) from the time its progress lines appear."""

from __future__ import annotations

import glob
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.figures import goal_words, phase_times, ratio, summary
from tests import fleet

SIZES = [1, 2, 4, 8]
WEB_HOSTS = [f"web{number}" for number in range(1, max(SIZES) + 1)]
SCALING_PROJECT = {"database": "postgresql", "django_environment_variables": {
    "DJANGO_SECRET_KEY": "bench-only-key-0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d",
    "DJANGO_DB_PASSWORD": "bench-only-password"}}


def scaling_compose_file(path: Path) -> Path:
    """hosts.yml with web1 to web8 (web1's service, renamed) beside its db1: the test fleet's
    compose file knows two web hosts only."""
    compose = yaml.safe_load(fleet.COMPOSE_FILE.read_text())
    web = compose["services"]["web1"]
    services = {name: {**web, "hostname": name, "networks": {"default": {"aliases": [f"{name}.example.test"]}}}
                for name in WEB_HOSTS}
    services["db1"] = compose["services"]["db1"]
    path.write_text(yaml.safe_dump({**compose, "services": services}, sort_keys=False))
    return path


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def hosts_cpu_seconds(hosts: list[fleet.TestHost]) -> float:
    """CPU time used so far by the hosts' containers (cgroup v1 cpuacct, or v2 cpu.stat)."""
    total = 0.0
    for host in hosts:
        full_id = subprocess.run(["docker", "inspect", "-f", "{{.Id}}", host.container], check=True,
                                 capture_output=True, text=True).stdout.strip()
        v1 = glob.glob(f"/sys/fs/cgroup/cpuacct/docker/{full_id}/cpuacct.usage")
        if v1:
            total += int(Path(v1[0]).read_text()) / 1e9
            continue
        v2 = glob.glob(f"/sys/fs/cgroup/system.slice/docker-{full_id}.scope/cpu.stat")
        if not v2:
            raise RuntimeError(f"no CPU accounting found for the container of {host.name}")
        usage = dict(line.split() for line in Path(v2[0]).read_text().splitlines())
        total += int(usage["usage_usec"]) / 1e6
    return total


@dataclass
class TimedRun:
    wall: float
    control_cpu: float  # the pyinfra process (and what it ran locally), user + system
    hosts_cpu: float
    phases: dict[str, float]


def timed_release(fleet_file: Path, hosts: list[fleet.TestHost], release_id: str, source: Path) -> TimedRun:
    """deploys/release.py as run_pyinfra runs it, its output read as it comes to time the phases."""
    command = [sys.executable, "-m", "pyinfra", "-y", "--data", f"django_source_dir={source}",
               "--data", f"release_id={release_id}", "inventories/local.py", "deploys/release.py"]
    cpu_before, hosts_before = children_cpu_seconds(), hosts_cpu_seconds(hosts)
    started = time.monotonic()
    lines: list[tuple[float, str]] = []
    with subprocess.Popen(command, cwd=fleet.REPO, text=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT,
                          env={**os.environ, "DEPLOY_FLEET_FILE": str(fleet_file), "COLUMNS": "200"}) as process:
        for line in process.stdout:
            lines.append((time.monotonic() - started, line))
    wall = time.monotonic() - started
    if process.returncode != 0:
        raise RuntimeError("".join(line for _, line in lines)[-4000:])
    return TimedRun(wall, children_cpu_seconds() - cpu_before, hosts_cpu_seconds(hosts) - hosts_before,
                    phase_times(lines, wall))


def scaling(bench, bare: str, runs: int):
    """8 web hosts and a db host started once and deployed by all.py; then, run after run, a
    code-only release to the first 1, 2, 4 and 8 of them (and the db host), in turn."""
    compose = scaling_compose_file(bench.work / "scaling-hosts.yml")
    roles = {**{name: ["web"] for name in WEB_HOSTS}, "db1": ["db"]}
    hosts, all_file = bench.start(bare, roles=roles, data=SCALING_PROJECT, compose_file=compose)
    by_name = {host.name: host for host in hosts}
    started = time.monotonic()
    bench.deploy(all_file, "deploys/all.py")
    print(f"all.py to {len(hosts)} bare hosts: {time.monotonic() - started:.0f} s", flush=True)
    subsets = {}
    for size in SIZES:
        chosen = [by_name[name] for name in WEB_HOSTS[:size]] + [by_name["db1"]]
        subsets[size] = (chosen, fleet.write_fleet_file(bench.work / f"scaling-{size}.json", bench.key, chosen))
    results: dict[int, list[TimedRun]] = {size: [] for size in SIZES}
    for _ in range(runs):
        for size, (chosen, fleet_file) in subsets.items():
            release_id, source = bench.new_source()
            results[size].append(timed_release(fleet_file, chosen, release_id, source))
    bench.stop_all()
    walls = {size: [run.wall for run in timed] for size, timed in results.items()}
    for size, timed in results.items():
        notes = [f"pyinfra CPU {median_of(timed, 'control_cpu'):.1f} s, hosts' CPU {median_of(timed, 'hosts_cpu'):.1f} s",
                 "phases " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in median_phases(timed).items())]
        if size == max(SIZES):
            notes.insert(0, goal_words(ratio(walls[size], walls[1]), 1.5) + " against 1 host")
        elif size != 1:
            notes.insert(0, f"ratio {ratio(walls[size], walls[1]):.2f} against 1 host")
        bench.row(f"code-only release to {size} web host{'s' if size > 1 else ''} + db (PostgreSQL)",
                  summary(walls[size]), "; ".join(notes))


def median_of(timed: list[TimedRun], field: str) -> float:
    return statistics.median(getattr(run, field) for run in timed)


def median_phases(timed: list[TimedRun]) -> dict[str, float]:
    return {name: statistics.median(run.phases[name] for run in timed) for name in timed[0].phases}
