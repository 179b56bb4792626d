"""The app servers: settings, units and configs rendered for each, and gunicorn's entry run
against a stand-in project (WSGI and ASGI) to show it answers with the release's id."""

import asyncio
import importlib.util
import os
import shlex
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from deploys.djangoapp.site.app_server import (
    uwsgi_handover_start_command,
    uwsgi_handover_stop_command,
    uwsgi_stop_commands,
)
from deploys.djangoapp.core.context import render_template
from deploys.djangoapp.release.dependencies import DependencyPlan, dependency_hash
from deploys.djangoapp.settings import problems
from tests.unit.sites import VALID, app_folder, settings

SERVERS = ["uwsgi", "gunicorn", "asgi"]


def render(name: str, site) -> str:
    return render_template(name, s=site)


def test_each_app_server_has_its_service_socket_and_restart():
    uwsgi, gunicorn, asgi = (settings(app_server=server) for server in SERVERS)
    assert (uwsgi.app_service, uwsgi.app_socket, uwsgi.app_restart) == \
        ("uwsgi-mysite", "/run/uwsgi-mysite.sock", "reload-or-restart")
    for site in (gunicorn, asgi):
        assert (site.app_service, site.app_socket, site.app_restart) == \
            ("gunicorn-mysite", "/run/gunicorn-mysite.sock", "restart")
    assert asgi.asgi_module == "mysite.asgi"
    assert (uwsgi.runs_uwsgi, gunicorn.runs_uwsgi, asgi.runs_uwsgi) == (True, False, False)
    assert settings(app_server="asgi", django_asgi_module="mysite.routing").asgi_module == "mysite.routing"


@pytest.mark.parametrize("option, problem", [
    ("--threads=4", None),
    ("--max-requests=1000", None),
    ("--preload", None),
    ("--bind=0.0.0.0:80", "--bind is set by the deploy"),
    ("--workers=8", "--workers is set by the deploy"),
    ("--threads 4", "is not one --name or --name=value"),
    ("--log-level=%(x)s", "is not one --name or --name=value"),  # % is a specifier in unit files
    ("--x=$(id)", "is not one --name or --name=value"),
    ("-w", "is not one --name or --name=value"),
])
def test_app_server_options_are_plain_and_leave_the_deploys_own_alone(option, problem):
    found_settings, found = problems({**VALID, "app_server": "gunicorn", "app_server_options": [option]})
    if problem is None:
        assert found == [] and found_settings.app_server_options == [option]
    else:
        assert len(found) == 1 and found[0].startswith("app_server_options: ") and problem in found[0], found


def test_gunicorn_is_part_of_the_virtualenvs_key_only_when_it_serves():
    plan = DependencyPlan("requirements", "requirements.txt", b"django==5.2", None, None)
    keys = {server: dependency_hash(settings(app_server=server), plan) for server in SERVERS}
    assert keys["gunicorn"] == keys["asgi"] != keys["uwsgi"]


def exec_start(unit: str) -> list[str]:
    lines = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    assert len(lines) == 1, unit
    return shlex.split(lines[0].removeprefix("ExecStart="))


@pytest.mark.parametrize("server", ["gunicorn", "asgi"])
def test_the_gunicorn_units_and_config(server):
    site = settings(app_server=server, app_server_workers=3, app_server_options=["--threads=4", "--preload"])
    unit = render("app_server/gunicorn.service.j2", site)
    assert exec_start(unit) == ["/srv/www/mysite/bin/with-secrets", "/srv/www/mysite/current/.venv/bin/gunicorn",
                                "--config", "/srv/www/mysite/bin/gunicorn.conf.py", "--threads=4", "--preload"]
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit and "Requires=gunicorn-mysite.socket" in unit
    assert "User=django-mysite" in unit and "Group=django-mysite" in unit and "KillMode=mixed" in unit
    socket = render("app_server/app.socket.j2", site)
    for line in ("ListenStream=/run/gunicorn-mysite.sock", "SocketUser=django-mysite", "SocketGroup=www-data",
                 "SocketMode=0660", "RemoveOnStop=yes"):
        assert line in socket.splitlines()
    config: dict = {}
    exec(compile(render("app_server/gunicorn.conf.py.j2", site), "gunicorn.conf.py", "exec"), config)
    assert config["workers"] == 3 and config["wsgi_app"] == "django_deploy_entry:application"
    assert config["worker_class"] == ("asgi" if server == "asgi" else "sync")
    assert config["pythonpath"] == "/srv/www/mysite/bin" and "bind" not in config
    assert (config.get("asgi_lifespan") == "off") == (server == "asgi")


