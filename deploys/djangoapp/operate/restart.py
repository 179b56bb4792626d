"""Restart: the webserver and the app server reload gracefully (uWSGI and gunicorn keep their
master and socket and replace their workers: no request is dropped), Celery restarts
with a warm shutdown (running tasks finish), as the fabfile's `fab restart` did. Each host
restarts what its roles run."""

from pyinfra.api import deploy
from pyinfra.operations import server, systemd

from ..core import audit
from ..core.context import current_settings
from ..core.lock import hold_lock, let_go


@deploy("Restart")
def restart():
    settings = current_settings()
    hold_lock(settings, "restart")
    if settings.is_web:
        systemd.service(name=f"Reload {settings.webserver}", service=settings.webserver, running=True,
                        reloaded=True)
        server.shell(name=f"Reload {settings.app_service} gracefully",
                     commands=[f"systemctl reload-or-restart {settings.app_service}"])
    for service in settings.celery_services:
        server.shell(name=f"Restart {service}", commands=[f"systemctl restart {service}"])
    audit.record(settings, "restart", "webserver, app server and Celery, as this host runs them")
    let_go(settings)
