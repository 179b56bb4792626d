"""What runs beside the app: its database, Celery and Redis, memcached, the deploy user, Python."""

from __future__ import annotations

import re
from typing import Any, Literal, Optional
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, field_validator, model_validator

from .checks import PYTHON_VERSION, UNIX_NAME, absolute_clean_path, DottedModule, PositiveCount
from .environment import mask_credentials
from .placement import LOOPBACK

REDIS_PASSWORD = re.compile(r"^[A-Za-z0-9_.~-]{16,128}$")


class ServiceInputs(BaseModel):
    database: Literal["sqlite", "postgresql"] = "sqlite"
    celery: bool = False
    celery_beat: bool = False
    celery_app: Optional[DottedModule] = None
    celery_concurrency: PositiveCount = 2
    redis_url: str = "redis://127.0.0.1:6379/0"
    memcached: bool = False
    deploy_user: Optional[str] = None
    deploy_user_ssh_keys: list[str] = []
    python_interpreter: str = "/usr/bin/python3"

    @field_validator("deploy_user")
    @classmethod
    def _services_unix_name(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not UNIX_NAME.fullmatch(value):
            raise ValueError(f"must be a user or group name (got {value!r})")
        return value

    @field_validator("python_interpreter", mode="before")
    @classmethod
    def _services_python_quoted(cls, value: Any) -> Any:
        # pyinfra's --data reads 3.12 as a number, and a number reads 3.10 as 3.1.
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            raise ValueError(f"a version must be written as a string, \"{value}\" (on the command line: "
                             f"--data 'python_interpreter=\"{value}\"'), so that 3.10 is not read as 3.1")
        return value

    @field_validator("python_interpreter")
    @classmethod
    def _services_python(cls, value: str) -> str:
        if PYTHON_VERSION.fullmatch(value):
            return value
        if not value.startswith("/"):
            raise ValueError(f"must be the absolute path of an interpreter on the host, or a Python version for "
                             f"uv to provide such as \"3.12\" (got {value!r})")
        return absolute_clean_path(value)

    @property
    def python_from_uv(self) -> bool:
        """python_interpreter is a version: uv finds it on the host, or installs it for the project."""
        return bool(PYTHON_VERSION.fullmatch(self.python_interpreter))

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if not re.fullmatch(r"^rediss?://[^\s]+$", value):
            shown = mask_credentials(value)
            if "@" in shown.replace("***@", ""):
                # A user or password with a space in it, which mask_credentials does not take for one.
                shown = "***@" + shown.rsplit("@", 1)[1]
            raise ValueError(f"must be a redis:// URL (got {shown!r})")
        return value

    @model_validator(mode="after")
    def _database_password(self):
        if self.database == "postgresql" and not self.django_environment_variables.get("DJANGO_DB_PASSWORD"):
            raise ValueError("django_environment_variables: needs DJANGO_DB_PASSWORD when database is postgresql")
        return self

    @model_validator(mode="after")
    def _redis_password(self):
        password = self.django_environment_variables.get("REDIS_PASSWORD")
        if password is not None and not REDIS_PASSWORD.fullmatch(password):
            raise ValueError("django_environment_variables: REDIS_PASSWORD must be 16 to 128 letters, digits or "
                             "'_.~-' (it goes into a URL and Redis's configuration as it is)")
        return self

    @model_validator(mode="after")
    def _redis_url_login(self):
        # A redis_url on the loopback is the Redis the deploy installs on the db host, which knows
        # two logins: the project's own user with REDIS_PASSWORD, else the default user with no
        # password. Another user or password in the URL would pass, the hosts be changed, and
        # Celery then fail to log in: refused before any change. The URL is shown masked.
        try:
            parts = urlsplit(self.redis_url)
            parts.port  # reading it checks it
        except ValueError as error:  # a bracket left open, a port that is not a number
            raise ValueError(f"redis_url: is not a URL ({error})") from None
        if not self.celery or parts.hostname not in LOOPBACK:
            return self
        user, password = unquote(parts.username or ""), unquote(parts.password or "")
        redis_password = self.django_environment_variables.get("REDIS_PASSWORD")
        shown = mask_credentials(self.redis_url)
        if redis_password is not None and (user not in ("", self.websiteproject)
                                           or password not in ("", redis_password)):
            raise ValueError(f"redis_url: {shown} logs in with a user or password the Redis the deploy installs "
                             f"on the db host does not know: the project logs in there as its own user "
                             f"({self.websiteproject}) with REDIS_PASSWORD of django_environment_variables; "
                             "leave the user and password out of redis_url, the deploy adds them")
        if redis_password is None and (password or user not in ("", "default")):
            raise ValueError(f"redis_url: {shown} logs in with a user or password the Redis the deploy installs "
                             "on the db host does not know: without REDIS_PASSWORD the project uses its default "
                             "user, which has no password; put the password in django_environment_variables as "
                             "REDIS_PASSWORD and leave it out of redis_url")
        return self

    @model_validator(mode="after")
    def _beat_needs_celery(self):
        if self.celery_beat and not self.celery:
            raise ValueError("celery_beat: needs celery = True")
        return self
