"""Benchmarks on the local test fleet: how fast we deploy and release, and how many requests fail
while a release runs under load. Each figure is the median of several runs, with min and max;
each ratio is measured side by side, in the same run, alternating the two sides. The load client
is in load.py; failed requests as a browser sees them in browser.py, memory in memory.py, the
scaling curve in scaling.py, the table's arithmetic in figures.py.

    python -m bench [--runs N] [--clients N] [--output bench/RESULTS.md] [--only MEASURE ...]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from bench import figures
from bench.browser import browser
from bench.load import Load
from bench.memory import memory
from bench.scaling import scaling
from tests import fleet
from tests.conftest import PREVIOUS_VERSION, kit_at, run_pyinfra
from tests.e2e.sources import example_source

REPO = Path(__file__).resolve().parents[1]
ROOT = "/srv/www/guestbook"
WORK = Path(tempfile.mkdtemp(prefix="bench-"))

# The same steps as a code-only release, typed by hand in one SSH session: copy the archive,
# unpack, link the existing virtualenv, migrate (nothing to do), collectstatic, switch, reload,
# wait for the new release to answer.
HAND_RELEASE = r"""
set -e
root=/srv/www/guestbook; id=$1; rel=$root/releases/$id
mkdir -p $rel && tar -xzf /tmp/$id.tar.gz -C $rel && echo $id > $rel/REVISION
ln -s "$(readlink $root/current/.venv)" $rel/.venv
ln -s $rel/staticfiles $rel/.static
$root/bin/manage --release $rel migrate --noinput >/dev/null
$root/bin/manage --release $rel --user root collectstatic --noinput -v0
ln -sfn $rel $root/current.next && mv -Tf $root/current.next $root/current
systemctl reload uwsgi-guestbook
until [ "$(curl -sk -o /dev/null --resolve localhost:443:127.0.0.1 -w '%{http_code} %header{x-release-id}' \
    https://localhost/health/)" = "200 $id" ]; do sleep 0.1; done
"""

# The installs of a first deploy alone, by hand on a bare host: the floor of any first deploy.
HAND_INSTALLS = r"""
set -e
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
python3 -m venv /opt/tools && /opt/tools/bin/pip install -q uv==0.13.8
/opt/tools/bin/uv venv -q /opt/app && /opt/tools/bin/uv pip install -q --python /opt/app/bin/python -r /tmp/requirements.txt
"""


# The index_on_big_table measure's migrations, each after PREVIOUS.
PLAIN_INDEX = """from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("guestbook", "PREVIOUS")]
    operations = [migrations.AddIndex("note", models.Index(fields=["text"], name="note_text_idx"))]
"""
DROP_INDEX = """from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("guestbook", "PREVIOUS")]
    operations = [migrations.RemoveIndex("note", "note_text_idx")]
"""
CONCURRENT_INDEX = """from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("guestbook", "PREVIOUS")]
    operations = [AddIndexConcurrently("note", models.Index(fields=["text"], name="note_text_idx"))]
