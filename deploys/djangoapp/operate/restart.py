"""Restart: the webserver and the app server reload gracefully (uWSGI and gunicorn keep their
master and socket and replace their workers: no request is dropped), Celery restarts
with a warm shutdown (running tasks finish), as the fabfile's `fab restart` did; then the checks
of a switch to the live release (release/switch.py's reload_command) must pass. Each host
restarts what its roles run, batch after batch as a release switches them (rolling_batch_size);
behind load balancers each batch's web hosts are drained there first and put back after."""

from dataclasses import replace

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import systemd

from ..core import audit
from ..core.context import current_settings, only
from ..core.host_state import ReleaseInfo
from ..core.lock import hold_lock, let_go
from ..release.switch import reload_release, switch_plan
from ..settings import Settings
from ..site.load_balancer import batch_after_batch


@deploy("Restart")
def restart():
    settings = current_settings()
    hold_lock(settings, "restart")
    restart_in_batches(settings)
    audit.record(settings, "restart", "webserver, app server and Celery, as this host runs them")
    let_go(settings)


def restart_in_batches(settings: Settings) -> None:
    """The webserver, the app server and Celery of this host restarted in its batch (see the module)."""
    live = host.get_fact(ReleaseInfo, link=settings.current_link)
    # The live release's checks, as a switch to it would run them; gunicorn reloads gracefully here.
    plan = replace(switch_plan(settings, live["id"]), app_restart="reload-or-restart") if live else None
    restarted = " and ".join(([settings.app_service] if plan and plan.app_service else [])
                             + (["Celery"] if plan and plan.celery_services else []))
    if not live and (settings.is_web or settings.celery_services):
        host.noop("no release is live: no app server or Celery to restart")

    def restart_batch(batch: list[str], label: str) -> None:
        in_batch = only(host.name in batch)
        if settings.is_web:
            systemd.service(name=f"Reload {settings.webserver}{label}", service=settings.webserver, running=True,
                            reloaded=True, _if=in_batch)
        if restarted:
            reload_release(name=f"Restart {restarted} on the live release and check them{label}", plan=plan,
                           _if=in_batch)
    # A host with no live release serves nothing a load balancer would wait to see up again.
    batch_after_batch(settings, restart_batch, drained=bool(live))
