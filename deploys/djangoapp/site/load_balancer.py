"""The load balancer: Debian's HAProxy on the hosts of the `lb` group, in front of the web hosts.

    TLS       the site's name ends here: the given certificate (site_certificate/site_key) or a
              self-signed one; HTTP/2 and HTTP/1.1 to clients, HTTP redirected to HTTPS
    backends  every web host, on its private address and lb_backend_port (plain HTTP on the
              fleet's private network, as PostgreSQL and Redis are), checked each second as the
              deploy's own health check asks (the site's name; health_check_path): out after two
              failed checks, back after two that pass
    client    the client's address and HTTPS in X-Forwarded-For and X-Forwarded-Proto, set by the
              load balancer over any copy the client sent; the web hosts take them from the load
              balancers' addresses alone (their webserver's site)

The config is the kit's whole (one project per load balancer), written only when HAProxy accepts
it, and applied by a graceful reload (HAProxy's master starts new workers; the old ones finish
their connections).

    drain     a batch of web hosts about to switch gets no new request (HAProxy's runtime API:
              `set server ... state drain`; the other web hosts made ready first, so that one left
              drained by a failed run serves again), and the run waits until the requests in
              flight on it have ended (at most lb_drain_timeout; then it goes on, saying so: the
              app server's graceful reload still lets them finish)
    ready     the batch, switched and checked, takes requests again; the run waits until the
              load balancer's own checks see each of its hosts up

batch_after_batch adds them around what each batch of hosts does (a release's or a rollback's
switch, restart.py's reloads), on every load balancer, when other web hosts serve meanwhile (a
fleet switched all at once is not drained: it would serve no one)."""

from __future__ import annotations

from typing import Callable

from pyinfra import host, logger
from pyinfra.api import FactBase
from pyinfra.api.exceptions import OperationError
from pyinfra.operations import python

from ..core.callbacks import run_on_other_host
from ..core.context import only
from ..core.host_state import folders
from ..core.shell import q, wait_until
from ..core.units import refresh_service, tested_reload
from ..settings import DeployRefused, Settings
from ..settings.placement import LB
from .certificates import acme_certificate, no_acme_certificate, site_certificate
from .webserver import tested_config

# The first line of the config the kit writes, with the project's name after it.
MARK = "# django-deploy "


class ConfigProject(FactBase):
    """The project a kit-written config at `path` is for; "" for a config the kit did not write,
    None for no file."""

    def command(self, path: str) -> str:
        return f"if [ -e {q(path)} ]; then echo found; head -n 1 {q(path)}; fi"

    def process(self, output):
        if not output:
            return None
        first = output[1] if len(output) > 1 else ""
        return first[len(MARK):].split(":", 1)[0] if first.startswith(MARK) else ""


class Backends(FactBase):
    """The web hosts as a load balancer sees them now: name -> (state, last check), from HAProxy's
    runtime API; None when HAProxy does not answer."""

    def command(self, socket: str, backend: str) -> str:
        return (f"stat=$(echo 'show stat' | socat -t 5 stdio unix-connect:{q(socket)} 2>/dev/null) "
                "|| { echo unreachable; exit 0; }; "
                f"printf '%s\\n' \"$stat\" | awk -F, -v backend={q(backend)} "
                "'$1 == backend && $2 != \"BACKEND\" {print $2, $18, $37}'")

    def process(self, output):
        if output == ["unreachable"]:
            return None
        backends = {}
        for line in output:
            name, state, check = (line.split(" ", 2) + ["", ""])[:3]
            # "* " before the last check's result: the next one is under way.
            backends[name] = (state, check.removeprefix("* "))
        return backends


