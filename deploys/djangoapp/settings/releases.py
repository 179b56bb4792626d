"""How a release is made, switched, rolled back and removed: its source, the health gate, the lock."""

from __future__ import annotations

import os
from typing import Any, Literal, Optional

from pydantic import BaseModel, field_validator, model_validator

from .checks import MIGRATION_NAME, RELEASE_ID, URL_PATH, PositiveCount, Seconds

# Where a release comes from: exactly one of these (see source.py).
SOURCES = ("django_source_dir", "django_release_archive", "django_git_repo")


class ReleaseInputs(BaseModel):
    keep_releases: PositiveCount = 5
    health_check_path: Optional[str] = None
    health_check_timeout: PositiveCount = 60
    django_source_dir: Optional[str] = None
    django_release_archive: Optional[str] = None
    django_git_repo: Optional[str] = None
    django_git_ref: str = "HEAD"
    release_id: Optional[str] = None
    release_break_lock: bool = False
    lock_wait: Seconds = 0
    migration_lock_timeout: Seconds = 2
    migration_statement_timeout: Seconds = 0
    migration_safety: Literal["refuse", "maintenance", "switch-first", "allow"] = "refuse"
    allow_unsafe_migrations: list[str] = []
    rollback_to: Optional[str] = None
    rollback_restore_snapshot: bool = False
    rollback_drop_data: Optional[str] = None
    confirm_remove: Optional[str] = None

    @field_validator("allow_unsafe_migrations", mode="before")
    @classmethod
    def _migration_names(cls, value: Any) -> Any:
        # `--data allow_unsafe_migrations=app.0003_x,app.0004_y`
        return [name.strip() for name in value.split(",") if name.strip()] if isinstance(value, str) else value

    @field_validator("allow_unsafe_migrations")
    @classmethod
    def _migration_name(cls, value: list[str]) -> list[str]:
        for name in value:
            if not MIGRATION_NAME.fullmatch(name):
                raise ValueError(f"each must be an app label and a migration name, e.g. blog.0003_drop_subtitle "
                                 f"(got {name!r})")
        return value

    @field_validator("health_check_path")
    @classmethod
    def _url_path(cls, value: Optional[str]) -> Optional[str]:
        # It goes into a shell command and a URL: letters, digits and URL punctuation only.
        if value is not None and not URL_PATH.fullmatch(value):
            raise ValueError(f"must be a URL path starting with '/', without spaces or quotes (got {value!r})")
        return value

    @field_validator("release_id", "rollback_to", mode="before")
    @classmethod
    def _release_id_text(cls, value: Any) -> Any:
        # `--data release_id=20260101` arrives as an int: it is still a name.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("release_id", "rollback_to")
    @classmethod
    def _release_id(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not RELEASE_ID.fullmatch(value):
            raise ValueError(
                f"must be letters, digits, '.', '_' or '-' (no '/'), at most 64 characters (got {value!r})"
            )
        return value

    @field_validator("django_source_dir")
    @classmethod
    def _source_dir_exists(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not os.path.isdir(value):
            raise ValueError(f"no such directory on this machine: {value!r}")
        return value

    @field_validator("django_git_ref")
    @classmethod
    def _git_ref(cls, value: str) -> str:
        if not value or value.startswith("-") or any(c.isspace() or c in "~^:?*[\\" for c in value) or ".." in value:
            raise ValueError(f"is not a valid git ref (got {value!r})")
        return value

    @model_validator(mode="after")
    def _one_release_source(self):
        given = [name for name in SOURCES if getattr(self, name)]
        if len(given) > 1:
            raise ValueError(f"{given[0]}: give one release source, not {' and '.join(given)}")
        return self
