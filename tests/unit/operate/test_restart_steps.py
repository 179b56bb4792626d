"""What restart.py asks of each host (operate/restart.py), recorded without a host: the reloads go
batch after batch as a release switches, each batch drained on the load balancers first."""

from deploys.djangoapp.operate import restart
from deploys.djangoapp.site import load_balancer
from tests.unit.sites import placed_fleet, settings
from tests.unit.steps import Steps


def record(monkeypatch, sites: dict, name: str) -> Steps:
    steps = Steps(monkeypatch).replace(restart, "systemd", "server").replace(load_balancer, "python")
    monkeypatch.setattr(load_balancer, "host", steps.host(restart, name))
    restart.restart_in_batches(sites[name])
    return steps


def test_behind_load_balancers_each_batch_reloads_drained_and_is_put_back_after(monkeypatch):
    from tests.unit.site.test_haproxy_config import placed

    steps = record(monkeypatch, placed(rolling_batch_size=1), "web2")
    assert [(step.operation, step.name, step.runs()) for step in steps] == [
        ("python.call", "Drain web1 on the load balancers (batch 1 of 2)", False),
        ("systemd.service", "Reload nginx (batch 1 of 2)", False),
        ("server.shell", "Reload uwsgi-mysite gracefully (batch 1 of 2)", False),
        ("python.call", "web1 back on the load balancers (batch 1 of 2)", False),
        ("python.call", "Drain web2 on the load balancers (batch 2 of 2)", True),
        ("systemd.service", "Reload nginx (batch 2 of 2)", True),
        ("server.shell", "Reload uwsgi-mysite gracefully (batch 2 of 2)", True),
        ("python.call", "web2 back on the load balancers (batch 2 of 2)", True)]
    sites = placed(rolling_batch_size=1)
    assert steps[4].kwargs["command"] == load_balancer.drain_command(sites["web2"], ["web2"], ["web1"])
    assert steps[7].kwargs["command"] == load_balancer.ready_command(sites["web2"], ["web2"])


def test_a_host_alone_reloads_in_one_batch_and_restarts_celery(monkeypatch):
    steps = record(monkeypatch, {"localhost": settings(celery=True, celery_beat=True)}, "localhost")
    assert [(step.name, step.runs()) for step in steps] == [
        ("Reload nginx", True), ("Reload uwsgi-mysite gracefully", True),
        ("Restart celery-mysite", True), ("Restart celery-beat-mysite", True)]
    assert steps[2].kwargs["commands"] == ["systemctl restart celery-mysite"]


def test_a_host_that_runs_no_web_or_worker_role_restarts_nothing(monkeypatch):
    from tests.unit.site.test_haproxy_config import placed

    assert [step.name for step in record(monkeypatch, placed(rolling_batch_size=1), "lb1") if step.runs()] == []
    assert [step.name for step in record(monkeypatch, placed_fleet(), "db1") if step.runs()] == []
