"""The app server behind the webserver: uWSGI (the seed role's, the default), gunicorn (WSGI) or
asgi.

asgi is gunicorn with its own ASGI worker (gunicorn 24 and later): one package for both kinds,
the same unit, socket and signals, WebSockets without another dependency, and no server tied to
the host's Python (uWSGI's plugin is). uvicorn's gunicorn worker, the usual choice before, is
deprecated by uvicorn itself.

gunicorn runs from the release's virtualenv (installed there, pinned, unless the project's own
dependencies bring it). systemd holds its listen socket (a .socket unit), so a release restarts
the whole server on the new release while connections wait in the socket's queue: none is
refused. The webserver talks HTTP to it over that socket, which only the app user and the
webserver's group may use; it adds X-Release-Id to every answer (bin/django_deploy_entry.py),
as uWSGI does, so the health check knows which release answered.

Switching from one app server to another on a live site starts the new one first, points the
webserver at it (a graceful reload that waits for the webserver's old workers to finish their
requests and go: until then they still pass requests to the old server), then stops and removes the
other's units and config.
"""

from __future__ import annotations


from pyinfra import host
from pyinfra.facts.files import File, Link
from pyinfra.operations import server, systemd

from ..core.context import fact_before_run, rendered, template, write_files
from ..core.host_files import ExistingPaths, absent
from ..core.shell import fifo_write, q, wait_until
from ..core.units import refresh_service, reload_units, remove_units, unit_paths
from ..host.host_prep import UV, finish_host_prep, tools_ready
from ..settings.app_server_layout import GUNICORN


def gunicorn_install_command(venv: str, uv: str) -> str:
    """Shell: the kit's pinned gunicorn into a virtualenv."""
    return f"{q(uv)} pip install --quiet --python {q(venv + '/bin/python')} {q(GUNICORN)}"


def brings_gunicorn(dependency_material: bytes) -> bool:
    """The project's own dependencies (its lock or requirements) name gunicorn: theirs is used."""
    return b"gunicorn" in dependency_material.lower()


def app_server_install(settings, dependency_material: bytes, venv: str, uv: str) -> list[str]:
    """Shell: the app server into a release's virtualenv: gunicorn, pinned, unless the project's
    dependencies (`dependency_material`: its lock or requirements) or django_dependencies bring
    one; uWSGI runs from Debian's package and needs nothing there."""
    material = dependency_material + "\n".join(settings.django_dependencies).encode()
    if not settings.runs_gunicorn or brings_gunicorn(material):
        return []
    return [gunicorn_install_command(venv, uv)]


UWSGI_PYTHON = "/usr/bin/python3"  # the Python Debian's uWSGI plugin is built for


def uwsgi_python_problem(settings, venv_python: str | None, plugin_python: str | None) -> str | None:
    """Why uWSGI cannot run the release's virtualenv (its Python is not the plugin's), or None."""
    if settings.runs_gunicorn or not venv_python or not plugin_python:
        return None
    if venv_python.split(".")[:2] == plugin_python.split(".")[:2]:
        return None
    chosen = (f"asks for Python {venv_python}" if settings.python_from_uv
              else f"{settings.python_interpreter} is Python {venv_python}")
    return (f"python_interpreter: {chosen}, but uWSGI's Python plugin "
            f"runs Python {plugin_python} ({UWSGI_PYTHON}) only; use app_server \"gunicorn\" or \"asgi\", which run "
            "on the virtualenv's own Python, or the host's Python")


def _serving(settings) -> bool:
    """The host serves a release already (its `current` link exists): read once per run."""
    return bool(fact_before_run(Link, path=settings.current_link))


def _running_if_live(settings, service: str) -> None:
    """On a host already serving a release, the chosen server runs before the webserver is pointed
    at it (a switch of app_server on a live site); elsewhere a release starts it."""
    if _serving(settings):
        # It may be a package all.py is installing in the background (uWSGI).
        finish_host_prep()
        systemd.service(name=f"{service} running", service=service, running=True)


def uwsgi_stop_commands(settings) -> list[str]:
    """ExecStop of uWSGI: its graceful shutdown ("q" on the master FIFO, written with the app
    user's rights: the FIFO's folder is the app's), then a wait for the master to end, so that
    systemd's own SIGQUIT (which kills running requests) comes only past TimeoutStopSec. A FIFO
    that is not there (a master that never got that far) fails the first, which is let go."""
    return [f'-{settings.as_app_user} /bin/sh -c "printf q | {fifo_write(settings.uwsgi_master_fifo)}"',
            "/bin/sh -c 'while kill -0 $MAINPID 2>/dev/null; do sleep 0.1; done'"]