def test_uwsgi_takes_its_socket_from_systemd_and_stops_gracefully():
    site = settings()
    unit = render_template("systemd/uwsgi.service.j2", s=site, stop_commands=uwsgi_stop_commands(site))
    assert "Requires=uwsgi-mysite.socket" in unit and "RuntimeDirectory" not in unit
    socket = render("app_server/app.socket.j2", site)
    for line in ("ListenStream=/run/uwsgi-mysite.sock", "SocketUser=django-mysite", "SocketGroup=www-data",
                 "SocketMode=0660"):
        assert line in socket.splitlines()
    ini = render("uwsgi/app.ini.j2", site)
    # The inherited socket is taken by its name; uWSGI neither binds nor removes it.
    assert "socket = /run/uwsgi-mysite.sock" in ini.splitlines()
    assert not any(line.startswith(("chown-socket", "chmod-socket", "vacuum")) for line in ini.splitlines())


def test_uwsgis_stop_asks_the_master_to_finish_its_requests_and_waits_for_it(tmp_path):
    """ExecStop, run as systemd runs it: "q" (uWSGI's graceful shutdown) reaches the master's FIFO,
    written with the app user's rights, and the stop waits until the master has ended."""
    with app_folder() as folder:
        site = settings(django_deployment_root_folder=str(folder.parent), websiteproject="app",
                        uwsgi_user="nobody", uwsgi_group="nogroup")
        fifo = Path(site.uwsgi_master_fifo)
        fifo.parent.mkdir()
        os.chown(fifo.parent, 65534, 65534)
        os.mkfifo(fifo)
        os.chown(fifo, 65534, 65534)
        # Stands in for the master: reads its FIFO, ends a second after "q".
        master = subprocess.Popen(["bash", "-c", f"exec 3<> {fifo}; while read -r -n1 c <&3; do "
                                   f"[ \"$c\" = q ] && sleep 1 && echo stopped > {tmp_path}/master && exit 0; done"])
        first, wait = (line.removeprefix("ExecStop=") for line in render_template(
            "systemd/uwsgi.service.j2", s=site, stop_commands=uwsgi_stop_commands(site)).splitlines()
            if line.startswith("ExecStop="))
        assert first.startswith("-/usr/bin/setpriv --reuid=nobody ")
        # Reaped as soon as it ends, as systemd reaps a service's main process.
        reaper = threading.Thread(target=master.wait)
        reaper.start()
        for command in (first.removeprefix("-"), wait.replace("$MAINPID", str(master.pid))):
            subprocess.run(shlex.split(command), check=True, timeout=20)
        assert (tmp_path / "master").read_text() == "stopped\n"  # the stop returned once it ended
        reaper.join(timeout=5)


def test_the_handover_uwsgi_binds_the_new_socket_itself_with_a_fifo_of_its_own():
    """The stand-in that serves while a host of the kit before moves to the socket systemd holds:
    the same app on the same path, bound by itself for the app user and the webserver's group, and
    a FIFO apart from the master's (the real uWSGI makes that one when it starts)."""
    site = settings()
    ini = render_template("uwsgi/app.ini.j2", s=site, handover=True).splitlines()
    plain = render("uwsgi/app.ini.j2", site).splitlines()
    assert "socket = /run/uwsgi-mysite.sock" in ini
    assert {"chmod-socket = 660", "chown-socket = django-mysite:www-data"} <= set(ini)
    assert "master-fifo = /srv/www/mysite/uwsgi/handover.fifo" in ini
    assert "master-fifo = /srv/www/mysite/uwsgi/master.fifo" in plain
    # Otherwise the live app's own config, line for line.
    assert [line for line in ini if not line.startswith(("#", "chmod-socket", "chown-socket", "master-fifo"))] == \
        [line for line in plain if not line.startswith(("#", "master-fifo"))]
    start = uwsgi_handover_start_command(site)
    assert start.startswith("systemctl is-active -q uwsgi-mysite-handover || systemd-run ")
    assert "-p Type=notify" in start and start.endswith("/usr/bin/uwsgi --ini /etc/uwsgi/apps-available/mysite-handover.ini")