def lb_status(settings: Settings) -> list[str]:
    """status.py's lines of a load balancer: each web host's state and its last check."""
    if not settings.is_lb:
        return []
    found = host.get_fact(Backends, socket=settings.lb_admin_socket, backend=settings.lb_backend)
    if found is None:
        return ["warning: load balancer: HAProxy does not answer on its runtime API"]
    lines = [f"load balancer: {name} {state}{f' ({check})' if check else ''}" for name, (state, check) in found.items()]
    return lines + [f"warning: load balancer: {name} is {state}" for name, (state, _) in found.items()
                    if state != "UP"]


# Shell: `api COMMAND` sends COMMAND to HAProxy's runtime API (socat, at SOCKET) and prints the
# answer; it fails when HAProxy does not answer, or answers a `set` command with anything but an
# empty line (an unknown server, a wrong state), saying so.
RUNTIME_API = r"""api() { answer=$(printf '%s\n' "$1" | socat -t 5 stdio unix-connect:SOCKET) || return 1; case "$1" in set\ *) [ -z "$(printf %s "$answer" | tr -d '[:space:]')" ] || { echo "HAProxy: $1: $answer" >&2; return 1; };; *) printf '%s\n' "$answer";; esac; }"""


def runtime_api(socket: str) -> str:
    """Shell: the function `api` (RUNTIME_API) for HAProxy's runtime API at `socket`."""
    return RUNTIME_API.replace("SOCKET", q(socket))


def _servers(backend: str, servers: list[str], condition: str, total: str) -> str:
    """Shell: awk over the runtime API's `show stat` for the rows of these servers of the
    backend: `condition` is awk run on each, `total` at the end."""
    return (f"api 'show stat' | awk -F, -v backend={q(backend)} -v wanted={q(' '.join(servers))} "
            "'BEGIN {split(wanted, names, \" \"); for (i in names) want[names[i]] = 1} "
            f"$1 == backend && ($2 in want) {{{condition}}} END {{{total}}}'")


def drain_command(settings: Settings, batch: list[str], others: list[str]) -> str:
    """Shell, on a load balancer: the web hosts `others` ready, those of `batch` draining, then
    the wait until the batch has no request in flight (show stat's current sessions; at most
    lb_drain_timeout s, then on, saying so)."""
    backend, names = settings.lb_backend, ", ".join(batch)
    in_flight = _servers(backend, batch, "sum += $5", "print sum + 0")
    late = (f"echo 'requests still in flight on {names} after {settings.lb_drain_timeout} s (lb_drain_timeout): "
            "switching anyway; the app server'\\''s graceful reload lets them end'; break")
    return " && ".join([
        runtime_api(settings.lb_admin_socket),
        *[f"api {q(f'set server {backend}/{name} state ready')}" for name in others],
        *[f"api {q(f'set server {backend}/{name} state drain')}" for name in batch],
        wait_until(f'[ "$({in_flight})" = 0 ]', settings.lb_drain_timeout, late),
        f"echo {q(f'drained: {names}')}"])


def ready_command(settings: Settings, batch: list[str]) -> str:
    """Shell, on a load balancer: the web hosts of `batch` ready, and the wait until its checks see
    each of them up (within health_check_timeout, or the run fails naming them and their state)."""
    backend, names = settings.lb_backend, ", ".join(batch)
    all_up = _servers(backend, batch, 'if ($18 != "UP") down = 1', "exit down")
    states = _servers(backend, batch, 'print $2 ": " $18 " (" $37 ")"', "")
    late = (f"{{ echo {q(f'the load balancer does not see {names} up after {settings.health_check_timeout} s:')}; "
            f"{states}; }} >&2; exit 1")
    return " && ".join([
        runtime_api(settings.lb_admin_socket),
        *[f"api {q(f'set server {backend}/{name} state ready')}" for name in batch],
        wait_until(all_up, settings.health_check_timeout, late),
        f"echo {q(f'serving again: {names}')}"])


def _web_hosts(settings: Settings, batch: list[str]) -> tuple[list[str], list[str]]:
    """The web hosts of `batch`, and the others."""
    web = settings.fleet.hosts("web")
    return [name for name in batch if name in web], [name for name in web if name not in batch]


