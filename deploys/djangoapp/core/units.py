"""Services reloaded (or restarted) when, and only when, their inputs changed, even across a run
that was killed between writing a file and reloading the service.

Each service has a stamp file, touched right after each reload. An input (config, unit, secret
file, certificate) newer than the stamp is a change the running service has not seen: the next
run reloads it, whichever run wrote the file. With no stamp yet, the service is refreshed once.
"""

from __future__ import annotations


from pyinfra import host
from pyinfra.api import FactBase, operation
from pyinfra.operations import server, systemd
from pyinfra.operations.util import any_changed

from .context import fact_before_run
from .host_files import ExistingPaths
from .shell import each_path, q

STAMP_DIR = "/var/lib/django-deploy/refreshed"


def stamp_path(service: str) -> str:
    return f"{STAMP_DIR}/{service}"


class NewerThan(FactBase):
    """The files of `paths` changed after `stamp` was touched (all that exist, when it was not)."""

    default = list

    def command(self, stamp: str, paths: list[str]) -> str:
        return each_path(paths, f'if [ -e "$path" ] && {{ [ ! -e {q(stamp)} ] || [ "$path" -nt {q(stamp)} ]; }}; '
                                'then echo "$path"; fi')

    def process(self, output):
        return [line.strip() for line in output if line.strip()]


def stamps_command(services: list[str]) -> str:
    """Shell: the services' stamps touched, after a reload or restart of them (they have seen
    their inputs)."""
    return f"mkdir -p {STAMP_DIR} && touch {' '.join(q(stamp_path(service)) for service in services)}"


def tested_reload(service: str, test: str) -> str:
    """Shell: a graceful reload of `service` if it runs and `test` (its config test) passes, noted
    as seen by refresh_service (so that a run after certbot's deploy hook does not reload again)."""
    return (f"if systemctl is-active -q {service}; then {test} && systemctl reload {service} "
            f"&& {stamps_command([service])}; fi")


def unit_paths(service: str) -> list[str]:
    """The unit files a service may have: its .service, a .socket when systemd holds its socket, a
    .timer when systemd starts it on a schedule."""
    return [f"/etc/systemd/system/{service}.{kind}" for kind in ("service", "socket", "timer")]


def reload_units(*written) -> None:
    """systemd told of changed unit files: one daemon-reload, only when any of the steps that
    wrote them (`written`) changed something."""
    systemd.daemon_reload(name="Reload systemd units", _if=any_changed(*written))


def timer_on(timer: str, service_step, timer_step) -> None:
    """A timer whose service and timer files the steps wrote: systemd told when they changed, the
    timer running and enabled, and restarted when its own file changed (a new schedule)."""
    reload_units(service_step, timer_step)
    systemd.service(name=f"Start and enable {timer}", service=timer, running=True, enabled=True)
    systemd.service(name=f"Restart {timer} (new schedule)", service=timer, restarted=True, _if=timer_step.did_change)


def remove_units(services: list[str]) -> None:
    """Stop, disable and remove the units (service, and socket if any) of these services, where
    they are installed, with their refresh stamps."""
    if not services:
        return
    present = fact_before_run(ExistingPaths, paths=[path for service in services for path in unit_paths(service)])
    for service in services:
        units = [path for path in unit_paths(service) if path in present]
        if units:
            starters = " ".join(q(path.rsplit("/", 1)[1]) for path in units if not path.endswith(".service"))
            server.shell(name=f"Stop and remove {service}", commands=[
                # What starts the service first (its socket, its timer), then the service: stopping a
                # oneshot that is running cancels its start job, an error while it does stop.
                *([f"systemctl disable --now {starters}"] if starters else []),
                f"systemctl disable {q(service)}.service 2>/dev/null || true",
                f"systemctl stop {q(service)}.service || ! systemctl is-active -q {q(service)}.service",
                f"rm -f {' '.join(q(path) for path in units)} {q(stamp_path(service))}",
                "systemctl daemon-reload"])


@operation(is_idempotent=False)
def refresh_service(service: str, inputs: list[str], command: str):
    """Run `command` (a reload or restart of `service`) if any of `inputs` changed since the last
    time it ran, then stamp the service."""
    stamp = stamp_path(service)
    changed = host.get_fact(NewerThan, stamp=stamp, paths=inputs)
    if not changed:
        host.noop(f"{service} has seen its inputs")
        return
    yield f"{command} && {stamps_command([service])}"