# Stands in for systemctl: the stand-in unit is active as long as its master runs ($MASTER_PID).
FAKE_SYSTEMCTL = """#!/bin/sh
echo "systemctl $*" >> "$LOG"
[ "$1" = is-active ] && kill -0 "$MASTER_PID" 2>/dev/null
"""


def test_the_handover_uwsgi_stops_gracefully_and_leaves_nothing(tmp_path):
    """Its stop: "q" on its own FIFO, written as the app user, then a wait until the unit is no
    longer active; its FIFO and ini gone. The live master's FIFO is not touched."""
    with app_folder() as folder:
        site = settings(django_deployment_root_folder=str(folder.parent), websiteproject="app",
                        uwsgi_user="nobody", uwsgi_group="nogroup")
        fifo, master_fifo = Path(site.uwsgi_handover_fifo), Path(site.uwsgi_master_fifo)
        fifo.parent.mkdir()
        os.chown(fifo.parent, 65534, 65534)
        for path in (fifo, master_fifo):
            os.mkfifo(path)
            os.chown(path, 65534, 65534)
        ini = tmp_path / "handover.ini"
        stop = uwsgi_handover_stop_command(site).replace(site.uwsgi_handover_ini, str(ini))
        ini.write_text("[uwsgi]")
        master = subprocess.Popen(["bash", "-c", f"exec 3<> {fifo}; while read -r -n1 c <&3; do "
                                   f"[ \"$c\" = q ] && sleep 1 && echo stopped > {tmp_path}/master && exit 0; done"])
        reaper = threading.Thread(target=master.wait)
        reaper.start()
        fake = tmp_path / "bin"
        fake.mkdir()
        (fake / "systemctl").write_text(FAKE_SYSTEMCTL)
        (fake / "systemctl").chmod(0o755)
        log = tmp_path / "log"
        subprocess.run(["sh", "-c", stop], check=True, timeout=30, env={
            "PATH": f"{fake}:/usr/bin:/bin", "LOG": str(log), "MASTER_PID": str(master.pid)})
        assert (tmp_path / "master").read_text() == "stopped\n"
        reaper.join(timeout=5)
        assert "systemctl stop uwsgi-app-handover" not in log.read_text()  # it ended by itself
        assert not fifo.exists() and not ini.exists() and master_fifo.exists()


@pytest.mark.parametrize("webserver", ["nginx", "apache2"])
@pytest.mark.parametrize("server", SERVERS)
def test_the_webserver_talks_to_the_app_server_its_way(webserver, server):
    site = settings(app_server=server, webserver=webserver)
    config = render(f"{webserver}/site.conf.j2", site)
    if server == "uwsgi":
        assert ("uwsgi_pass unix:/run/uwsgi-mysite.sock;" in config
                or "unix:/run/uwsgi-mysite.sock|uwsgi://mysite/" in config)
        assert "X-Forwarded-Proto" not in config
    else:
        assert ("proxy_pass http://unix:/run/gunicorn-mysite.sock;" in config
                or "ProxyPass / unix:/run/gunicorn-mysite.sock|http://mysite/" in config)
        assert "X-Forwarded-Proto" in config and "uwsgi" not in config
        assert ("proxy_set_header X-Real-IP $remote_addr;" in config
                or 'RequestHeader set X-Real-IP "expr=%{REMOTE_ADDR}"' in config)
        if webserver == "apache2":
            assert "Header unset Server" in config  # not gunicorn's name passed on
    websockets = ["Upgrade $http_upgrade", "upgrade=websocket"]
    assert any(marker in config for marker in websockets) == (server == "asgi")


