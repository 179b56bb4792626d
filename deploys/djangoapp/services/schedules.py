"""Scheduled management commands (`django_scheduled_commands`): each a systemd timer and a oneshot
service on the migration host, one host of the fleet, running `bin/manage` against whatever
release is live when it fires. systemd never starts a service that is still running, so a job
does not overlap itself; jobs hold the project's migration lock shared, and a release's (or
rollback's) migrations hold it exclusively: a job that fires while the database migrates waits
for the migrations to end, and migrations wait for running jobs to finish. An entry removed, or a
host no longer the migration host, loses its units.
"""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import FactBase
from pyinfra.operations import files

from ..core.context import rendered, template, write_files
from ..core.host_files import HostFile
from ..core.shell import q
from ..core.units import remove_units, timer_on
from ..settings import Settings

UNITS = "/etc/systemd/system"


def job_unit(settings: Settings, name: str) -> str:
    return f"{settings.websiteproject}-job-{name}"


def job_script_path(settings: Settings, name: str) -> str:
    return f"{settings.project_root}/bin/job-{name}"


def job_script(settings: Settings, name: str) -> str:
    """The shell script a job's service runs: the command's words quoted, no shell reading them."""
    command = settings.django_scheduled_commands[name]["command"]
    words = " ".join(q(word) for word in shlex.split(command))
    return (f"#!/bin/sh\n# {settings.websiteproject}: scheduled command {name} (django_scheduled_commands).\n"
            f"if [ ! -e {q(settings.current_link)} ]; then echo 'no release is live yet: nothing to run'; exit 0; fi\n"
            "# Waits while a release migrates the database (it holds the migration lock exclusively).\n"
            f"exec flock --shared -o {q(settings.migration_lock)} {q(settings.manage_command)} {words}\n")


class JobUnits(FactBase):
    """The scheduled jobs of a project installed on the host (names of their timers)."""

    default = list

    def command(self, prefix: str) -> str:
        return f"ls {UNITS} 2>/dev/null | sed -n 's/^{prefix}-job-\\(.*\\)\\.timer$/\\1/p'"

    def process(self, output):
        return [line.strip() for line in output if line.strip()]


def scheduled_jobs(settings: Settings) -> None:
    """Skeleton: the jobs' scripts and units on the migration host; elsewhere, and for entries
    removed, none."""
    wanted = settings.django_scheduled_commands if settings.runs_migrations else {}
    for name, job in wanted.items():
        unit = job_unit(settings, name)
        service = write_files(f"the script and service of scheduled job {name}", [
            HostFile(job_script_path(settings, name), job_script(settings, name).encode(), "755"),
            rendered("schedules/job.service.j2", f"{UNITS}/{unit}.service", settings, mode="644", job_name=name,
                     job=job, script=job_script_path(settings, name))])
        # Its own step: a changed timer means restarting the timer.
        timer = template("schedules/job.timer.j2", f"{UNITS}/{unit}.timer", settings, mode="644", job_name=name,
                         job=job)
        timer_on(f"{unit}.timer", service, timer)
    gone = [name for name in host.get_fact(JobUnits, prefix=settings.websiteproject) if name not in wanted]
    remove_units([job_unit(settings, name) for name in gone])
    for name in gone:
        files.file(name=f"Remove the script of scheduled job {name}", path=job_script_path(settings, name),
                   present=False)
