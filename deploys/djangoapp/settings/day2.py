"""What the day-2 deploy files take on their command line: manage.py's command, logs.py's filters."""

from __future__ import annotations

import re
from typing import Literal, Optional

from pydantic import BaseModel, field_validator

from .checks import OneLine, PositiveCount, command_problem

JOURNAL_TIME = re.compile(r"^[A-Za-z0-9 :+.-]{1,40}$")


class Day2Inputs(BaseModel):
    manage: Optional[str] = None
    manage_on: Literal["migration_host", "all"] = "migration_host"
    since: str = "1 hour ago"
    lines: PositiveCount = 100
    grep: Optional[OneLine] = None
    unit: Optional[Literal["app", "celery", "beat", "webserver", "jobs"]] = None

    @field_validator("manage")
    @classmethod
    def _management_command(cls, value: Optional[str]) -> Optional[str]:
        problem = None if value is None else command_problem(value)
        if problem:
            raise ValueError(f"{problem} (got {value!r})")
        return value

    @field_validator("since")
    @classmethod
    def _journal_time(cls, value: str) -> str:
        if not JOURNAL_TIME.fullmatch(value):
            raise ValueError(f'must be a time journalctl reads, e.g. "1 hour ago", "today" or "2026-11-25 14:00" '
                             f"(got {value!r})")
        return value
