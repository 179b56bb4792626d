"""Restart: the webserver and the app server reload gracefully (uWSGI and gunicorn keep their
master and socket and replace their workers: no request is dropped), Celery restarts
with a warm shutdown (running tasks finish), as the fabfile's `fab restart` did. Each host
restarts what its roles run, batch after batch as a release switches them (rolling_batch_size);
behind load balancers each batch's web hosts are drained there first and put back after."""

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import server, systemd

from ..core import audit
from ..core.context import current_settings, only
from ..core.lock import hold_lock, let_go
from ..settings import Settings
from ..site.load_balancer import drain_batch, ready_batch


@deploy("Restart")
def restart():
    settings = current_settings()
    hold_lock(settings, "restart")
    restart_in_batches(settings)
    audit.record(settings, "restart", "webserver, app server and Celery, as this host runs them")
    let_go(settings)


def restart_in_batches(settings: Settings) -> None:
    batches = settings.fleet.switch_batches(settings.rolling_batch_size)
    for number, batch in enumerate(host.loop(batches), 1):
        label = f" (batch {number} of {len(batches)})" if len(batches) > 1 else ""
        in_batch = only(host.name in batch)
        drained = drain_batch(settings, batch, label)
        if settings.is_web:
            systemd.service(name=f"Reload {settings.webserver}{label}", service=settings.webserver, running=True,
                            reloaded=True, _if=in_batch)
            server.shell(name=f"Reload {settings.app_service} gracefully{label}",
                         commands=[f"systemctl reload-or-restart {settings.app_service}"], _if=in_batch)
        for service in settings.celery_services:
            server.shell(name=f"Restart {service}{label}", commands=[f"systemctl restart {service}"], _if=in_batch)
        if drained:
            ready_batch(settings, batch, label)
