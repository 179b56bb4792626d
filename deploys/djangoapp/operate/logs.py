"""Read the project's logs (deploys/logs.py): the app server, the Celery worker and beat, the
webserver (its unit, and the site's error log) and the scheduled commands, from every host, merged
in time order, with every secret value masked.

    --data since="1 hour ago"    journal entries since then (journalctl's --since; default 1 hour)
    --data lines=100             at most this many lines per host and log (default 100)
    --data grep=TEXT             only lines holding TEXT (any case)
    --data unit=app|celery|beat|webserver|jobs   one kind of log only

Reads only: no operation is added.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Optional

from pyinfra import host, inventory, logger, state
from pyinfra.api import FactBase, deploy

from ..core.callbacks import mask_secrets
from ..core.context import current_settings, settings_of
from ..core.shell import q, visible
from ..services.schedules import job_unit
from ..settings import Settings

# Journal lines (-o short-iso-precise) start with their time; the webservers' error logs have
# their own formats.
NGINX_TIME = re.compile(r"^(\d{4})/(\d\d)/(\d\d) (\d\d:\d\d:\d\d) ")
APACHE_TIME = re.compile(r"^\[(\w{3} \w{3} \d\d \d\d:\d\d:\d\d\.\d+ \d{4})\] ")


def units(settings: Settings, kind: Optional[str]) -> list[str]:
    """The systemd units of the project on this host, of one kind or all."""
    found = {"app": [settings.app_service] if settings.is_web else [],
             "celery": settings.celery_services[:1] if settings.is_worker else [],
             "beat": settings.celery_services[1:] if settings.is_worker else [],
             "webserver": [settings.webserver] if settings.is_web else [],
             "jobs": [f"{job_unit(settings, name)}.service" for name in settings.django_scheduled_commands]
             if settings.runs_migrations else []}
    return [unit for name, listed in found.items() if kind in (None, name) for unit in listed]


class RecentLogs(FactBase):
    """Recent lines of the journal of `units` and of the site's error log, "TIME SOURCE: TEXT"."""

    default = list

    def command(self, units: list[str], error_log: Optional[str], since: str, lines: int) -> str:
        steps = []
        if units:
            steps.append(f"journalctl {' '.join('-u ' + q(unit) for unit in units)} --since {q(since)} -n {lines} "
                         "-o short-iso-precise --no-pager -q 2>/dev/null")
        if error_log:
            steps.append(f"tail -n {lines} {q(error_log)} 2>/dev/null | sed 's/^/error.log: /'")
        return "; ".join(steps) + "; true" if steps else "true"

    def process(self, output):
        return [line for line in output if line.strip()]


def sort_key(line: str) -> str:
    """The time of a log line as ISO text (to sort by), or "" when it has none."""
    text = line.removeprefix("error.log: ")
    if NGINX_TIME.match(text):
        year, month, day, clock = NGINX_TIME.match(text).groups()
        return f"{year}-{month}-{day}T{clock}"
    if APACHE_TIME.match(text):
        return datetime.strptime(APACHE_TIME.match(text).group(1), "%a %b %d %H:%M:%S.%f %Y").isoformat()
    return text.split(" ", 1)[0]


def merged(lines_by_host: dict[str, list[str]], grep: Optional[str], secrets: dict[str, str]) -> list[str]:
    """Every host's lines in time order, each after its host's name, control characters made
    visible, filtered and masked."""
    # The secrets as they look once visible: one holding a control character is masked too.
    shown_secrets = {name: visible(value) for name, value in secrets.items()}
    rows = [(sort_key(line), name, mask_secrets(visible(line), shown_secrets))
            for name, lines in lines_by_host.items() for line in lines]
    if grep:
        rows = [row for row in rows if grep.lower() in row[2].lower()]
    return [f"{name}: {line}" for _, name, line in sorted(rows, key=lambda row: (row[0], row[1]))]


@deploy("Logs")
def logs():
    settings = current_settings()
    active = [other for other in inventory if other in state.active_hosts]
    if host != active[0]:
        return  # the first host gathers and prints every host's lines, merged
    lines_by_host, secrets = {}, {}
    for other in active:
        other_settings = settings_of(other)
        secrets.update(other_settings.secrets)
        error_log = other_settings.site_error_log if other_settings.is_web and other_settings.unit in (
            None, "webserver") else None
        lines_by_host[other.name] = other.get_fact(RecentLogs, units=units(other_settings, other_settings.unit),
                                                   error_log=error_log, since=settings.since, lines=settings.lines)
    shown = merged(lines_by_host, settings.grep, secrets)
    logger.info(f"{len(shown)} lines from {', '.join(lines_by_host)} (since {settings.since})")
    for line in shown:
        logger.info(line)
