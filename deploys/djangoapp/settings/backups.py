"""Backups off the host with restic, and the restore that brings them back (the deploy steps are
in services/backups.py)."""

from __future__ import annotations

import re
from typing import Any, Optional

from pydantic import BaseModel, field_validator, model_validator

from .checks import CALENDAR, PLAIN_PATH, system_folder_problem

# Where restic keeps the repository: an S3-compatible server (s3:http(s)://host[:port]/bucket[/path]),
# an SFTP server (sftp:user@host:/path), or a folder on this host (a second disk). The value reaches
# the backup script and the units: no spaces, quotes or passwords in it.
S3_REPOSITORY = re.compile(r"^s3:https?://[A-Za-z0-9.-]+(:\d{1,5})?/[A-Za-z0-9._-]+(/[A-Za-z0-9._/-]*)?$")
SFTP_REPOSITORY = re.compile(r"^sftp:([a-z_][a-z0-9_-]{0,31}@)?[A-Za-z0-9.-]+:/?[A-Za-z0-9._/-]+$")
# systemd's OnCalendar: "daily", "hourly", "*-*-* 03:00:00", "Mon..Fri 02:30", "*:0/5", ...
KEEP_KINDS = ("daily", "weekly", "monthly")
SNAPSHOT_ID = re.compile(r"^([0-9a-f]{8,64}|latest)$")
# What backup_secrets holds: restic's password, and an S3 repository's keys.
BACKUP_SECRETS = ("RESTIC_PASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")


class BackupInputs(BaseModel):
    backup_repository: Optional[str] = None
    backup_secrets: dict[str, str] = {}
    backup_schedule: str = "daily"
    backup_keep: dict[str, int] = {"daily": 7, "weekly": 4, "monthly": 6}
    backup_prune: bool = True
    restore_from: Optional[str] = None
    confirm_restore: Optional[str] = None

    @field_validator("backup_repository")
    @classmethod
    def _backups_repository(cls, value: Optional[str]) -> Optional[str]:
        if value is None:
            return value
        if value.startswith("/"):
            if ".." in value.split("/") or not PLAIN_PATH.fullmatch(value):
                raise ValueError(f"a local repository must be an absolute path of letters, digits, '.', '_', "
                                 f"'-' and '/' (got {value!r})")
            problem = system_folder_problem(value.rstrip("/") or "/")
            if problem:
                raise ValueError(problem)
            return value.rstrip("/")
        if value.startswith("s3:"):
            if not S3_REPOSITORY.fullmatch(value):
                raise ValueError(f"must be s3:http(s)://host[:port]/bucket[/path] without credentials (they go "
                                 f"in backup_secrets) (got {value!r})")
            return value
        if value.startswith("sftp:"):
            if not SFTP_REPOSITORY.fullmatch(value):
                raise ValueError(f"must be sftp:user@host:/path (got {value!r})")
            return value
        raise ValueError(f"must be an S3 URL (s3:https://host/bucket/path), an SFTP target (sftp:user@host:/path) "
                         f"or an absolute local path (got {value!r})")

    @field_validator("backup_schedule")
    @classmethod
    def _backups_schedule(cls, value: str) -> str:
        if not CALENDAR.fullmatch(value):
            raise ValueError(f'must be a systemd OnCalendar expression, e.g. "daily" or "*-*-* 03:00:00" '
                             f"(got {value!r})")
        return value

    @field_validator("backup_keep", mode="before")
    @classmethod
    def _backups_keep(cls, value: Any) -> Any:
        if not isinstance(value, dict) or not value or set(value) - set(KEEP_KINDS):
            raise ValueError(f"must map some of {', '.join(KEEP_KINDS)} to how many backups to keep "
                             f"(got {value!r})")
        for kind, count in value.items():
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise ValueError(f"{kind}: must be a whole number, 0 or more (got {count!r})")
        if not any(value.values()):
            raise ValueError("must keep at least one backup (all counts are 0)")
        return value

    @field_validator("restore_from", mode="before")
    @classmethod
    def _backups_restore_from(cls, value: Any) -> Any:
        if value is None:
            return value
        value = str(value)
        if not SNAPSHOT_ID.fullmatch(value):
            raise ValueError(f"must be a backup's snapshot id (8 to 64 hex digits, as restic shows it) or "
                             f"'latest' (got {value!r})")
        return value

    @field_validator("backup_secrets")
    @classmethod
    def _backups_secret_names(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(BACKUP_SECRETS))
        if unknown:
            raise ValueError(f"{', '.join(unknown)}: not a credential of the backup (it takes "
                             f"{', '.join(BACKUP_SECRETS)})")
        return value

    @model_validator(mode="after")
    def _backups_secrets(self):
        if "RESTIC_PASSWORD" in self.django_environment_variables:
            raise ValueError("django_environment_variables: RESTIC_PASSWORD goes in backup_secrets (with the "
                             "repository's AWS keys), which only the backup reads: the app, and whoever runs "
                             "code in it, must not read or delete the backups")
        if not self.backup_repository:
            return self
        needed = ["RESTIC_PASSWORD"]
        if self.backup_repository.startswith("s3:"):
            needed += ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
        missing = [name for name in needed if not self.backup_secrets.get(name)]
        if missing:
            raise ValueError(f"backup_secrets: backups need {' and '.join(missing)} (RESTIC_PASSWORD encrypts "
                             "the backups: keep it outside the host too, no backup can be read without it)")
        return self
