"""Which app server runs the app, and how (its deploy steps are in site/app_server.py)."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, field_validator

from .app_server_layout import option_problem
from .checks import DottedModule, PositiveCount


class AppServerInputs(BaseModel):
    app_server: Literal["uwsgi", "gunicorn", "asgi"] = "uwsgi"
    app_server_workers: PositiveCount = 2
    app_server_options: list[str] = []
    django_asgi_module: Optional[DottedModule] = None

    @field_validator("app_server_options")
    @classmethod
    def _app_server_options(cls, value: list[str]) -> list[str]:
        found = [problem for problem in map(option_problem, value) if problem]
        if found:
            raise ValueError("; ".join(found))
        return value
