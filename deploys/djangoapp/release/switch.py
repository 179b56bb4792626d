"""The switch of one host to a release, and the checks that decide whether it stays.

    switch    `current` -> the release, atomically (a new link renamed over the old one)
    web       the app server on the new release (uWSGI: a graceful reload; gunicorn: a restart, its
              socket held by systemd meanwhile); the webserver must answer from the new release (its
              X-Release-Id) within health_check_timeout: 200 at health_check_path, or, with no
              path set, any answer below 500 at "/" (a stock project has no health URL) except 400,
              which is Django refusing the host name (ALLOWED_HOSTS)
    worker    Celery restarts (warm shutdown: running tasks finish); the new worker must log that
              it is ready and still run, within the same deadline; beat must still run
    back      if a check fails: `current` back to the release it pointed at before the switch (read
              then, under the deploy lock), the app server and Celery restarted on it, the cause and
              the service's last log lines shown, and the run fails; with no previous release the
              services stop and `current` goes. A run that fails on another host, or after the
              switch, brings every host it switched back the same way (undo_command). A rollback
              leaves even the failing host's going back to the run's failure cleanup, which
              migrates the database forward first (rollback.py)
    reload    restart.py: the app server (gracefully) and Celery restarted on the live release
              and checked as in a switch; nothing moved, so nothing goes back (reload_command)

Each of these is a function that returns shell text (POSIX sh: pyinfra runs commands with
`sh -c`, dash on Debian), so a unit test can read, and run, what runs on the host. A fleet
switches batch after batch (switch_in_batches), each host as its settings say (switch_plan):
releases and rollbacks both end this way. Behind load balancers, each batch's web hosts are
drained there before they switch and put back after (site/load_balancer.py), when other web
hosts serve meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from pyinfra import host
from pyinfra.api import operation

from ..core.context import only
from ..core.shell import fifo_write, q, wait_until
from ..settings import Settings
from ..site.load_balancer import batch_after_batch

LOG_LINES = 15
# The shell variable holding what `current` pointed at before the switch.
PREVIOUS = '"$previous"'


@dataclass(frozen=True)
class SwitchPlan:
    link: str                      # the `current` link
    release_dir: str               # the release to switch to
    release_id: str
    app_service: Optional[str]     # the app server's unit (web hosts)
    health_url: str                # https://<url><path>
    resolve: str                   # curl --resolve: the site's name on this host's loopback
    strict_health: bool            # health_check_path set: 200 only
    celery_services: tuple[str, ...] = ()  # worker first, then beat
    timeout: int = 60
    switch_back_at_once: bool = True  # False: a failed check leaves going back to the run's cleanup
    app_restart: str = "reload-or-restart"    # how the app server takes the new `current`
    master_fifo: Optional[str] = None  # uWSGI's master FIFO: woken during a graceful reload
    as_app_user: str = ""              # the prefix that gives up root for the app user's rights (layout)


def link_command(link: str, target: str) -> str:
    """Point `link` at `target` (a shell word: a quoted path, or "$variable") atomically: a new
    link renamed over the old one (files.link removes the old link first)."""
    return f"ln -sfn {target} {q(link)}.next && mv -Tf {q(link)}.next {q(link)}"


def web_check(plan: SwitchPlan) -> str:
    """Wait until the webserver answers from the new release; on timeout print why, return 1."""
    answer = (f"curl -sk -o /dev/null --max-time 5 --resolve {q(plan.resolve)} "
              f"-w '%{{http_code}} %header{{x-release-id}}' {q(plan.health_url)}")
    if plan.strict_health:
        healthy = f'[ "$answer" = {q("200 " + plan.release_id)} ]'
        wanted = f"200 from release {plan.release_id}"
    else:
        healthy = (f'[ "${{answer#* }}" = {q(plan.release_id)} ] && code=${{answer%% *}} && '
                   '[ "$code" -lt 500 ] && [ "$code" != 400 ]')
        wanted = f"an answer below 500 from release {plan.release_id}"
    hint = ('case "$answer" in 400\\ *) echo "Django answers 400 Bad Request: its ALLOWED_HOSTS does not hold '
            'the site name (the app gets it as DJANGO_ALLOWED_HOSTS)" >&2;; 5*) echo "the app fails: its log '
            f'follows" >&2; journalctl -u {q(plan.app_service or "")} -n {LOG_LINES} --no-pager -o cat >&2;; '
            '000\\ *) echo "nothing answers: is the webserver running?" >&2;; esac')
    failed = (f"echo \"health check failed: {plan.health_url} did not give {wanted} within {plan.timeout} s "
              f"(last answer: $answer)\" >&2; {hint}; exit 1")
    check = f'answer="$({answer})"; {healthy}'
    return f"({wait_until(check, plan.timeout, failed)})"


def worker_check(plan: SwitchPlan, since: str) -> str:
    """Wait until the Celery worker restarted at `since` (a shell expression giving an epoch) logs
    that it is ready and still runs; then beat must run too. On timeout print why, return 1."""
    worker, *others = plan.celery_services
    log = f"journalctl -u {q(worker)} --since \"@{since}\" --no-pager -o cat"
    ready = f"{log} | grep -q ' ready\\.$' && systemctl is-active -q {q(worker)}"
    not_ready = (f"echo \"the Celery worker of release {plan.release_id} did not become ready within "
                 f"{plan.timeout} s; its log:\" >&2; {log} | tail -n {LOG_LINES} >&2; exit 1")
    wait_ready = f"({wait_until(ready, plan.timeout, not_ready, pause=0.5)})"
    beat_checks = [f"{{ systemctl is-active -q {q(service)} || {{ echo 'Celery beat of the new release does not run; "
                   f"its log:' >&2; journalctl -u {q(service)} -n {LOG_LINES} --no-pager -o cat >&2; false; }}; }}"
                   for service in others]
    return " && ".join([wait_ready, *beat_checks])


def wake_master(fifo: str, as_app_user: str, times: int = 60, pause: float = 0.05) -> str:
    """Shell: in the background, a byte (a newline, no uWSGI command) written to uWSGI's master
    FIFO every `pause` seconds, `times` times. In a graceful reload the master notices its old
    workers gone only when its loop wakes, once a second when nothing else wakes it: woken, it
    starts the new release as soon as they have finished their requests. A write never waits
    (no reader: it fails, and is dropped). The FIFO is in the app user's folder (the master makes
    it after it gave up root): the writes are the app user's (`as_app_user`), so a link or file
    planted in its place is written with the app's rights only, and never followed (nofollow)."""
    loop = (f"i=0; while [ $i -lt {int(times)} ]; do "
            f"printf '\\n' | {fifo_write(fifo)} 2>/dev/null; "
            f"sleep {pause}; i=$((i+1)); done")
    return f"{as_app_user} sh -c {q(loop)} < /dev/null > /dev/null 2>&1 & waking=\"$waking $!\""


