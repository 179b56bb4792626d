"""Announce a release, a rollback or a failed run to webhooks (`deploy_notify_url`): one JSON POST
per run, from the control machine, with a Slack-compatible `text` field. A webhook's URL is a
secret (Slack's carry their token): it is never shown; an error names the webhook's host only. A
webhook that fails never fails the deploy: its error is shown and the run goes on.

What happens on a host between runs (a backup that fails, a certificate renewal that fails or
works again) is announced from the host by bin/notify (notifier_file), to the same webhooks,
listed in a secret file beside the project's secrets.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Optional
from urllib.parse import urlsplit

from pyinfra import host, logger, state
from pyinfra.operations import python

from ..core import failure
from ..core.context import only, rendered
from ..core.host_files import HostFile, absent, secret_file
from ..core.lock import OPERATOR
from ..settings import Settings

# Close enough to when the run started: this module is loaded with the deploy files.
RUN_STARTED = time.monotonic()
TIMEOUT = 10

_SUMMARY = {"released": "released {release} (was {previous})",
            "rolled back": "rolled back to {release} (was {previous})",
            "restored": "restored the backup {release} under release {previous}",
            "failed": "{action} of {release} failed; {previous} still live"}


def notice(settings: Settings, action: str, outcome: str, release_id: str, previous_id: Optional[str],
           revision: Optional[str], duration: float) -> dict:
    """What a webhook gets: the facts, and `text` for Slack and alike."""
    facts = {
        "project": settings.websiteproject, "url": settings.url, "action": action, "outcome": outcome,
        "release": release_id, "previous": previous_id, "revision": revision, "operator": OPERATOR,
        "hosts": list(settings.fleet.roles), "duration_seconds": round(duration, 1),
    }
    summary = _SUMMARY[outcome].format(release=release_id, previous=previous_id or "nothing", action=action)
    facts["text"] = (f"{settings.websiteproject} ({settings.url}): {summary} by {OPERATOR} "
                     f"in {facts['duration_seconds']} s" + (f", revision {revision}" if revision else ""))
    return facts


def webhook_name(url: str) -> str:
    """How a webhook is named in messages: its host, never its path or credentials."""
    return urlsplit(url).hostname or "?"


def post(urls: list[str], payload: dict) -> list[str]:
    """POST `payload` to each URL; the errors, each naming the webhook's host only."""
    errors = []
    body = json.dumps(payload).encode()
    for url in urls:
        request = urllib.request.Request(url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
                answer.read()
        except urllib.error.HTTPError as error:
            errors.append(f"webhook at {webhook_name(url)} answered {error.code}")
        except (OSError, ValueError) as error:
            reason = getattr(error, "reason", error)
            errors.append(f"webhook at {webhook_name(url)} unreachable: {type(reason).__name__}")
    return errors


def _send(settings: Settings, prefix: str, outcome: str, **facts) -> None:
    payload = notice(settings, outcome=outcome, duration=time.monotonic() - RUN_STARTED, **facts)
    for error in post(settings.deploy_notify_url, payload):
        logger.warning(f"{prefix}notification not delivered: {error} (the deploy goes on)")


def notify_when_done(settings: Settings, action: str, outcome: str, release_id: str, previous_id: Optional[str],
                     revision: Optional[str] = None) -> None:
    """The run's last operation: tell the webhooks, once for the fleet (from the migration host);
    and if an operation fails before, tell them that instead."""
    if not settings.deploy_notify_url:
        return
    facts = {"action": action, "release_id": release_id, "previous_id": previous_id, "revision": revision}
    if settings.runs_migrations:
        prefix = host.print_prefix
        failure.on_run_failure(state, lambda: _send(settings, prefix, "failed", **facts))
    python.call(name="Notify deploy_notify_url", function=_send, settings=settings, prefix=host.print_prefix,
                outcome=outcome, **facts, _if=only(settings.runs_migrations))


def notify_program(settings: Settings) -> str:
    """bin/notify ACTION OUTCOME DETAIL: a notice to the webhooks, from the host."""
    return f"{settings.project_root}/bin/notify"


def webhooks_file(settings: Settings) -> str:
    """The webhooks bin/notify posts to, one URL a line: root's and the app group's alone, as
    backups run as the app user."""
    return f"{settings.project_root}/notify-webhooks"


def notifier_file(settings: Settings) -> HostFile:
    """bin/notify, written with the project's other programs."""
    return rendered("notifications/notify.py.j2", notify_program(settings), settings, mode="755",
                    webhooks=webhooks_file(settings))


def host_webhooks(settings: Settings) -> None:
    """The webhooks bin/notify posts to when deploy_notify_url has any; else no such file."""
    if settings.deploy_notify_url:
        secret_file(name=f"Webhooks of the host's own notices in {webhooks_file(settings)}",
                    path=webhooks_file(settings), content="".join(f"{url}\n" for url in settings.deploy_notify_url),
                    user="root", group=settings.uwsgi_group, mode="640")
    else:
        absent(name=f"No webhooks in {webhooks_file(settings)}", paths=[webhooks_file(settings)])
