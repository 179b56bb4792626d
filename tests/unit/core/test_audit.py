"""The audit log's commands, run under dash in a project folder."""

import json
import stat
import subprocess

from deploys.djangoapp.core.audit import audit_command, failure_command, last_entries_command
from tests.unit.sites import settings


def sh(command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=20)


def test_each_run_appends_one_entry_the_host_stamps_and_root_alone_reads(tmp_path):
    site = settings(django_deployment_root_folder=str(tmp_path))
    (tmp_path / "mysite").mkdir()
    hostile = "add_note '$(touch pwned)' \"`id`\" \\ 100%s"
    assert sh(audit_command(site, "manage", hostile, "ok")).returncode == 0
    assert sh(failure_command(site, "release", "r2")).returncode == 0
    log = tmp_path / "mysite" / "audit.jsonl"
    first, second = (json.loads(line) for line in log.read_text().splitlines())
    assert first["detail"] == hostile and not (tmp_path / "pwned").exists()
    assert (first["deploy"], first["outcome"], second["deploy"], second["outcome"]) == ("manage", "ok", "release",
                                                                                         "failed")
    assert "@" in first["operator"] and first["time"].endswith("Z") and len(first["time"]) == 20
    assert stat.S_IMODE(log.stat().st_mode) == 0o600

    shown = sh(last_entries_command(site))
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0] == "audit log (last 8):"
    assert shown.stdout.splitlines()[2].split()[2:] == ["release", "r2", "failed"]


def test_a_failure_leaves_no_log_where_the_project_is_not(tmp_path):
    site = settings(django_deployment_root_folder=str(tmp_path))
    assert sh(failure_command(site, "release", "r1")).returncode == 0
    assert list(tmp_path.iterdir()) == []
    assert sh(last_entries_command(site)).stdout == ""