def socket_owner_command(settings) -> str:
    """Shell: the live socket file given the owner, group and mode its unit names. A changed
    socket unit (a new app user) is taken this way: restarting the socket would refuse the
    connections that arrive meanwhile. /run is root's: no link to follow there."""
    socket = q(settings.app_socket)
    return (f"systemctl daemon-reload && if [ -S {socket} ] && [ ! -L {socket} ]; then "
            f"chown {q(settings.uwsgi_user + ':' + settings.webserver_group)} {socket} && chmod 660 {socket}; fi")


def _listen(settings, written) -> None:
    """The app server's listen socket, held by systemd from now on (a request starts the app
    server on it if it does not run yet). A uWSGI that bound its socket itself still runs: its
    socket starts with its restart, at the skeleton's end."""
    socket_path = unit_paths(settings.app_service)[1]
    socket = template("app_server/app.socket.j2", socket_path, settings, mode="644")
    reload_units(socket, written)
    systemd.service(name=f"Listen on {settings.app_socket}", service=f"{settings.app_service}.socket",
                    running=None if uwsgi_socket_is_new(settings) else True, enabled=True)
    server.shell(name=f"Owner and mode of {settings.app_socket} as changed", commands=[socket_owner_command(settings)],
                 _if=socket.did_change)


def uwsgi_handover_start_command(settings) -> str:
    """Shell: a transient uWSGI (uwsgi_handover_service: its own ini and FIFO) serving the live
    release on uwsgi_socket, a path it binds itself, while the uWSGI that bound its socket itself
    (the kit before systemd held it) still serves on the old one. The webserver is pointed at it;
    then the old uWSGI stops, systemd takes the path over (it unlinks it and binds its own) and
    the stand-in goes (uwsgi_handover_stop_command): no request meets a closed socket. systemd-run
    returns once uWSGI says it is ready; a stand-in left running by a failed run is kept."""
    unit = q(settings.uwsgi_handover_service)
    return (f"systemctl is-active -q {unit} || systemd-run --quiet --collect --unit {unit} -p Type=notify "
            f"-p NotifyAccess=all -p KillSignal=SIGQUIT -- {q(settings.secrets_loader)} /usr/bin/uwsgi "
            f"--ini {q(settings.uwsgi_handover_ini)}")


def uwsgi_handover_stop_command(settings, timeout: int = 70) -> str:
    """Shell: the stand-in of uwsgi_handover_start_command ended gracefully, if it runs ("q" on its
    FIFO, written as the app user; its requests finish, within uWSGI's own mercy of 60 seconds),
    then its FIFO and ini gone."""
    unit, fifo = q(settings.uwsgi_handover_service), settings.uwsgi_handover_fifo
    return (f"if systemctl is-active -q {unit}; then printf q | {settings.as_app_user} {fifo_write(fifo)}; "
            f"{wait_until(f'! systemctl is-active -q {unit}', timeout, f'systemctl stop {unit}; break', 0.1)}; fi; "
            f"{settings.as_app_user} rm -f {q(fifo)}; rm -f {q(settings.uwsgi_handover_ini)}")


def _uwsgi_handover(settings) -> None:
    """On a live host whose uWSGI bound its socket itself: the stand-in serving on the socket's
    new path before the webserver is pointed there (uwsgi_handover_start_command)."""
    finish_host_prep()
    write_files(f"the config of {settings.uwsgi_handover_service}", [
        rendered("uwsgi/app.ini.j2", settings.uwsgi_handover_ini, settings, mode="644", handover=True)])
    server.shell(name=f"Serve on {settings.uwsgi_socket} meanwhile ({settings.uwsgi_handover_service})",
                 commands=[uwsgi_handover_start_command(settings)])


def _uwsgi(settings, environment_inputs: list[str], restart_later: bool) -> None:
    unit_path = unit_paths(settings.uwsgi_service)[0]
    written = write_files(f"uWSGI's config and unit ({settings.uwsgi_service})", [
        rendered("uwsgi/app.ini.j2", settings.uwsgi_ini, settings, mode="644"),
        rendered("app/wsgi.py.j2", settings.wsgi_entry, settings, mode="644"),
        rendered("systemd/uwsgi.service.j2", unit_path, settings, mode="644",
                 stop_commands=uwsgi_stop_commands(settings))])
    _listen(settings, written)
    systemd.service(name=f"Enable {settings.uwsgi_service}", service=settings.uwsgi_service,
                    running=None, enabled=True)
    _running_if_live(settings, settings.uwsgi_service)
    if uwsgi_socket_is_new(settings) and _serving(settings):
        _uwsgi_handover(settings)
    if restart_later:
        return
    refresh_service(
        name=f"Reload {settings.uwsgi_service} if it runs",
        service=settings.uwsgi_service,
        inputs=[settings.uwsgi_ini, settings.wsgi_entry, unit_path, *environment_inputs],
        command=f"systemctl daemon-reload && systemctl try-reload-or-restart {settings.uwsgi_service}",
    )