"""

# The project of the one-host against four-hosts measure.
FLEET_PROJECT = {"database": "postgresql", "celery": True, "django_environment_variables": {
    "DJANGO_SECRET_KEY": "bench-only-key-0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d",
    "DJANGO_DB_PASSWORD": "bench-only-password", "REDIS_PASSWORD": "bench-only-redis-password"}}


class Bench:
    def __init__(self, runs: int, clients: int):
        self.runs, self.clients = runs, clients
        self.key = fleet.ensure_ssh_key()
        self.groups: list[fleet.HostGroup] = []
        self.rows: list[tuple[str, str, str]] = []
        self.sources = 0
        self.work = WORK

    # ---------------------------------------------------------------- helpers

    def group(self, compose_file: Path = fleet.COMPOSE_FILE) -> fleet.HostGroup:
        """A compose project of its own, removed by stop_all."""
        group = fleet.HostGroup(f"bench{uuid.uuid4().hex[:8]}", self.key, compose_file=compose_file)
        self.groups.append(group)
        return group

    def start(self, image: str, roles: dict[str, list[str] | None] | None = None,
              data: dict | None = None, compose_file: Path = fleet.COMPOSE_FILE) -> tuple[list[fleet.TestHost], Path]:
        """Hosts named after `roles` (name -> inventory groups; default: web1 holding all roles)."""
        roles = roles or {"web1": None}
        hosts = self.group(compose_file).start(*roles, image=image)
        fleet.give_roles(hosts, roles, data)
        return hosts, fleet.write_fleet_file(WORK / f"fleet-{uuid.uuid4().hex[:6]}.json", self.key, hosts)

    def stop_all(self):
        for group in self.groups:
            group.remove()
        self.groups = []

    def new_source(self, **changes) -> tuple[str, Path]:
        self.sources += 1
        release_id = f"b{self.sources}"
        return release_id, example_source(WORK / release_id, release_id, **changes)

    def ssh(self, host: fleet.TestHost, script: str, *args: str, stdin_file: Path | None = None):
        command = ["ssh", "-q", "-i", str(self.key), "-p", str(host.ssh_port), "-o", "StrictHostKeyChecking=no",
                   "-o", "UserKnownHostsFile=/dev/null", "root@127.0.0.1", "bash", "-s", "--", *args]
        done = subprocess.run(command, input=script, text=True, capture_output=True)
        if done.returncode != 0:
            raise RuntimeError(f"by hand on {host.name}: exit {done.returncode}: {done.stderr[-2000:]}")

    def scp(self, host: fleet.TestHost, local: Path, remote: str):
        subprocess.run(["scp", "-q", "-i", str(self.key), "-P", str(host.ssh_port), "-o", "StrictHostKeyChecking=no",
                        "-o", "UserKnownHostsFile=/dev/null", str(local), f"root@127.0.0.1:{remote}"], check=True)

    @staticmethod
    def timed(action) -> float:
        started = time.monotonic()
        action()
        return time.monotonic() - started

    summary = staticmethod(figures.summary)

    def row(self, what: str, figure: str, goal: str = ""):
        self.rows.append((what, figure, goal))
        print(f"{what}: {figure} {goal}", flush=True)

    @staticmethod
    def deploy(fleet_file: Path, deploy_file: str, kit: Path = REPO, **data):
        result = run_pyinfra(fleet_file, deploy_file, data=data, kit=kit)
        if result.returncode != 0:
            raise RuntimeError(result.output[-4000:])
        return result

    def release_under_load_of(self, host: fleet.TestHost, fleet_file: Path, source: Path, release_id: str, data: dict,
                              goes_live: bool, what: str, **load_options) -> tuple[Load, float]:
        """release.py of `source` while the clients load the host (Load's `load_options`); fails
        unless it went live, or was refused, as `goes_live` says. The load, and the seconds the
        release took."""
        load = Load(host.https_port, self.clients, **load_options)
        load.start()
        started = time.monotonic()
        result = run_pyinfra(fleet_file, "deploys/release.py",
                             data={"django_source_dir": str(source), "release_id": release_id, **data})
        took = time.monotonic() - started
        load.stop()
        if (result.returncode == 0) != goes_live:
            raise RuntimeError(f"{what}: the release {'failed' if goes_live else 'went live'}: "
                               f"{result.output[-3000:]}")
        return load, took

    # ---------------------------------------------------------------- measurements

    def first_deploy(self, bare: str) -> str:
        ours, floor = [], []
        packages = ["acl", "ca-certificates", "sudo", "curl", "openssl", "python3", "python3-venv", "sqlite3",
                    "uwsgi-core", "uwsgi-plugin-python3", "nginx"]
        for _ in range(max(2, self.runs // 2)):
            (host,), fleet_file = self.start(bare)
            ours.append(self.timed(lambda: self.deploy(fleet_file, "deploys/all.py")))
            (hand,), _ = self.start(bare)
            self.scp(hand, REPO / "example" / "requirements.txt", "/tmp/requirements.txt")
            floor.append(self.timed(lambda: self.ssh(hand, HAND_INSTALLS, *packages)))
            live = fleet.snapshot(host, fleet.prepared_image("bench-live"))
            self.stop_all()
        self.row("first deploy, bare host to HTTPS page", self.summary(ours))
        self.row("  floor: the apt and pip installs alone", self.summary(floor),
                 f"ratio {statistics.median(ours) / statistics.median(floor):.2f} (goal at most 1.3)")
        return live

    def no_op(self, live: str):
        (host,), fleet_file = self.start(live)
        times, changes = [], []
        for _ in range(self.runs):
            result = []
            times.append(self.timed(lambda: result.append(self.deploy(fleet_file, "deploys/all.py"))))
            changes.append(len(result[0].changed()))
        self.stop_all()
        self.row("no-op: deploys/all.py again", self.summary(times),
                 f"changes reported: {max(changes)} (goal 0)")

    def code_release(self, live: str):
        (host,), fleet_file = self.start(live)
        ours, floor = [], []
        for _ in range(self.runs):
            release_id, source = self.new_source()
            ours.append(self.timed(lambda: self.deploy(fleet_file, "deploys/release.py",
                                                       django_source_dir=str(source), release_id=release_id)))
            hand_id, hand_source = self.new_source()
            archive = WORK / f"{hand_id}.tar.gz"
            subprocess.run(["tar", "-czf", str(archive), "-C", str(hand_source), "."], check=True)

            def by_hand():
                self.scp(host, archive, f"/tmp/{hand_id}.tar.gz")
                self.ssh(host, HAND_RELEASE, hand_id)
            floor.append(self.timed(by_hand))
        self.stop_all()
        ratio = statistics.median(ours) / statistics.median(floor)
        self.row("code-only release, prepared host", self.summary(ours))
        self.row("  floor: the same steps by hand", self.summary(floor),
                 f"ratio {ratio:.2f} (goal at most 1.3)")

    def dependency_release(self, live: str):
        (host,), fleet_file = self.start(live)
        times = []
        for package in ["six==1.16.0", "idna==3.10", "packaging==24.2"][:max(2, min(3, self.runs))]:
            release_id, source = self.new_source()
            times.append(self.timed(lambda: self.deploy(
                fleet_file, "deploys/release.py", django_source_dir=str(source), release_id=release_id,
                django_dependencies=f'["{package}"]')))
        self.stop_all()
        self.row("release with one dependency changed", self.summary(times))

    def rollback(self, live: str):
        (host,), fleet_file = self.start(live)
        times = []
        for _ in range(self.runs):
            release_id, source = self.new_source()
            self.deploy(fleet_file, "deploys/release.py", django_source_dir=str(source), release_id=release_id)
            times.append(self.timed(lambda: self.deploy(fleet_file, "deploys/rollback.py")))
        self.stop_all()
        self.row("rollback of a code-only release", self.summary(times), "(goal under 1.5 s)")

    def release_under_load(self, live: str):
        (host,), fleet_file = self.start(live)
        failures, totals, asset_failures, asset_totals, retried = [], [], [], [], 0
        for _ in range(max(2, self.runs // 2)):
            release_id, source = self.new_source(mood_migration=True)
            load = Load(host.https_port, self.clients)
            load.start()
            self.deploy(fleet_file, "deploys/release.py", django_source_dir=str(source), release_id=release_id)
            load.stop()
            served = load.release_seen_last
            failures.append(load.failed)
            totals.append(load.total)
            asset_failures.append(load.assets_failed)
            asset_totals.append(load.assets)
            retried += load.retried
            if served != release_id:
                raise RuntimeError(f"after the release the load saw {served}, not {release_id}")
        self.stop_all()
        self.row(f"failed requests during a release, {self.clients} concurrent HTTPS clients loading page and assets",
                 f"pages: {max(failures)} of {min(totals)}-{max(totals)}; assets: {max(asset_failures)} of "
                 f"{min(asset_totals)}-{max(asset_totals)} per release (runs={len(failures)}); sent again on a new "
                 f"connection: {retried}",
                 "(goal 0; the new release served at the end)")

    def schema_changes(self, live: str):
        """A release with a schema change under load, by what the migration gate makes of it, each on
        a host of its own: a column added (safe: it goes live), a column the live release reads
        dropped (refused before anything changes), the same drop under migration_safety =
        "maintenance" (live behind the maintenance page), and under "allow" (what the gate
        prevents). Failed page requests, the maintenance page's 503s apart, and the longest page
        request."""
        cases = [("a column added (AddField with a db_default)", {"mood_migration": True}, {}, True),
                 ("a column the live release reads dropped: refused", {"mood_dropped": True}, {}, False),
                 ("the same drop, migration_safety=maintenance", {"mood_dropped": True},
                  {"migration_safety": "maintenance"}, True),
                 # What the gate prevents: the live release on a schema without the column it reads.
                 ("the same drop, migration_safety=allow", {"mood_dropped": True}, {"migration_safety": "allow"},
                  True)]
        for what, changes, data, goes_live in cases:
            (host,), fleet_file = self.start(live)
            if "mood_dropped" in changes:  # the live release has the column first
                release_id, source = self.new_source(mood_migration=True)
                self.deploy(fleet_file, "deploys/release.py", django_source_dir=str(source), release_id=release_id)
            release_id, source = self.new_source(**changes)
            load, took = self.release_under_load_of(host, fleet_file, source, release_id, data, goes_live, what)
            self.stop_all()
            # 503s are the maintenance page's only where it was asked for: elsewhere they are failures.
            unavailable = load.reasons["page 503"] if data.get("migration_safety") == "maintenance" else 0
            goal = ("(no gate: what refuse and maintenance prevent)" if data.get("migration_safety") == "allow"
                    else "(goal: 0 failed; 503s only behind the maintenance page)")
            self.row(f"release under load ({self.clients} clients), {what}",
                     f"{'live' if goes_live else 'refused'} in {took:.1f} s; pages: {load.failed - unavailable} "
                     f"failed and {unavailable} maintenance 503s of {load.total}; longest page request "
                     f"{load.longest:.2f} s (n=1)", goal)

    def index_on_big_table(self, bare: str):
        """An index on a table of a million rows (PostgreSQL; its text 128 characters), built by a
        release while the clients write to that table: without CONCURRENTLY (CREATE INDEX stops
        the table's writes until it is built), the same with migration_statement_timeout = 1
        (stopped, the release failing), and with AddIndexConcurrently. Failed writes and the
        longest write."""
        (host,), fleet_file = self.start(bare, data=FLEET_PROJECT)
        self.deploy(fleet_file, "deploys/all.py")
        self.ssh(host, "runuser -u postgres -- psql -q -d guestbook -c \"INSERT INTO guestbook_note "
                       "(text, created_by, created_at) SELECT repeat(md5(g::text), 4), 'bench', now() "
                       "FROM generate_series(1, 1000000) g\"")
        migrations: list[tuple[str, str]] = []
        cases = [("without CONCURRENTLY, migration_statement_timeout=1", PLAIN_INDEX, {"migration_statement_timeout": 1},
                  False),
                 ("without CONCURRENTLY", PLAIN_INDEX, {}, True),
                 (None, DROP_INDEX, {}, True),  # back to no index, not measured
                 ("with AddIndexConcurrently", CONCURRENT_INDEX, {}, True)]
        for what, migration, data, goes_live in cases:
            release_id, source = self.new_source()
            if goes_live:
                migrations.append((f"000{len(migrations) + 2}_{release_id}", migration))
            written = migrations if goes_live else [*migrations, (f"000{len(migrations) + 2}_{release_id}", migration)]
            previous = "0001_initial"
            for name, text in written:
                (source / "guestbook" / "migrations" / f"{name}.py").write_text(text.replace("PREVIOUS", previous))
                previous = name
            load, took = self.release_under_load_of(host, fleet_file, source, release_id, data, goes_live, what,
                                                    path="/notes/", form="text=bench")
            if what:
                self.row(f"index on a table of 1 million rows (PostgreSQL) under {self.clients} writing clients, "
                         f"{what}", f"{'live' if goes_live else 'failed, undone'} in {took:.1f} s; writes: "
                         f"{load.failed} failed of {load.total}; longest write {load.longest:.2f} s (n=1)",
                         "(goal: 0 failed)")
        self.stop_all()

    def previous_version(self, bare: str):
        """This version of the kit against the previous one (PREVIOUS_VERSION), side by side: the
        no-op re-run of all.py and a code-only release of a project with PostgreSQL and Celery
        (FLEET_PROJECT: the no-op passes the db host's steps too), each kit on a host it deployed
        from bare itself, the two alternating run after run."""
        kits = {"this version": REPO, "the previous version": kit_at(PREVIOUS_VERSION, WORK / "previous-kit")}
        hosts = {}
        for name, kit in kits.items():
            (host,), fleet_file = self.start(bare, data=FLEET_PROJECT)
            self.deploy(fleet_file, "deploys/all.py", kit=kit)
            hosts[name] = fleet_file
        no_op = {name: [] for name in kits}
        release = {name: [] for name in kits}
        for _ in range(self.runs):
            for name, kit in kits.items():
                no_op[name].append(self.timed(lambda: self.deploy(hosts[name], "deploys/all.py", kit=kit)))
                release_id, source = self.new_source()
                release[name].append(self.timed(lambda: self.deploy(
                    hosts[name], "deploys/release.py", kit=kit, django_source_dir=str(source), release_id=release_id)))
        self.stop_all()
        for what, times in (("no-op: deploys/all.py again", no_op), ("code-only release", release)):
            this, previous = times["this version"], times["the previous version"]
            self.row(f"{what} (PostgreSQL, Celery), this version of the kit", self.summary(this))
            self.row(f"  the previous version ({PREVIOUS_VERSION[:7]})", self.summary(previous),
                     f"ratio {statistics.median(this) / statistics.median(previous):.2f} (goal: within noise of 1)")

    def load_balancer(self, bare: str):
        """lb1 (HAProxy) in front of web1 and web2, PostgreSQL on db1, the clients through lb1
        loading pages and assets: a rolling release and a rollback (one web host at a time); web2
        killed hard (its container) and started again: failed requests, and seconds until lb1 takes
        it out and puts it back; and the load balancer's cost: page latency through lb1 against
        web1 directly, side by side."""
        roles = {"lb1": ["lb"], "web1": ["web"], "web2": ["web"], "db1": ["db"]}
        project = {"database": "postgresql", "health_check_path": "/health/", "rolling_batch_size": 1,
                   "django_environment_variables": {key: FLEET_PROJECT["django_environment_variables"][key]
                                                    for key in ("DJANGO_SECRET_KEY", "DJANGO_DB_PASSWORD")}}
        hosts, fleet_file = self.start(bare, roles=roles, data=project)
        by_name = {host.name: host for host in hosts}
        lb, web1, web2 = by_name["lb1"], by_name["web1"], by_name["web2"]
        self.deploy(fleet_file, "deploys/all.py")
        release_id, source = self.new_source()
        for what, deploy_file, data in (
                ("a rolling release", "deploys/release.py", {"django_source_dir": str(source), "release_id": release_id}),
                ("a rollback", "deploys/rollback.py", {})):
            load = Load(lb.https_port, self.clients)
            load.start()
            self.deploy(fleet_file, deploy_file, **data)
            load.stop()
            self.row(f"through the load balancer ({self.clients} clients), {what}, one web host at a time",
                     f"pages: {load.failed} failed of {load.total}; assets: {load.assets_failed} failed of "
                     f"{load.assets} (n=1){f'; {dict(load.reasons)}' if load.reasons else ''}", "(goal 0)")

        def web2_state() -> str:
            stat = subprocess.run(["docker", "exec", lb.container, "sh", "-c",
                                   "echo 'show stat' | socat stdio /run/haproxy/admin.sock"],
                                  capture_output=True, text=True).stdout
            return next((row.split(",")[17] for row in stat.splitlines() if row.split(",")[1:2] == ["web2"]), "")

        def until(state: str, limit: float = 120) -> float:
            started = time.monotonic()
            while web2_state() != state:
                if time.monotonic() - started > limit:
                    raise RuntimeError(f"web2 not {state} within {limit} s")
                time.sleep(0.1)
            return time.monotonic() - started

        load = Load(lb.https_port, self.clients)
        load.start()
        subprocess.run(["docker", "kill", web2.container], check=True, capture_output=True)
        killed = time.monotonic()
        out = until("DOWN")
        time.sleep(5)
        load.stop()
        after_out = sum(1 for moment in load.failed_started if moment > killed + out)
        subprocess.run(["docker", "start", web2.container], check=True, capture_output=True)
        back = until("UP")
        why = f" (failures: {dict(load.reasons)})" if load.reasons else ""
        self.row(f"through the load balancer ({self.clients} clients), web2 killed hard", f"{load.failed} pages and "
                 f"{load.assets_failed} assets failed of {load.total} and {load.assets}{why}, {after_out} of them "
                 f"sent after lb1 took web2 out, {out:.1f} s after the kill; back {back:.1f} s after its container "
                 "started (systemd's boot included) (n=1)", "(goal: only the requests in flight at the kill)")

        through, direct = [], []
        for _ in range(2):
            for port, seconds in ((lb.https_port, through), (web1.https_port, direct)):
                load = Load(port, self.clients, path="/health/")
                load.start()
                time.sleep(5)
                load.stop()
                seconds += load.page_seconds
        percentile = lambda values, share: statistics.quantiles(values, n=100)[share - 1]
        self.row(f"page latency through the load balancer ({self.clients} clients, /health/)",
                 f"median {statistics.median(through) * 1000:.1f} ms, p99 {percentile(through, 99) * 1000:.1f} ms "
                 f"(n={len(through)})")
        self.row("  web1 directly", f"median {statistics.median(direct) * 1000:.1f} ms, p99 "
                 f"{percentile(direct, 99) * 1000:.1f} ms (n={len(direct)})",
                 f"ratio of medians {statistics.median(through) / statistics.median(direct):.2f}")
        self.stop_all()

    def fleet_release(self, bare: str):
        """One host holding every role against the four-host fleet (web1, web2, worker1, db1), the
        same project (PostgreSQL, Celery) on both, each prepared from bare hosts by all.py."""
        (one,), one_file = self.start(bare, data=FLEET_PROJECT)
        four, four_file = self.start(bare, roles=fleet.FOUR_HOSTS, data=FLEET_PROJECT)
        for fleet_file in (one_file, four_file):
            self.deploy(fleet_file, "deploys/all.py")
        single, several = [], []
        for _ in range(max(2, self.runs // 2)):
            release_id, source = self.new_source()
            single.append(self.timed(lambda: self.deploy(one_file, "deploys/release.py",
                                                         django_source_dir=str(source), release_id=release_id)))
            several.append(self.timed(lambda: self.deploy(four_file, "deploys/release.py",
                                                          django_source_dir=str(source), release_id=release_id)))
        self.stop_all()
        self.row("code-only release, one host (PostgreSQL, Celery)", self.summary(single))
        self.row("  four hosts: web1, web2, worker1, db1", self.summary(several),
                 f"ratio {statistics.median(several) / statistics.median(single):.2f} (goal at most 1.5)")

    def app_servers(self, live: str):
        """A code-only release under load with each app server, side by side: one host each, all
        switched from the live one by all.py, then released to in turn, run after run."""
        hosts = {}
        for server in APP_SERVERS:
            (host,), fleet_file = self.start(live, data={"app_server": server})
            self.deploy(fleet_file, "deploys/all.py")
            hosts[server] = (host, fleet_file)
        times = {server: [] for server in APP_SERVERS}
        # pages failed, pages, assets failed, assets, sent again on a new connection
        failed = {server: [0, 0, 0, 0, 0] for server in APP_SERVERS}
        for _ in range(max(2, self.runs // 2)):
            for server, (host, fleet_file) in hosts.items():
                release_id, source = self.new_source()
                load = Load(host.https_port, self.clients)
                load.start()
                times[server].append(self.timed(lambda: self.deploy(
                    fleet_file, "deploys/release.py", django_source_dir=str(source), release_id=release_id)))
                load.stop()
                if load.release_seen_last != release_id:
                    raise RuntimeError(f"{server}: after the release the load saw {load.release_seen_last}")
                for index, count in enumerate((load.failed, load.total, load.assets_failed, load.assets,
                                                    load.retried)):
                    failed[server][index] += count
        self.stop_all()
        for server in APP_SERVERS:
            pages_failed, pages, assets_failed, assets, retried = failed[server]
            ratio = statistics.median(times[server]) / statistics.median(times["uwsgi"])
            self.row(f"code-only release under load, app_server {server}", self.summary(times[server]),
                     f"ratio to uwsgi {ratio:.2f}; failed: {pages_failed} of {pages} pages, {assets_failed} of "
                     f"{assets} assets ({self.clients} clients; goal 0); sent again on a new connection: {retried}")

    def browser(self, live: str, bare: str):
        browser(self, live, bare)

    def memory(self, bare: str):
        memory(self, bare, FLEET_PROJECT, APP_SERVERS)

    def scaling(self, bare: str):
        scaling(self, bare, max(2, self.runs // 2))

    def prepared(self, bare: str) -> str:
        """A host with the example app live, for the measures that start from one."""
        (host,), fleet_file = self.start(bare)
        self.deploy(fleet_file, "deploys/all.py")
        live = fleet.snapshot(host, fleet.prepared_image("bench-live"))
        self.stop_all()
        return live

    def report(self, output: Path | None):
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        lines = [f"Benchmarks of {stamp} (python -m bench, on the local test fleet; 2 cores).", "",
                 "| measure | result | notes |", "|---|---|---|"]
        lines += [f"| {what} | {figure} | {goal} |" for what, figure, goal in self.rows]
        if output:
            output.write_text("\n".join(lines) + "\n")
        print("\n".join(lines))


MEASURES = ["first_deploy", "no_op", "code_release", "dependency_release", "rollback", "release_under_load",
            "schema_changes", "index_on_big_table", "app_servers", "fleet_release", "browser", "memory", "scaling",
            "previous_version", "load_balancer"]
# The measures that start from bare hosts only; the others from a host with the example app live.
FROM_BARE = {"index_on_big_table", "fleet_release", "memory", "scaling", "previous_version", "load_balancer"}
APP_SERVERS = ["uwsgi", "gunicorn", "asgi"]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "RESULTS.md")
    parser.add_argument("--only", choices=MEASURES, action="append",
                        help="run only these measures (repeatable); the table is printed, not written")
    args = parser.parse_args()
    fleet.ensure_docker()
    bare = fleet.ensure_image("bookworm")
    bench = Bench(args.runs, args.clients)
    wanted = args.only or MEASURES
    try:
        live = None
        if "first_deploy" in wanted:
            live = bench.first_deploy(bare)
        elif set(wanted) - FROM_BARE:
            live = bench.prepared(bare)
        for measure in wanted:
            if measure == "browser":
                bench.browser(live, bare)
            elif measure != "first_deploy":
                getattr(bench, measure)(bare if measure in FROM_BARE else live)
    finally:
        bench.stop_all()
        shutil.rmtree(WORK, ignore_errors=True)
    bench.report(None if args.only else args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
