"""Day-2 operations on a live host: a management command run by deploys/manage.py, the logs
shown by deploys/logs.py, and a scheduled command."""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.conftest import https_get, run_pyinfra
from tests.e2e.conftest import manage

pytestmark = pytest.mark.e2e


def notes_saying(host, text: str) -> str:
    return manage(host, "shell", "-v0", "-c",
                  f"'from guestbook.models import Note; print(Note.objects.filter(text=\"{text}\").count())'")


def test_manage_runs_a_command_of_the_live_release(live_host):
    host, fleet_file = live_host
    add = {"manage": "add_note 'written by manage.py'"}

    # --dry: where it would run, nothing run.
    dry = run_pyinfra(fleet_file, "deploys/manage.py", data=add, extra=("--dry",))
    assert dry.returncode == 0, dry.output
    assert notes_saying(host, "written by manage.py") == "0"

    # The words as given (one argument with a space), its output shown.
    added = run_pyinfra(fleet_file, "deploys/manage.py", data=add)
    assert added.returncode == 0, added.output
    assert notes_saying(host, "written by manage.py") == "1"
    pk = manage(host, "shell", "-v0", "-c",
                "'from guestbook.models import Note; print(Note.objects.get(text=\"written by manage.py\").pk)'")
    assert re.search(rf"\[web1\]\s+{pk}$", added.output, re.MULTILINE), added.output  # what it printed

    # Its exit status is the run's, its error shown.
    failed = run_pyinfra(fleet_file, "deploys/manage.py", data={"manage": "migrate nosuchapp"})
    assert failed.returncode != 0 and "No installed app with label 'nosuchapp'" in failed.output, failed.output

    # It runs with the app's secrets, which never show in the output.
    secret = host.exec("/srv/www/guestbook/bin/with-secrets printenv DJANGO_SECRET_KEY").stdout.strip()
    assert len(secret) > 20
    shown = run_pyinfra(fleet_file, "deploys/manage.py", data={
        "manage": "shell -v0 -c 'import os; print(\"key:\", os.environ[\"DJANGO_SECRET_KEY\"])'"})
    assert shown.returncode == 0, shown.output
    assert "key: ***" in shown.output and secret not in shown.output

    # Without a command: refused, nothing run.
    refused = run_pyinfra(fleet_file, "deploys/manage.py")
    assert refused.returncode != 0 and "manage: give the command to run" in refused.output


def test_logs_show_the_projects_logs_merged_and_masked(live_host):
    host, fleet_file = live_host
    secret = host.exec("/srv/www/guestbook/bin/with-secrets printenv DJANGO_SECRET_KEY").stdout.strip()
    # The app server logs the request line, secret and all; nginx logs the missing file in the site's error log.
    assert https_get(host, f"/?probe=logs-probe-{secret}").status_code == 200
    assert https_get(host, "/static/missing-probe.css").status_code == 404

    shown = run_pyinfra(fleet_file, "deploys/logs.py", data={"grep": "probe"})
    assert shown.returncode == 0 and shown.results == {}, shown.output
    requests_seen = [line for line in shown.output.splitlines() if "GET /?probe=logs-probe-***" in line]
    assert requests_seen and requests_seen[0].strip().startswith("web1: "), shown.output
    assert secret not in shown.output
    assert re.search(r"web1: error\.log: .*missing-probe\.css", shown.output), shown.output

    only_app = run_pyinfra(fleet_file, "deploys/logs.py", data={"grep": "probe", "unit": "app"})
    assert "logs-probe" in only_app.output and "missing-probe" not in only_app.output


def test_a_scheduled_command_runs_on_its_schedule_and_goes_when_removed(live_host):
    host, fleet_file = live_host
    jobs = json.dumps({"notes": {"command": "add_note 'from the schedule'", "schedule": "*:*:0/3"}})
    added = run_pyinfra(fleet_file, "deploys/skeleton.py", data={"django_scheduled_commands": jobs})
    assert added.returncode == 0, added.output
    deadline = time.monotonic() + 40
    while int(notes_saying(host, "from the schedule")) < 2:
        assert time.monotonic() < deadline, host.exec("journalctl -u guestbook-job-notes -n 20 --no-pager").stdout
        time.sleep(1)

    again = run_pyinfra(fleet_file, "deploys/skeleton.py", data={"django_scheduled_commands": jobs})
    assert again.returncode == 0 and again.changed() == [], again.output
    status = run_pyinfra(fleet_file, "deploys/status.py")
    assert re.search(r"scheduled notes: last run \w{3} \d{4}-\d\d-\d\d [\d:]+ UTC \(result: success, exit status 0\), "
                     r"next (\w{3} |when the run in progress ends)", status.output), status.output

    removed = run_pyinfra(fleet_file, "deploys/skeleton.py")
    assert removed.returncode == 0, removed.output
    assert host.exec("ls /etc/systemd/system /srv/www/guestbook/bin | grep -c job", check=False).stdout.strip() == "0"
    assert "guestbook-job" not in host.exec("systemctl list-timers --all --no-pager").stdout