# Shell: the wake_master loops this program started end (the checks are over).
STOP_WAKING = 'kill $waking 2>/dev/null || true'


def restart_services(plan: SwitchPlan) -> str:
    """Put the app server (uWSGI: a graceful reload) and Celery on whatever `current` points at."""
    steps = []
    if plan.app_service:
        restart = f"systemctl {plan.app_restart} {q(plan.app_service)}"
        steps.append(f"{restart} && {{ {wake_master(plan.master_fifo, plan.as_app_user)}; }}"
                     if plan.master_fifo else restart)
    if plan.celery_services:
        steps.append("systemctl restart " + " ".join(q(service) for service in plan.celery_services))
    return " && ".join(steps) or "true"


def marker(plan: SwitchPlan) -> str:
    """Where a host notes what `current` pointed at before it switched to the release."""
    return f"{plan.release_dir}/.switched-from"


def back_command(plan: SwitchPlan) -> str:
    """Shell: `current` back to "$previous" (services restarted on it), or, with no previous
    release, the services stopped and `current` gone."""
    stop = " ".join(q(service) for service in ((plan.app_service,) if plan.app_service else ()) + plan.celery_services)
    return (f'if [ -n "$previous" ]; then '
            f"{link_command(plan.link, PREVIOUS)} && {restart_services(plan)}; "
            'echo "switched back to $previous" >&2; '
            f"else {'systemctl stop ' + stop + '; ' if stop else ''}rm -f {q(plan.link)}; fi")


