"""Scheduled commands: their settings, units and script, the script run under dash with a stand-in
bin/manage, and the migration lock between jobs and migrations."""

import subprocess
import time
from pathlib import Path

from deploys.djangoapp.core.context import render_template
from deploys.djangoapp.operate.logs import units
from deploys.djangoapp.core.lock import under_migration_lock
from deploys.djangoapp.services.schedules import job_script
from deploys.djangoapp.settings import problems
from tests.unit.sites import VALID, placed_fleet, settings

JOB = {"command": "add_note 'two words; rm -rf /' --verbosity 0", "schedule": "*-*-* 03:30:00"}


def site_in(tmp_path):
    site = settings(django_deployment_root_folder=str(tmp_path), django_scheduled_commands={"notes": JOB})
    bin_dir = tmp_path / "mysite" / "bin"
    bin_dir.mkdir(parents=True)
    manage = bin_dir / "manage"
    manage.write_text("#!/bin/sh\nfor word in \"$@\"; do echo \"[$word]\"; done\n")
    manage.chmod(0o755)
    (tmp_path / "mysite" / "current").mkdir()
    Path(site.migration_lock).parent.mkdir(mode=0o700)  # the skeleton makes it, root's alone
    script = bin_dir / "job-notes"
    script.write_text(job_script(site, "notes"))
    script.chmod(0o755)
    return site, script


def test_the_job_runs_its_command_word_for_word(tmp_path):
    site, script = site_in(tmp_path)
    assert script.read_text().startswith("#!/bin/sh\n")
    ran = subprocess.run([str(script)], capture_output=True, text=True, timeout=20)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines() == ["[add_note]", "[two words; rm -rf /]", "[--verbosity]", "[0]"]
    (tmp_path / "mysite" / "current").rmdir()
    before = subprocess.run([str(script)], capture_output=True, text=True, timeout=20)
    assert (before.returncode, before.stdout) == (0, "no release is live yet: nothing to run\n")


def test_a_job_waits_while_migrations_hold_the_lock(tmp_path):
    site, script = site_in(tmp_path)
    started, migrated = tmp_path / "started", tmp_path / "migrated"
    # The migrations note that they hold the lock, and that they are done before they let go of it.
    # (Not wait_until_held: under_migration_lock's own probe holds the lock for an instant first.)
    migrating = subprocess.Popen(["sh", "-c", under_migration_lock(
        site.migration_lock, f"touch {started}; sleep 2; touch {migrated}")])
    try:
        deadline = time.monotonic() + 20
        while not started.exists():  # the migrations have the lock
            assert time.monotonic() < deadline, "the migrations did not take the lock"
            time.sleep(0.02)
        ran = subprocess.run([str(script)], capture_output=True, text=True, timeout=20)
        waited = migrated.exists()  # the job ended after the migrations had (it would take 0.1 s alone)
    finally:
        migrating.wait(timeout=20)
    assert ran.returncode == 0 and waited, ran.stderr


def test_the_units_run_the_script_on_the_calendar_and_hold_no_arguments(tmp_path):
    site, _ = site_in(tmp_path)
    context = {"s": site, "job_name": "notes", "job": JOB}
    service = render_template("schedules/job.service.j2", script=f"{site.project_root}/bin/job-notes", **context)
    timer = render_template("schedules/job.timer.j2", **context)
    assert "Type=oneshot" in service and f"ExecStart={site.project_root}/bin/job-notes\n" in service
    assert "two words" not in service + timer  # the arguments stay in the root-owned script
    assert "OnCalendar=*-*-* 03:30:00\n" in timer and "WantedBy=timers.target" in timer


def test_scheduled_commands_are_checked():
    def found(jobs):
        return problems({**VALID, "django_scheduled_commands": jobs})[1]

    assert found({"Bad Name": JOB})[0].startswith("django_scheduled_commands: 'Bad Name' is not a job name")
    assert "give exactly" in found({"notes": {"command": "clearsessions"}})[0]
    assert "must start with the name of a management command" in found({"notes": {**JOB, "command": "; reboot"}})[0]
    assert "schedule must be a systemd calendar event" in found({"notes": {**JOB, "schedule": "daily\nExecStart=x"}})[0]
    assert found({"sessions": {"command": "clearsessions", "schedule": "daily"}}) == []


def test_jobs_run_and_are_logged_on_the_migration_host_only():
    hosts = placed_fleet(migration_host="web2", django_scheduled_commands={"notes": JOB})
    assert {name: units(site, "jobs") for name, site in hosts.items()} == {
        "web1": [], "web2": ["mysite-job-notes.service"], "db1": []}
    assert units(hosts["web2"], None)[-1] == "mysite-job-notes.service"


STAND_IN_SYSTEMCTL = """#!/bin/sh
# Stands in for `systemctl show -P PROPERTY UNIT`: the answers of a job "notes" whose timer is due
# at 03:30, and of a job "report" running now (its timer has no next time meanwhile).
case "$3 $4" in
    "NextElapseUSecRealtime mysite-job-notes.timer") echo "Thu 2026-12-03 03:30:00 UTC";;
    "NextElapseUSecRealtime mysite-job-report.timer") echo "";;
    "LastTriggerUSec mysite-job-notes.timer") echo "";;
    "LastTriggerUSec mysite-job-report.timer") echo "Thu 2026-12-03 08:17:54 UTC";;
    "ActiveState mysite-job-report.service") echo activating;;
    "Result "*) echo success;;
    "ExecMainStatus "*) echo 0;;
    *) echo "unexpected: $*" >&2; exit 1;;
esac
"""


def test_status_tells_when_each_job_ran_and_runs_next_even_while_it_runs(tmp_path):
    from deploys.djangoapp.operate.status import scheduled_jobs_status

    units_dir, bin_dir = tmp_path / "units", tmp_path / "bin"
    units_dir.mkdir()
    bin_dir.mkdir()
    for job in ("notes", "report"):
        (units_dir / f"mysite-job-{job}.timer").write_text("")
    (bin_dir / "systemctl").write_text(STAND_IN_SYSTEMCTL)
    (bin_dir / "systemctl").chmod(0o755)
    shown = subprocess.run(["dash", "-c", scheduled_jobs_status("mysite", str(units_dir))], text=True,
                           capture_output=True, env={"PATH": f"{bin_dir}:/usr/bin:/bin"})
    assert shown.returncode == 0 and shown.stderr == "", shown.stderr
    assert shown.stdout.splitlines() == [
        "scheduled notes: last run never (result: success, exit status 0), next Thu 2026-12-03 03:30:00 UTC",
        "scheduled report: last run Thu 2026-12-03 08:17:54 UTC (result: success, exit status 0), "
        "next when the run in progress ends",
    ]
