"""Peak resident memory of the app server and of Celery after 1,000 requests, per app server:
the VmHWM of each process of the service (master and workers), summed, read from /proc on the
host. Shared pages are counted in each process that maps them, so the sum is an upper bound."""

from __future__ import annotations

import http.client
import ssl
import time

from bench.figures import memory_figure, parent_pids, process_tree, summed_vmhwm_kib
from bench.load import Load

REQUESTS = 1000
TASKS = 50  # Celery tasks queued alongside the requests, so that the workers have run some


def service_tree(host, service: str) -> list[int]:
    """The main process of a systemd service and all its descendants on the host."""
    main = host.exec(f"systemctl show -p MainPID --value {service}").stdout.strip()
    if not main.isdigit() or main == "0":
        raise RuntimeError(f"{host.name}: {service} runs no process (MainPID {main!r})")
    stats = host.exec("cat /proc/[0-9]*/stat 2>/dev/null", check=False).stdout
    return process_tree(parent_pids(stats), int(main))


def peak_memory_kib(host, service: str) -> tuple[int, int]:
    """(summed VmHWM in KiB, processes) of the service's processes."""
    pids = service_tree(host, service)
    statuses = host.exec("for pid in " + " ".join(map(str, pids)) +
                         "; do echo \"== $pid\"; cat /proc/$pid/status 2>/dev/null; done").stdout
    return summed_vmhwm_kib(statuses)


def queue_tasks(port: int, count: int) -> int:
    """POST `count` note tasks to the example app; returns how many were accepted (202)."""
    context = ssl._create_unverified_context()
    accepted = 0
    connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)
    for index in range(count):
        connection.request("POST", "/tasks/note/", body=f"text=bench+{index}",
                           headers={"Host": "localhost", "Content-Type": "application/x-www-form-urlencoded"})
        response = connection.getresponse()
        response.read()
        accepted += response.status == 202
    connection.close()
    return accepted


NOTES = ("/srv/www/guestbook/bin/manage shell -c "
         "'from guestbook.models import Note; print(Note.objects.count())'")


def tasks_done(host, count: int, timeout: float = 60) -> int:
    """Wait until the workers wrote `count` notes (the app's tasks each write one); how many they wrote."""
    deadline = time.monotonic() + timeout
    while True:
        written = int(host.exec(NOTES).stdout.strip().splitlines()[-1])
        if written >= count or time.monotonic() > deadline:
            return written
        time.sleep(1)


def memory(bench, bare: str, project: dict, app_servers: list[str]):
    """One host per app server holding every role of `project` (PostgreSQL, Celery), each made
    from a bare host by all.py; then 1,000 requests (pages and assets, `bench.clients` clients)
    and TASKS Celery tasks; then the peaks."""
    for server in app_servers:
        (host,), fleet_file = bench.start(bare, data={**project, "app_server": server})
        bench.deploy(fleet_file, "deploys/all.py")
        service = "uwsgi-guestbook" if server == "uwsgi" else "gunicorn-guestbook"
        accepted = queue_tasks(host.https_port, TASKS)
        load = Load(host.https_port, bench.clients, request_limit=REQUESTS)
        load.start()
        load.wait()
        written = tasks_done(host, accepted)
        app_kib, app_processes = peak_memory_kib(host, service)
        celery_kib, celery_processes = peak_memory_kib(host, "celery-guestbook")
        bench.stop_all()
        requests = load.total + load.assets
        failed = load.failed + load.assets_failed
        bench.row(f"peak resident memory (VmHWM summed), app_server {server}",
                  f"{service}: {memory_figure(app_kib, app_processes)}; celery-guestbook: "
                  f"{memory_figure(celery_kib, celery_processes)}",
                  f"after {requests} requests (pages and assets; {failed} failed) and {TASKS} Celery tasks "
                  f"({accepted} accepted, {written} run)")
