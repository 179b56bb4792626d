"""What restart.py asks of each host (operate/restart.py), recorded without a host: the app server
and Celery restarted on the live release with the checks of a switch, batch after batch as a
release switches, each batch drained on the load balancers first."""

from dataclasses import replace

from deploys.djangoapp.core.host_state import ReleaseInfo
from deploys.djangoapp.operate import restart
from deploys.djangoapp.release.switch import switch_plan
from deploys.djangoapp.site import load_balancer
from tests.unit.sites import placed_fleet, settings
from tests.unit.steps import Steps

LIVE = {ReleaseInfo: {"id": "r7"}}


def record(monkeypatch, sites: dict, name: str, facts: dict = LIVE) -> Steps:
    steps = Steps(monkeypatch).replace(restart, "systemd", "reload_release").replace(load_balancer, "python")
    monkeypatch.setattr(load_balancer, "host", steps.host(restart, name, facts))
    restart.restart_in_batches(sites[name])
    return steps


def test_behind_load_balancers_each_batch_reloads_drained_and_is_put_back_after(monkeypatch):
    from tests.unit.site.test_haproxy_config import placed

    steps = record(monkeypatch, placed(rolling_batch_size=1), "web2")
    assert [(step.operation, step.name, step.runs()) for step in steps] == [
        ("python.call", "Drain web1 on the load balancers (batch 1 of 2)", False),
        ("systemd.service", "Reload nginx (batch 1 of 2)", False),
        ("reload_release", "Restart uwsgi-mysite on the live release and check them (batch 1 of 2)", False),
        ("python.call", "web1 back on the load balancers (batch 1 of 2)", False),
        ("python.call", "Drain web2 on the load balancers (batch 2 of 2)", True),
        ("systemd.service", "Reload nginx (batch 2 of 2)", True),
        ("reload_release", "Restart uwsgi-mysite on the live release and check them (batch 2 of 2)", True),
        ("python.call", "web2 back on the load balancers (batch 2 of 2)", True)]
    sites = placed(rolling_batch_size=1)
    assert steps[4].kwargs["command"] == load_balancer.drain_command(sites["web2"], ["web2"], ["web1"])
    assert steps[7].kwargs["command"] == load_balancer.ready_command(sites["web2"], ["web2"])


def test_the_live_release_is_checked_as_a_switch_to_it_would_be_with_gunicorn_reloaded_gracefully(monkeypatch):
    site = settings(celery=True, celery_beat=True, app_server="gunicorn")
    steps = record(monkeypatch, {"localhost": site}, "localhost")
    assert [(step.name, step.runs()) for step in steps] == [
        ("Reload nginx", True), ("Restart gunicorn-mysite and Celery on the live release and check them", True)]
    plan = steps[1].kwargs["plan"]
    assert plan == replace(switch_plan(site, "r7"), app_restart="reload-or-restart")
    assert plan.celery_services == ("celery-mysite", "celery-beat-mysite") and switch_plan(site, "r7").app_restart == "restart"


def test_without_a_live_release_only_the_webserver_reloads_saying_why(monkeypatch):
    steps = record(monkeypatch, {"localhost": settings()}, "localhost", {ReleaseInfo: None})
    assert steps.calls() == [("systemd.service", "Reload nginx")]
    assert restart.host.noops == ["no release is live: no app server or Celery to restart"]


def test_a_host_that_runs_no_web_or_worker_role_restarts_nothing(monkeypatch):
    from tests.unit.site.test_haproxy_config import placed

    assert [step.name for step in record(monkeypatch, placed(rolling_batch_size=1), "lb1", {ReleaseInfo: None})
            if step.runs()] == []
    assert [step.name for step in record(monkeypatch, placed_fleet(), "db1") if step.runs()] == []


def test_behind_load_balancers_a_host_with_no_live_release_is_not_drained(monkeypatch):
    from tests.unit.site.test_haproxy_config import placed

    steps = record(monkeypatch, placed(rolling_batch_size=1), "web1", {ReleaseInfo: None})
    assert steps.calls() == [("systemd.service", "Reload nginx (batch 1 of 2)"),
                             ("systemd.service", "Reload nginx (batch 2 of 2)")]
