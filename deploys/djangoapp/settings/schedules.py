"""Management commands run on a schedule (the deploy steps are in services/schedules.py)."""

from __future__ import annotations

import re

from pydantic import BaseModel, field_validator

from .checks import CALENDAR, command_problem

JOB_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")


class ScheduleInputs(BaseModel):
    django_scheduled_commands: dict[str, dict[str, str]] = {}

    @field_validator("django_scheduled_commands")
    @classmethod
    def _schedules_jobs(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        found = []
        for name, job in value.items():
            if not JOB_NAME.fullmatch(name):
                found.append(f"{name!r} is not a job name (lowercase letters, digits and '-', at most 31)")
                continue
            if set(job) != {"command", "schedule"}:
                found.append(f"{name}: give exactly \"command\" and \"schedule\" (got {sorted(job)})")
                continue
            problem = command_problem(job["command"])
            if problem:
                found.append(f"{name}: command {problem} (got {job['command']!r})")
            if not CALENDAR.fullmatch(job["schedule"]):
                found.append(f"{name}: schedule must be a systemd calendar event such as \"daily\" or "
                             f"\"*-*-* 03:30:00\" (got {job['schedule']!r})")
        if found:
            raise ValueError("; ".join(found))
        return value
