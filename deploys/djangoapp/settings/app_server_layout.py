"""The app server's names, paths and options (a mixin of Settings; its deploy steps are in
site/app_server.py)."""

from __future__ import annotations

import re
from typing import Optional

GUNICORN = "gunicorn==27.0.1"
# What the kit decides itself (the unit and gunicorn.conf.py set them): not for app_server_options.
KIT_OPTIONS = {"bind", "chdir", "user", "group", "worker-class", "workers", "daemon", "pid", "config",
               "pythonpath", "uid", "gid", "umask", "reuse-port", "paste"}
OPTION = re.compile(r"^--([a-z][a-z0-9-]*)(=[A-Za-z0-9._:/,@+-]*)?$")


def option_problem(option: str) -> Optional[str]:
    """Why an app_server_options entry is refused, or None. Each is one `--name` or `--name=value`
    of plain characters: it goes on the unit's command line as it is."""
    match = OPTION.fullmatch(option)
    if not match:
        return f"{option!r} is not one --name or --name=value of letters, digits and ._:/,@+-"
    if match.group(1) in KIT_OPTIONS:
        return f"{option!r}: --{match.group(1)} is set by the deploy"
    return None


class AppServerPlace:
    """Names and paths of the app server (a mixin of Settings)."""

    @property
    def runs_gunicorn(self) -> bool:
        return self.app_server in ("gunicorn", "asgi")

    @property
    def runs_uwsgi(self) -> bool:
        """This host serves the app with uWSGI (a web host, app_server uwsgi)."""
        return self.is_web and not self.runs_gunicorn

    @property
    def gunicorn_service(self) -> str:
        return f"gunicorn-{self.websiteproject}"

    @property
    def app_service(self) -> str:
        """The systemd service that serves the app on web hosts."""
        return self.gunicorn_service if self.runs_gunicorn else self.uwsgi_service

    @property
    def app_socket(self) -> str:
        """The socket the webserver talks to."""
        return f"/run/{self.gunicorn_service}.sock" if self.runs_gunicorn else self.uwsgi_socket

    @property
    def app_protocol(self) -> str:
        """How the webserver talks to it: "uwsgi" or "http"."""
        return "http" if self.runs_gunicorn else "uwsgi"

    @property
    def gunicorn_config(self) -> str:
        return f"{self.project_root}/bin/gunicorn.conf.py"

    @property
    def gunicorn_entry(self) -> str:
        return f"{self.project_root}/bin/django_deploy_entry.py"

    @property
    def asgi_module(self) -> str:
        return self.django_asgi_module or f"{self.django_settings_folder}.asgi"

    @property
    def app_restart(self) -> str:
        """The systemctl verb that puts the app server on whatever `current` points at: uWSGI's
        graceful reload re-reads the paths through `current`; gunicorn starts anew (its socket
        held by systemd meanwhile)."""
        return "restart" if self.runs_gunicorn else "reload-or-restart"