def switch_command(plan: SwitchPlan) -> str:
    """The whole switch of one host, as one shell program."""
    checks = []
    if plan.app_service:
        checks.append(web_check(plan))
    if plan.celery_services:
        checks.append(worker_check(plan, "$started"))
    back = back_command(plan) if plan.switch_back_at_once else \
        "echo \"the run's failure cleanup brings every host back to $previous\" >&2"
    return (f'waking=; previous="$(readlink {q(plan.link)})"; printf \'%s\\n\' "$previous" > {q(marker(plan))} && '
            f"started=$(date +%s) && {link_command(plan.link, q(plan.release_dir))} && {restart_services(plan)} && "
            + " && ".join(checks or ["true"])
            + f" && {{ {STOP_WAKING}; exit 0; }}; {back}; {STOP_WAKING}; exit 1")


def undo_command(plan: SwitchPlan) -> str:
    """Shell: when a run fails after this host switched to the release (another host failed its
    checks, or a later step failed), this host goes back too: the fleet stays on one release."""
    return (f'if [ "$(readlink {q(plan.link)})" = {q(plan.release_dir)} ] && [ -f {q(marker(plan))} ]; then '
            f'waking=; previous="$(cat {q(marker(plan))})"; {back_command(plan)}; {STOP_WAKING}; fi')


def reload_command(plan: SwitchPlan) -> str:
    """Shell: the app server and Celery restarted on the release `current` points at (the plan's),
    then the checks of a switch: the run fails if they do, with the cause shown."""
    checks = ([web_check(plan)] if plan.app_service else []) + (
        [worker_check(plan, "$started")] if plan.celery_services else [])
    return (f"waking=; started=$(date +%s) && {restart_services(plan)} && " + " && ".join(checks or ["true"])
            + f" && {{ {STOP_WAKING}; exit 0; }}; {STOP_WAKING}; exit 1")


@operation(is_idempotent=False)
def reload_release(plan: SwitchPlan):
    """Restart this host's app server and Celery on its live release and check them (see the module)."""
    yield reload_command(plan)


@operation(is_idempotent=False)
def switch_release(plan: SwitchPlan):
    """Switch this host to a release and keep it only if it proves healthy (see the module)."""
    yield switch_command(plan)


def switch_plan(settings: Settings, release_id: str, switch_back_at_once: bool = True) -> SwitchPlan:
    """How this host switches to a release and checks it (the functions above)."""
    return SwitchPlan(
        link=settings.current_link,
        release_dir=f"{settings.releases_dir}/{release_id}",
        release_id=release_id,
        app_service=settings.app_service if settings.is_web else None,
        app_restart=settings.app_restart,
        master_fifo=settings.uwsgi_master_fifo if settings.runs_uwsgi else None,
        as_app_user=settings.as_app_user,
        health_url=f"https://{settings.url}{settings.health_check_path or '/'}",
        resolve=f"{settings.url}:443:127.0.0.1",
        strict_health=settings.health_check_path is not None,
        celery_services=tuple(settings.celery_services),
        timeout=settings.health_check_timeout,
        switch_back_at_once=switch_back_at_once,
    )


def switch_in_batches(settings: Settings, release_id: str, switch_back_at_once: bool = True):
    """Switch the fleet to a release, batch after batch (one batch: all hosts at once), each host
    as switch_command says: `current` -> the release, uWSGI and Celery on it, their checks, or back to
    the release it pointed at before (at once, or in the run's failure cleanup). Releases and
    rollbacks both end this way."""
    plan = switch_plan(settings, release_id, switch_back_at_once)

    def switch(batch: list[str], label: str) -> None:
        # One name on every host: pyinfra shows a step by its name, and a batch is one step.
        switch_release(name=f"Switch to release {release_id} and check it{label}",
                       plan=plan, _if=only(host.name in batch))
    batch_after_batch(settings, switch)