def load_entry(tmp_path, server: str):
    """bin/django_deploy_entry.py as rendered for a project under tmp_path, with a stand-in
    project package (mysite.wsgi, mysite.asgi) and release r7 live."""
    root = tmp_path / "www"
    site = settings(app_server=server, django_deployment_root_folder=str(root))
    release = root / "mysite" / "releases" / "r7"
    (release / "mysite").mkdir(parents=True)
    (root / "mysite" / "current").symlink_to(release)
    (release / "REVISION").write_text("r7\n")
    (release / "mysite" / "__init__.py").write_text("")
    (release / "mysite" / "wsgi.py").write_text(
        "def application(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'wsgi']\n")
    (release / "mysite" / "asgi.py").write_text(
        "async def application(scope, receive, send):\n"
        "    client = scope.get('client', ('',))[0]\n"
        "    if scope['type'] == 'websocket':\n"
        "        await send({'type': 'websocket.accept', 'client': client})\n"
        "        return\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': [(b'content-type', b'text/plain')]})\n"
        "    await send({'type': 'http.response.body', 'body': b'asgi:' + client.encode()})\n")
    entry = tmp_path / "django_deploy_entry.py"
    entry.write_text(render("app_server/django_deploy_entry.py.j2", site))
    sys.path.insert(0, str(release))
    try:
        spec = importlib.util.spec_from_file_location(f"entry_{server}", entry)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(release))
        for name in ("mysite", "mysite.wsgi", "mysite.asgi"):
            sys.modules.pop(name, None)
    return module


def test_the_wsgi_entry_answers_with_the_release_id(tmp_path, monkeypatch):
    monkeypatch.delenv("DJANGO_RELEASE_ID", raising=False)
    entry = load_entry(tmp_path, "gunicorn")
    started = []
    environ = {"REMOTE_ADDR": "", "HTTP_X_REAL_IP": "203.0.113.9"}
    body = entry.application(environ, lambda status, headers, exc_info=None: started.append((status, headers)))
    assert list(body) == [b"wsgi"]
    assert environ["REMOTE_ADDR"] == "203.0.113.9"  # the webserver's word for the client's address
    assert started == [("200 OK", [("Content-Type", "text/plain"), ("X-Release-Id", "r7")])]
    assert os.environ["DJANGO_RELEASE_ID"] == "r7"


def test_the_asgi_entry_answers_with_the_release_id_and_passes_websockets(tmp_path, monkeypatch):
    monkeypatch.delenv("DJANGO_RELEASE_ID", raising=False)
    entry = load_entry(tmp_path, "asgi")

    def run(scope):
        sent = []

        async def send(message):
            sent.append(message)

        async def receive():
            return {"type": "http.request", "body": b""}

        asyncio.run(entry.application(scope, receive, send))
        return sent

    http = run({"type": "http", "path": "/", "headers": [(b"x-real-ip", b"203.0.113.9")]})
    assert http[0]["headers"] == [(b"content-type", b"text/plain"), (b"x-release-id", b"r7")]
    assert http[1]["body"] == b"asgi:203.0.113.9"  # the webserver's word for the client's address
    assert run({"type": "websocket", "path": "/ws/", "headers": [(b"x-real-ip", b"::1")]}) == [
        {"type": "websocket.accept", "client": "::1"}]


def test_gunicorn_is_installed_unless_the_project_brings_its_own():
    from deploys.djangoapp.site.app_server import brings_gunicorn, gunicorn_install_command

    assert gunicorn_install_command("/v/abc", "/opt/uv") == "/opt/uv pip install --quiet --python /v/abc/bin/python " \
        "gunicorn==27.0.1"
    assert brings_gunicorn(b"Django==5.2\nGunicorn==23.0.0\n")
    assert not brings_gunicorn(b"Django==5.2\ncelery==5.5.3\n")


