"""The switch of one host and of the fleet (release/switch.py): its checks, going back, waking
uWSGI's master, run with dash against stand-ins of curl, journalctl and systemctl."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from deploys.djangoapp.release import switch
from deploys.djangoapp.settings.placement import Fleet
from deploys.djangoapp.release.switch import (
    LOG_LINES,
    SwitchPlan,
    back_command,
    reload_command,
    restart_services,
    switch_command,
    switch_plan,
    wake_master,
    web_check,
    worker_check,
)
from deploys.djangoapp.site import load_balancer
from deploys.djangoapp.site.load_balancer import drain_command, ready_command
from tests.unit.sites import placed_fleet, settings
from tests.unit.steps import Steps


def plan(**overrides) -> SwitchPlan:
    values = dict(link="/srv/www/mysite/current", release_dir="/srv/www/mysite/releases/2", release_id="2",
                  app_service="uwsgi-mysite",
                  health_url="https://mysite.example.com/", resolve="mysite.example.com:443:127.0.0.1",
                  strict_health=False, celery_services=("celery-mysite", "celery-beat-mysite"), timeout=7)
    return SwitchPlan(**{**values, **overrides})


def run_check(script: str, fake_bin: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30,
                          env={"PATH": f"{fake_bin}:/usr/bin:/bin", **env})


@pytest.fixture
def fake_bin(tmp_path):
    """curl, journalctl and systemctl stand-ins answering from environment variables."""
    (tmp_path / "curl").write_text('#!/bin/sh\nprintf "%s" "$ANSWER"\n')
    (tmp_path / "journalctl").write_text('#!/bin/sh\nprintf "%s\\n" "$JOURNAL"\n')
    (tmp_path / "systemctl").write_text('#!/bin/sh\n[ "$ACTIVE" = yes ]\n')
    (tmp_path / "sleep").write_text("#!/bin/sh\n")  # the deadline passes at once (timeout=0)
    for tool in ("curl", "journalctl", "systemctl", "sleep"):
        (tmp_path / tool).chmod(0o755)
    return tmp_path


@pytest.mark.parametrize(("strict", "answer", "healthy"), [
    (False, "200 2", True), (False, "404 2", True), (False, "302 2", True),
    (False, "500 2", False), (False, "400 2", False), (False, "200 1", False), (False, "000 ", False),
    (True, "200 2", True), (True, "404 2", False),
])
def test_web_check_accepts_what_a_stock_project_answers(fake_bin, strict, answer, healthy):
    result = run_check(web_check(plan(strict_health=strict, timeout=0)), fake_bin,
                       {"ANSWER": answer, "JOURNAL": "Traceback: the app's last words"})
    assert (result.returncode == 0) is healthy, result.stderr
    if healthy:
        return
    wanted = "200 from release 2" if strict else "an answer below 500 from release 2"
    said = result.stderr.splitlines()
    assert said[0] == (f"health check failed: https://mysite.example.com/ did not give {wanted} within 0 s "
                       f"(last answer: {answer})")
    hint = {"400": ["Django answers 400 Bad Request: its ALLOWED_HOSTS does not hold the site name (the app gets "
                    "it as DJANGO_ALLOWED_HOSTS)"],
            "500": ["the app fails: its log follows", "Traceback: the app's last words"],
            "000": ["nothing answers: is the webserver running?"]}.get(answer[:3], [])
    assert said[1:] == hint, said


@pytest.mark.parametrize(("journal", "active", "ready"), [
    ("[INFO] celery@web1 ready.", "yes", True),
    ("ModuleNotFoundError: No module named 'gone'", "yes", False),
    ("[INFO] celery@web1 ready.", "no", False),
])
def test_worker_check_needs_a_ready_worker_that_still_runs(fake_bin, journal, active, ready):
    result = run_check("started=0; " + worker_check(plan(timeout=0), "$started"), fake_bin,
                       {"JOURNAL": journal, "ACTIVE": active})
    assert (result.returncode == 0) is ready, result.stderr
    if not ready and active == "yes":
        assert "No module named 'gone'" in result.stderr


def test_the_switch_goes_back_and_restarts_the_old_release_when_a_check_fails():
    command = switch_command(plan())
    previous = command.index('previous="$(readlink /srv/www/mysite/current)"')
    switch_to_new = command.index("ln -sfn /srv/www/mysite/releases/2")
    back = command.index('ln -sfn "$previous"')
    assert previous < switch_to_new < command.index("curl") < command.index("journalctl") < back
    assert "systemctl restart celery-mysite celery-beat-mysite" in command[back:]
    assert "systemctl reload-or-restart uwsgi-mysite" in command[back:]
    assert "systemctl stop uwsgi-mysite celery-mysite celery-beat-mysite" in command[back:]  # no previous


def test_a_graceful_uwsgi_reload_wakes_its_master_and_nothing_else_does():
    woken = switch_command(plan(master_fifo="/srv/www/mysite/uwsgi/master.fifo", as_app_user=APP_USER))
    reload = f"systemctl reload-or-restart uwsgi-mysite && {{ {APP_USER} sh -c 'i=0; while"
    # After each reload of uWSGI (to the new release, and back to the old one), never before it.
    assert woken.count(reload) == 2 and woken.count("master.fifo") == 2
    assert woken.index("ln -sfn /srv/www/mysite/releases/2") < woken.index(reload) < woken.index("curl")
    assert "master.fifo" not in switch_command(plan())  # gunicorn: no master to wake


def test_the_master_is_woken_only_until_the_checks_are_over(tmp_path, fake_bin):
    (fake_bin / "sleep").unlink()  # the real one: the wake loop paces itself
    (fake_bin / "dd").write_text(f"#!/bin/sh\necho woken >> {tmp_path / 'writes'}\n")
    (fake_bin / "dd").chmod(0o755)
    (tmp_path / "releases" / "2").mkdir(parents=True)
    command = switch_command(plan(link=str(tmp_path / "current"), release_dir=str(tmp_path / "releases" / "2"),
                                  celery_services=(), master_fifo=str(tmp_path / "master.fifo")))
    switched = run_check(command, fake_bin, {"ANSWER": "200 2", "ACTIVE": "yes"})
    assert switched.returncode == 0, switched.stderr
    writes = tmp_path / "writes"

    def count() -> int:
        return writes.read_text().count("woken") if writes.exists() else 0

    subprocess.run(["sleep", "0.3"])
    seen = count()
    subprocess.run(["sleep", "0.5"])
    assert count() == seen < 60  # stopped when the check passed, long before its 60 writes


def test_waking_the_master_writes_no_command_and_never_waits(tmp_path):
    fifo = tmp_path / "it's a master.fifo"
    os.mkfifo(fifo)
    # No reader (the master is starting anew): the writes fail at once, nothing hangs.
    alone = subprocess.run(["sh", "-c", wake_master(str(fifo), "", times=3, pause=0.01) + " wait"],
                           capture_output=True, text=True, timeout=10)
    assert alone.returncode == 0
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        started = subprocess.run(["sh", "-c", wake_master(str(fifo), "", times=3, pause=0.01)],
                                 capture_output=True, text=True, timeout=10)
        assert started.returncode == 0 and started.stdout == ""  # back at once, in the background
        for _ in range(100):
            subprocess.run(["sleep", "0.02"])
            written = b""
            try:
                written = os.read(reader, 16)
            except BlockingIOError:
                pass
            if written:
                break
        assert written and set(written) == {ord("\n")}  # a newline is no uWSGI master command
    finally:
        os.close(reader)


APP_USER = "setpriv --reuid=nobody --regid=nogroup --init-groups --reset-env --"


def test_the_master_fifo_is_written_with_the_app_users_rights_and_no_planted_link_is_followed():
    """The app owns the FIFO's folder: whatever it puts there instead of the FIFO (a link to a
    file only root may write, a root file linked in) is neither followed nor written, and nothing
    is made where the FIFO is missing."""
    folder = Path(tempfile.mkdtemp(prefix="fifo-folder-", dir="/tmp"))
    try:
        folder.chmod(0o755)
        outside = folder / "root-only"
        outside.write_text("root's own\n")
        outside.chmod(0o600)
        control = folder / "uwsgi"
        control.mkdir()
        os.chown(control, 65534, 65534)
        (control / "master.fifo").symlink_to(outside)
        # A root file in the app's folder, as a hard link would put it there: the app may not write it.
        (control / "linked.fifo").write_text("root's too\n")
        for fifo in ("master.fifo", "linked.fifo", "gone.fifo"):
            subprocess.run(["sh", "-c", wake_master(str(control / fifo), APP_USER, times=3, pause=0.01) + " wait"],
                           check=True, timeout=10)
        assert outside.read_text() == "root's own\n"
        assert (control / "linked.fifo").read_text() == "root's too\n"
        assert not (control / "gone.fifo").exists()
    finally:
        shutil.rmtree(folder)


@pytest.mark.parametrize("live", ["/srv/www/mysite/releases/1", None])
def test_the_switch_run_with_a_failing_check_ends_where_it_started(tmp_path, fake_bin, live):
    """The switch itself, run against a folder: with the web check failing, `current` points where
    it pointed before (or is gone, on a first release), and the run fails."""
    link = tmp_path / "current"
    if live:
        link.symlink_to(live)
    (fake_bin / "date").write_text("#!/bin/sh\necho 0\n")
    (fake_bin / "date").chmod(0o755)
    (fake_bin / "systemctl").write_text(f'#!/bin/sh\necho "$*" >> {tmp_path}/systemctl.log\n')
    release = tmp_path / "releases" / "2"
    release.mkdir(parents=True)
    command = switch_command(plan(link=str(link), release_dir=str(release), timeout=0, celery_services=()))
    result = run_check(command, fake_bin, {"ANSWER": "500 2", "ACTIVE": "yes"})
    assert result.returncode == 1
    assert (release / ".switched-from").read_text() == f"{live or ''}\n"  # it did switch, then went back
    assert (os.readlink(link) if live else os.path.lexists(link)) == (live or False)
    calls = (tmp_path / "systemctl.log").read_text().splitlines()
    # Back on the release before, or, with none, the app server stopped.
    assert calls[-1] == ("reload-or-restart uwsgi-mysite" if live else "stop uwsgi-mysite"), calls


def test_a_rollbacks_switch_with_a_failing_check_leaves_going_back_to_the_cleanup(tmp_path, fake_bin):
    """A rollback's host stays on the target when its check fails (the run's cleanup migrates the
    database forward first, then brings it back: undo_command)."""
    from deploys.djangoapp.release.switch import undo_command

    link = tmp_path / "current"
    link.symlink_to("/srv/www/mysite/releases/3")
    (fake_bin / "date").write_text("#!/bin/sh\necho 0\n")
    (fake_bin / "date").chmod(0o755)
    (tmp_path / "releases" / "2").mkdir(parents=True)
    rollback = plan(link=str(link), release_dir=str(tmp_path / "releases" / "2"), timeout=0, celery_services=(),
                    switch_back_at_once=False)
    result = run_check(switch_command(rollback), fake_bin, {"ANSWER": "500 2", "ACTIVE": "yes"})
    assert result.returncode == 1
    assert os.readlink(link) == str(tmp_path / "releases" / "2")
    assert "the run's failure cleanup brings every host back to /srv/www/mysite/releases/3" in result.stderr
    assert run_check(undo_command(rollback), fake_bin, {"ACTIVE": "yes"}).returncode == 0
    assert os.readlink(link) == "/srv/www/mysite/releases/3"


@pytest.mark.parametrize("celery_services", [(), ("celery-mysite",), ("celery-mysite", "celery-beat-mysite")])
@pytest.mark.parametrize("app_service", [None, "uwsgi-mysite"])
@pytest.mark.parametrize("switch_back_at_once", [True, False])
def test_every_shape_of_switch_parses_under_dash(celery_services, app_service, switch_back_at_once):
    command = switch_command(plan(celery_services=celery_services, app_service=app_service,
                                  switch_back_at_once=switch_back_at_once))
    parsed = subprocess.run(["sh", "-n", "-c", command], capture_output=True, text=True)
    assert parsed.returncode == 0, parsed.stderr


def test_a_host_that_switched_goes_back_when_the_run_fails_elsewhere(tmp_path, fake_bin):
    from deploys.djangoapp.release.switch import undo_command

    releases = tmp_path / "releases"
    (releases / "1").mkdir(parents=True)
    (releases / "2").mkdir()
    link = tmp_path / "current"
    link.symlink_to(releases / "1")
    switched = plan(link=str(link), release_dir=str(releases / "2"), celery_services=(), timeout=0)
    assert run_check(switch_command(switched), fake_bin, {"ANSWER": "200 2", "ACTIVE": "yes"}).returncode == 0
    assert os.readlink(link) == str(releases / "2")
    # Another host failed: this one, healthy on release 2, goes back to 1 as well.
    assert run_check(undo_command(switched), fake_bin, {"ACTIVE": "yes"}).returncode == 0
    assert os.readlink(link) == str(releases / "1")
    # A host that did not switch (or went back already) is left as it is.
    assert run_check(undo_command(switched), fake_bin, {"ACTIVE": "yes"}).returncode == 0
    assert os.readlink(link) == str(releases / "1")


@pytest.fixture
def logging_bin(tmp_path):
    """curl, journalctl and systemctl stand-ins that note each call (its arguments, one line) in
    $CALLS; curl answers $ANSWER, journalctl prints $JOURNAL, systemctl succeeds."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool, then in (("curl", 'printf "%s" "$ANSWER"'), ("journalctl", 'printf "%s\\n" "$JOURNAL"'),
                       ("systemctl", "true"), ("sleep", "true")):
        (folder / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> "$CALLS"\n{then}\n')
        (folder / tool).chmod(0o755)
    return folder


def calls_of(script: str, folder: Path, **env) -> tuple[subprocess.CompletedProcess, list[str]]:
    calls = folder.parent / "calls"
    calls.write_text("")
    done = run_check(script, folder, {"CALLS": str(calls), "JOURNAL": "", "ANSWER": "", **env})
    return done, [line for line in calls.read_text().splitlines() if not line.startswith("sleep")]


def test_each_check_asks_about_its_own_service_and_address(logging_bin):
    done, calls = calls_of(web_check(plan(timeout=0)), logging_bin, ANSWER="503 2")
    assert done.returncode == 1
    assert calls[0] == ("curl -sk -o /dev/null --max-time 5 --resolve mysite.example.com:443:127.0.0.1 "
                        "-w %{http_code} %header{x-release-id} https://mysite.example.com/")
    assert calls[-1] == f"journalctl -u uwsgi-mysite -n {LOG_LINES} --no-pager -o cat"
    done, calls = calls_of(f"{worker_check(plan(), '1700000000')}", logging_bin,
                           JOURNAL="celery@web1 ready.")
    assert done.returncode == 0, done.stderr
    assert calls == ['journalctl -u celery-mysite --since @1700000000 --no-pager -o cat',
                     "systemctl is-active -q celery-mysite", "systemctl is-active -q celery-beat-mysite"]


def test_a_worker_host_s_switch_waits_for_the_worker_started_by_this_switch(logging_bin, tmp_path):
    release = tmp_path / "releases" / "2"
    release.mkdir(parents=True)
    worker = plan(link=str(tmp_path / "current"), release_dir=str(release), app_service=None)
    done, calls = calls_of(switch_command(worker), logging_bin, JOURNAL="celery@worker1 ready.")
    assert done.returncode == 0, done.stderr
    assert calls[0] == "systemctl restart celery-mysite celery-beat-mysite"
    since = calls[1].split("--since ")[1].split(" ")[0]
    assert since.startswith("@") and since[1:].isdigit(), calls[1]


def test_with_nothing_to_restart_or_check_a_switch_only_moves_the_link(logging_bin, tmp_path):
    release = tmp_path / "releases" / "2"
    release.mkdir(parents=True)
    bare = plan(link=str(tmp_path / "current"), release_dir=str(release), app_service=None, celery_services=())
    assert restart_services(bare) == "true"
    done, calls = calls_of(switch_command(bare), logging_bin)
    assert done.returncode == 0 and calls == [] and os.readlink(tmp_path / "current") == str(release)
    # Going back with no release before: nothing to stop, the link goes.
    done, calls = calls_of(f"previous=; {back_command(bare)}", logging_bin)
    assert done.returncode == 0 and calls == [] and not os.path.lexists(tmp_path / "current")
    (tmp_path / "current").symlink_to(release)
    workers = plan(link=str(tmp_path / "current"), release_dir=str(release), app_service=None)
    done, calls = calls_of(f"previous=; {back_command(workers)}", logging_bin)
    assert calls == ["systemctl stop celery-mysite celery-beat-mysite"]


def test_a_reload_restarts_on_the_live_release_checks_it_and_moves_nothing(logging_bin, tmp_path):
    release = tmp_path / "releases" / "2"
    release.mkdir(parents=True)
    (tmp_path / "current").symlink_to(release)
    live = plan(link=str(tmp_path / "current"), release_dir=str(release), timeout=0)
    done, calls = calls_of(reload_command(live), logging_bin, ANSWER="200 2", JOURNAL="celery@web1 ready.")
    assert done.returncode == 0, done.stderr
    assert calls[:3] == ["systemctl reload-or-restart uwsgi-mysite",
                         "systemctl restart celery-mysite celery-beat-mysite",
                         "curl -sk -o /dev/null --max-time 5 --resolve mysite.example.com:443:127.0.0.1 "
                         "-w %{http_code} %header{x-release-id} https://mysite.example.com/"]
    assert calls[3].startswith("journalctl -u celery-mysite --since @")
    # A failing check fails the run, saying why; the link stays, nothing goes back.
    done, calls = calls_of(reload_command(live), logging_bin, ANSWER="502 2")
    assert done.returncode == 1 and "health check failed" in done.stderr
    assert os.readlink(tmp_path / "current") == str(release) and not any("ln " in call for call in calls)
    assert calls_of(reload_command(plan(app_service=None, celery_services=())), logging_bin)[0].returncode == 0


def test_each_host_switches_as_its_settings_say():
    site = settings(health_check_path="/health/", health_check_timeout=30)
    assert switch_plan(site, "v2") == SwitchPlan(
        link="/srv/www/mysite/current", release_dir="/srv/www/mysite/releases/v2", release_id="v2",
        app_service=site.app_service, app_restart=site.app_restart, master_fifo=site.uwsgi_master_fifo,
        as_app_user=site.as_app_user, health_url="https://mysite.example.com/health/",
        resolve="mysite.example.com:443:127.0.0.1", strict_health=True, celery_services=(), timeout=30,
        switch_back_at_once=True)
    assert site.app_service == "uwsgi-mysite" and site.uwsgi_master_fifo
    stock = switch_plan(settings(), "v3", switch_back_at_once=False)
    assert (stock.health_url, stock.strict_health, stock.switch_back_at_once) == ("https://mysite.example.com/", False,
                                                                               False)
    assert switch_plan(settings(app_server="gunicorn"), "v2").master_fifo is None
    # A worker-only host has no app server to check; its Celery services are.
    worker = settings(celery=True, redis_url="redis://10.0.0.3:6379/0")
    worker._fleet, worker._host = Fleet({"web1": frozenset({"web"}), "worker1": frozenset({"worker"})},
                                        {"web1": "10.0.0.1", "worker1": "10.0.0.2"}, "web1"), "worker1"
    assert switch_plan(worker, "v2").app_service is None
    assert switch_plan(worker, "v2").celery_services == tuple(worker.celery_services) != ()


def test_the_fleet_switches_batch_after_batch_each_host_in_its_own(monkeypatch):
    sites = placed_fleet(rolling_batch_size=1)
    steps = Steps(monkeypatch).replace(switch, "switch_release")
    monkeypatch.setattr(load_balancer, "host", steps.host(switch, "web2"))
    switch.switch_in_batches(sites["web2"], "v2", switch_back_at_once=False)
    assert [step.name for step in steps] == ["Switch to release v2 and check it (batch 1 of 2)",
                                             "Switch to release v2 and check it (batch 2 of 2)"]
    assert [step.runs() for step in steps] == [False, True]  # web2 is in the second batch
    assert steps[0].kwargs["plan"] == switch_plan(sites["web2"], "v2", switch_back_at_once=False)
    steps.clear()
    switch.switch_in_batches(placed_fleet()["web2"], "v3")
    assert [(step.name, step.runs()) for step in steps] == [("Switch to release v3 and check it", True)]
    assert steps[0].kwargs["plan"].switch_back_at_once


def test_behind_load_balancers_each_batch_is_drained_there_first_and_put_back_after(monkeypatch):
    from tests.unit.site.test_haproxy_config import placed

    sites = placed(rolling_batch_size=1)
    steps = Steps(monkeypatch).replace(switch, "switch_release").replace(load_balancer, "python")
    monkeypatch.setattr(load_balancer, "host", steps.host(switch, "web2"))
    switch.switch_in_batches(sites["web2"], "v2")
    assert [(step.operation, step.name, step.runs()) for step in steps] == [
        ("python.call", "Drain web1 on the load balancers (batch 1 of 2)", False),
        ("switch_release", "Switch to release v2 and check it (batch 1 of 2)", False),
        ("python.call", "web1 back on the load balancers (batch 1 of 2)", False),
        ("python.call", "Drain web2 on the load balancers (batch 2 of 2)", True),  # web2 asks for its batch
        ("switch_release", "Switch to release v2 and check it (batch 2 of 2)", True),
        ("python.call", "web2 back on the load balancers (batch 2 of 2)", True)]
    drain, back = steps[3], steps[5]
    assert drain.kwargs["function"] is back.kwargs["function"] is load_balancer.on_load_balancers
    assert drain.kwargs["command"] == drain_command(sites["web2"], ["web2"], ["web1"])
    assert back.kwargs["command"] == ready_command(sites["web2"], ["web2"])
    # All at once, no web host would serve while its batch drained: none is drained.
    steps.clear()
    switch.switch_in_batches(placed()["web2"], "v3")
    assert steps.calls() == [("switch_release", "Switch to release v3 and check it")]
