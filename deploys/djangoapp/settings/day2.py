"""What the day-2 deploy files take on their command line: manage.py's command, logs.py's filters."""

from __future__ import annotations

import re
import shlex
from typing import Any, Literal, Optional

from pydantic import BaseModel, field_validator

from .checks import one_line, positive_int

JOURNAL_TIME = re.compile(r"^[A-Za-z0-9 :+.-]{1,40}$")
MANAGEMENT_COMMAND = re.compile(r"^[a-z][a-z0-9_]*$")


class Day2Inputs(BaseModel):
    manage: Optional[str] = None
    manage_on: Literal["migration_host", "all"] = "migration_host"
    since: str = "1 hour ago"
    lines: int = 100
    grep: Optional[str] = None
    unit: Optional[Literal["app", "celery", "beat", "webserver", "jobs"]] = None

    @field_validator("manage")
    @classmethod
    def _management_command(cls, value: Optional[str]) -> Optional[str]:
        if value is None:
            return value
        try:
            words = shlex.split(value)
        except ValueError as error:
            raise ValueError(f"cannot be split into words ({error}): {value!r}")
        if not words or not MANAGEMENT_COMMAND.match(words[0]):
            raise ValueError(f"must start with the name of a management command, e.g. createsuperuser (got {value!r})")
        if any(ord(character) < 32 for character in value):
            raise ValueError("must be one line without control characters")
        return value

    @field_validator("since")
    @classmethod
    def _journal_time(cls, value: str) -> str:
        if not JOURNAL_TIME.match(value):
            raise ValueError(f'must be a time journalctl reads, e.g. "1 hour ago", "today" or "2026-11-25 14:00" '
                             f"(got {value!r})")
        return value

    @field_validator("lines", mode="before")
    @classmethod
    def _day2_positive_int(cls, value: Any) -> Any:
        return positive_int(value)

    @field_validator("grep")
    @classmethod
    def _day2_one_line(cls, value: Optional[str]) -> Optional[str]:
        return one_line(value)