def test_uwsgi_refuses_a_virtualenv_python_other_than_its_plugins():
    from deploys.djangoapp.site.app_server import uwsgi_python_problem

    other = settings(python_interpreter="/usr/bin/python3.13")
    problem = uwsgi_python_problem(other, "3.13.5", "3.11.2")
    assert problem.startswith("python_interpreter: /usr/bin/python3.13 is Python 3.13.5, but uWSGI's Python plugin")
    assert 'app_server "gunicorn"' in problem
    assert uwsgi_python_problem(other, "3.11.9", "3.11.2") is None
    assert uwsgi_python_problem(settings(app_server="gunicorn", python_interpreter="/usr/bin/python3.13"),
                                "3.13.5", "3.11.2") is None
    # A version for uv to provide: compared by what it asks for, before uv has found or installed it.
    assert uwsgi_python_problem(settings(python_interpreter="3.12"), "3.12", "3.11.2").startswith(
        "python_interpreter: asks for Python 3.12, but uWSGI's Python plugin runs Python 3.11.2")
    assert uwsgi_python_problem(settings(python_interpreter="3.11"), "3.11.2", "3.11.2") is None


def test_python_interpreter_is_a_path_or_a_version_for_uv():
    assert not settings(python_interpreter="/usr/bin/python3.11").python_from_uv
    for version in ("3.12", "3.12.4", "3.13"):
        site = settings(python_interpreter=version, app_server="gunicorn")
        assert site.python_from_uv and site.python_install_dir == f"{site.project_root}/python"


def drain(tmp_path, children_seconds: float, timeout: int) -> tuple[float, list[int]]:
    """Run drained_reload against a stand-in webserver: a shell whose children sleep
    `children_seconds`, its PID told by a stand-in systemctl. How long it took, and which of the
    children still ran when it returned."""
    import subprocess
    import time

    from deploys.djangoapp.site.app_server import drained_reload

    webserver = subprocess.Popen(["sh", "-c", f"sleep {children_seconds} & sleep {children_seconds} & wait"])
    try:
        time.sleep(0.2)  # its children started
        children = [int(pid) for pid in subprocess.run(
            ["grep", "-ls", f"^PPid:[[:space:]]*{webserver.pid}$"] + [f"/proc/{p}/status" for p in os.listdir("/proc")
                                                                      if p.isdigit()],
            capture_output=True, text=True).stdout.split("/")[2::3]]
        assert len(children) == 2
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        (bin_dir / "systemctl").write_text(f"#!/bin/sh\necho {webserver.pid}\n")
        (bin_dir / "systemctl").chmod(0o755)
        started = time.monotonic()
        subprocess.run(["sh", "-c", drained_reload("nginx", "true", timeout=timeout)], check=True,
                       env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
        took = time.monotonic() - started
        return took, [pid for pid in children if os.path.exists(f"/proc/{pid}") and webserver.poll() is None]
    finally:
        webserver.kill()
        webserver.wait()


def test_a_drained_reload_returns_once_the_webservers_old_workers_are_gone(tmp_path):
    took, still_running = drain(tmp_path, children_seconds=1.2, timeout=30)
    assert still_running == [] and took >= 0.8


def test_a_drained_reload_waits_no_longer_than_its_timeout(tmp_path):
    took, still_running = drain(tmp_path, children_seconds=30, timeout=1)
    assert len(still_running) == 2 and took < 3


def test_the_webserver_reload_is_drained_only_when_the_app_server_is_being_switched(monkeypatch):
    from deploys.djangoapp.site import app_server

    present = set()

    def existing(fact, paths):  # a host where the paths in `present` exist
        assert fact is app_server.ExistingPaths
        return [path for path in paths if path in present]

    monkeypatch.setattr(app_server, "fact_before_run", existing)
    gunicorn_site = settings(app_server="gunicorn")
    service = f"/etc/systemd/system/{gunicorn_site.uwsgi_service}.service"
    assert app_server.webserver_reload_command(gunicorn_site, "systemctl reload nginx") == "systemctl reload nginx"
    present.add(service)
    drained = app_server.webserver_reload_command(gunicorn_site, "systemctl reload nginx")
    assert drained.startswith("main=$(systemctl show -p MainPID --value nginx)") and "systemctl reload nginx &&" in drained