def batch_after_batch(settings: Settings, steps: Callable[[list[str], str], None], drained: bool = True) -> None:
    """The fleet's hosts in the batches a release switches them in (rolling_batch_size):
    `steps(batch, label)` adds what a batch does, `label` naming it in the steps' names; with
    `drained`, the batch's web hosts are drained on the load balancers first and put back after."""
    batches = settings.fleet.switch_batches(settings.rolling_batch_size)
    for number, batch in enumerate(host.loop(batches), 1):
        label = f" (batch {number} of {len(batches)})" if len(batches) > 1 else ""
        was_drained = drained and _drain_batch(settings, batch, label)
        steps(batch, label)
        if was_drained:
            _ready_batch(settings, batch, label)


def _drain_batch(settings: Settings, batch: list[str], label: str) -> bool:
    """Before what `batch` does (its switch, its reload): its web hosts drained on every load
    balancer (drain_command), asked by the batch's first web host, when the fleet has load
    balancers and other web hosts serve meanwhile. Whether it was (then _ready_batch follows)."""
    batch_web, others = _web_hosts(settings, batch)
    if not (settings.lb_addresses and batch_web and others):
        return False
    python.call(name=f"Drain {', '.join(batch_web)} on the load balancers{label}", function=on_load_balancers,
                settings=settings, command=drain_command(settings, batch_web, others),
                _if=only(host.name == batch_web[0]))
    return True


def _ready_batch(settings: Settings, batch: list[str], label: str) -> None:
    """After what a drained `batch` did: its web hosts back on every load balancer (ready_command)."""
    batch_web, _ = _web_hosts(settings, batch)
    python.call(name=f"{', '.join(batch_web)} back on the load balancers{label}", function=on_load_balancers,
                settings=settings, command=ready_command(settings, batch_web), _if=only(host.name == batch_web[0]))


def on_load_balancers(state, host, settings: Settings, command: str) -> None:
    """A python.call callback on a web host: `command` run on every load balancer of the fleet
    (over that host's own connection), what it printed shown; the step fails if it fails on any."""
    for name in settings.fleet.hosts(LB):
        balancer = state.inventory.get_host(name)
        done, output = run_on_other_host(state, balancer, command)
        for line in output.output_lines:
            logger.info(f"{balancer.print_prefix}{line}")
        if not done:
            raise OperationError(f"on the load balancer {name}: failed (its output is above)")


def config_test(settings: Settings) -> str:
    return f"haproxy -c -q -f {q(settings.lb_config)}"


def load_balancer(settings: Settings) -> None:
    """HAProxy (installed and started by the host prep) set up for the project on this load
    balancer, and reloaded when its config or certificate changed. A config of another project's
    is refused; Debian's own is replaced."""
    project = host.get_fact(ConfigProject, path=settings.lb_config)
    if project and project != settings.websiteproject:
        raise DeployRefused(f"host {host.name}: inventory group lb: this load balancer serves project {project} "
                            f"({settings.lb_config}); a load balancer serves one project; nothing was changed")
    folders(name=f"Folders of the load balancer ({settings.ssl_dir})",
            layout=[(settings.ssl_dir, "root", "root", "755")])
    certificate_files = site_certificate(settings)
    tested_config(settings, "haproxy/haproxy.cfg.j2", settings.lb_config, config_test(settings), tester="HAProxy")
    refresh_service(name="Reload haproxy", service="haproxy", inputs=[settings.lb_config, *certificate_files],
                    command=f"{config_test(settings)} && systemctl reload haproxy")
    # Now that HAProxy passes the ACME challenges on: a certificate a browser trusts, if asked for.
    if settings.uses_acme:
        acme_certificate(settings, reload_command=haproxy_reload(settings))
    else:
        no_acme_certificate(settings)


def haproxy_reload(settings: Settings) -> str:
    """Shell: a graceful reload of the running HAProxy if its config test passes (tested_reload)."""
    return tested_reload("haproxy", config_test(settings))