def _gunicorn(settings, environment_inputs: list[str], restart_later: bool) -> None:
    service_path, socket_path, _ = unit_paths(settings.gunicorn_service)
    written = write_files(f"gunicorn's config and unit ({settings.gunicorn_service})", [
        rendered("app_server/gunicorn.conf.py.j2", settings.gunicorn_config, settings, mode="644"),
        rendered("app_server/django_deploy_entry.py.j2", settings.gunicorn_entry, settings, mode="644"),
        rendered("app_server/gunicorn.service.j2", service_path, settings, mode="644")])
    _listen(settings, written)
    systemd.service(name=f"Enable {settings.gunicorn_service}", service=settings.gunicorn_service,
                    running=None, enabled=True)
    live_venv = f"{settings.current_link}/.venv"
    if _serving(settings) and not host.get_fact(File, path=f"{live_venv}/bin/gunicorn"):
        # Switching to gunicorn on a live site: the live release's virtualenv was built without it.
        # uv first, if all.py's host preparation is still installing it in the background.
        tools_ready()
        server.shell(name="gunicorn into the live release's virtualenv",
                     commands=[gunicorn_install_command(live_venv, UV)])
    _running_if_live(settings, settings.gunicorn_service)
    if restart_later:
        return
    refresh_service(
        name=f"Restart {settings.gunicorn_service} if it runs",
        service=settings.gunicorn_service,
        inputs=[settings.gunicorn_config, settings.gunicorn_entry, service_path, socket_path, *environment_inputs],
        command=f"systemctl daemon-reload && systemctl try-restart {settings.gunicorn_service}",
    )


def other_app_server_service(settings) -> str:
    """The unit of the app server not chosen."""
    return settings.uwsgi_service if settings.runs_gunicorn else settings.gunicorn_service


def switching_app_server(settings) -> bool:
    """The app server not chosen is still installed: this run switches the site to the chosen one."""
    # The same look as remove_units' of it (read once).
    units = unit_paths(other_app_server_service(settings))
    return units[0] in fact_before_run(ExistingPaths, paths=units)


def drained_reload(service: str, reload: str, timeout: int = 30) -> str:
    """Shell: `reload` (a graceful reload of the webserver `service`), then wait, at most `timeout`
    seconds, until the worker processes it had before are gone. A graceful reload returns at once;
    the old workers finish the requests they hold, and until the master has read the new config
    they still take new ones, passing them where the old config says. Once they are gone, nothing
    talks to the app server being switched away from, and it can stop."""
    return (f"main=$(systemctl show -p MainPID --value {q(service)}); old=; "
            # Its children, from /proc (no procps needed): every process whose parent it is.
            'if [ "${main:-0}" != 0 ]; then old=$(grep -ls "^PPid:[[:space:]]*$main\\$" /proc/[0-9]*/status '
            "| cut -d/ -f3); fi; "
            f"{reload} && deadline=$(($(date +%s) + {int(timeout)})) && for pid in $old; do "
            'while [ -d "/proc/$pid" ] && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.1; done; done')


def webserver_reload_command(settings, reload: str) -> str:
    """Shell: the webserver's graceful reload, drained when the app server is being switched, or
    moved to the socket systemd holds (its old socket goes away)."""
    if switching_app_server(settings) or uwsgi_socket_is_new(settings):
        return drained_reload(settings.webserver, reload)
    return reload


def remove_other_app_server(settings) -> None:
    """The app server not chosen: its units stopped and removed, its config files gone."""
    remove_units([other_app_server_service(settings)])
    if settings.runs_gunicorn:
        leftovers = [settings.uwsgi_ini, settings.wsgi_entry, settings.uwsgi_control_dir]
    else:
        leftovers = [settings.gunicorn_config, settings.gunicorn_entry]
    absent(name=f"Remove the config of {other_app_server_service(settings)}", paths=leftovers)


def app_server(settings, environment_inputs: list[str], restart_later: bool = False) -> None:
    """The chosen app server's config and units; the other one's units go. `restart_later`: the
    app server is restarted once the webserver is set up (skeleton.py), not reloaded here."""
    if settings.runs_gunicorn:
        _gunicorn(settings, environment_inputs, restart_later)
    else:
        _uwsgi(settings, environment_inputs, restart_later)


def uwsgi_socket_is_new(settings) -> bool:
    """A host whose uWSGI bound its socket itself (before systemd held it): the new socket has
    another path, served by a stand-in (_uwsgi_handover) while the webserver is pointed there
    and uWSGI restarts on the socket systemd holds."""
    if not settings.runs_uwsgi:
        return False
    service, socket, _ = unit_paths(settings.uwsgi_service)
    found = fact_before_run(ExistingPaths, paths=[service, socket])
    return service in found and socket not in found
