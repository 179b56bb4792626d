"""Failed requests as a browser sees them, during each kind of run that touches a live site: a
code-only release, a rollback, deploys/restart.py, deploys/skeleton.py with a changed config, and a
certificate renewal by certbot against an ACME test server. Pages and assets counted apart."""

from __future__ import annotations

import time
from collections import Counter

from bench.figures import failures_figure, failures_goal, reasons_words
from bench.load import Load
from tests import fleet
from tests.e2e.conftest import live_release
from tests.e2e.pebble import SITE, served_certificate, start_pebble

# certbot's renewal as its timer runs it (with the environment of its service), made due now.
RENEW = ("env $(systemctl show certbot.service -p Environment --value) "
         "certbot renew --force-renewal --no-random-sleep-on-renew")


class Scenario:
    """The counts of one scenario over its runs."""

    def __init__(self, name: str):
        self.name, self.runs = name, 0
        self.pages_failed = self.pages = self.assets_failed = self.assets = self.retried = 0
        self.reasons: Counter[str] = Counter()

    def under_load(self, bench, host: fleet.TestHost, action, server_name: str = "localhost",
                   expect_release: str | None = None):
        load = Load(host.https_port, bench.clients, server_name=server_name)
        load.start()
        try:
            action()
        finally:
            load.stop()
        self.runs += 1
        self.pages_failed += load.failed
        self.pages += load.total
        self.assets_failed += load.assets_failed
        self.assets += load.assets
        self.reasons.update(load.reasons)
        self.retried += load.retried
        if expect_release and load.release_seen_last != expect_release:
            raise RuntimeError(f"{self.name}: the load saw {load.release_seen_last} last, not {expect_release}")

    def row(self, bench):
        bench.row(f"as a browser sees it, {bench.clients} clients: {self.name}",
                  failures_figure(self.pages_failed, self.pages, self.assets_failed, self.assets, self.runs,
                                  self.retried),
                  failures_goal(self.pages_failed, self.assets_failed) + reasons_words(self.reasons))


def changed_config(run) -> list[str]:
    """The reloads a skeleton run made for a changed config (nginx's and the app server's)."""
    return [name for name in run.changed() if name.endswith(("Reload nginx", "Reload uwsgi-guestbook if it runs"))]


def browser(bench, live: str, bare: str):
    runs = max(2, bench.runs // 2)
    (host,), fleet_file = bench.start(live)

    release = Scenario("code-only release (deploys/release.py)")
    for _ in range(runs):
        release_id, source = bench.new_source()
        release.under_load(bench, host, lambda: bench.deploy(fleet_file, "deploys/release.py",
                                                            django_source_dir=str(source), release_id=release_id),
                           expect_release=release_id)
    release.row(bench)

    rollback = Scenario("rollback of a code-only release (deploys/rollback.py)")
    for _ in range(runs):
        previous = live_release(host)
        release_id, source = bench.new_source()
        bench.deploy(fleet_file, "deploys/release.py", django_source_dir=str(source), release_id=release_id)
        rollback.under_load(bench, host, lambda: bench.deploy(fleet_file, "deploys/rollback.py"),
                            expect_release=previous)
    rollback.row(bench)

    restart = Scenario("deploys/restart.py")
    for _ in range(runs):
        restart.under_load(bench, host, lambda: bench.deploy(fleet_file, "deploys/restart.py"),
                           expect_release=live_release(host))
    restart.row(bench)

    # Each run a config that differs from the one in place: uWSGI's workers (the ini, reloaded)
    # and an address served in maintenance (nginx's site, tested and reloaded).
    skeleton = Scenario("deploys/skeleton.py with a changed config (uwsgi_number_workers, maintenance_allow)")
    for index in range(runs):
        data = {"uwsgi_number_workers": 3 + index % 2, "maintenance_allow": f'["203.0.113.{10 + index}"]'}
        reloads = []
        skeleton.under_load(bench, host, lambda: reloads.extend(changed_config(
            bench.deploy(fleet_file, "deploys/skeleton.py", **data))), expect_release=live_release(host))
        if len(reloads) != 2:
            raise RuntimeError(f"skeleton.py with {data} reloaded {reloads}, not nginx and uWSGI")
    skeleton.row(bench)
    bench.stop_all()

    renewal(bench, live, bare, runs)


def renewal(bench, live: str, bare: str, runs: int):
    """A web host with a certificate from pebble (on the `acme` host of its network), renewed by
    certbot under load; the run ends once the new certificate is served."""
    group = bench.group()
    (acme,) = group.start("acme", image=bare)
    directory_root = start_pebble(acme)
    (web,) = group.start("web1", image=live)
    web.data = {"url": SITE, "acme_email": "ops@example.test", "acme_directory": "https://acme:14000/dir",
                "acme_ca_certificate": directory_root}
    fleet_file = fleet.write_fleet_file(bench.work / "renewal.json", bench.key, [web])
    # all.py: certbot is a package of the host preparation, which skeleton.py does not run.
    bench.deploy(fleet_file, "deploys/all.py")
    if "Pebble" not in served_certificate(web).issuer.rfc4514_string():
        raise RuntimeError(f"no certificate from pebble served: {served_certificate(web).issuer.rfc4514_string()}")
    scenario = Scenario("certificate renewal (certbot renew --force-renewal, pebble)")
    for _ in range(runs):
        before = served_certificate(web).serial_number

        def renew():
            renewed = web.exec(RENEW, check=False)
            if renewed.returncode != 0:
                raise RuntimeError(f"certbot renew failed: {renewed.stdout[-2000:]}{renewed.stderr[-2000:]}")
            deadline = time.monotonic() + 30
            while served_certificate(web).serial_number == before:
                if time.monotonic() > deadline:
                    raise RuntimeError("the renewed certificate was not served within 30 s")
                time.sleep(0.2)
        scenario.under_load(bench, web, renew, server_name=SITE, expect_release=live_release(web))
    bench.stop_all()
    scenario.row(bench)
