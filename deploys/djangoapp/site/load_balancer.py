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
their connections). A fleet's release drains each batch of web hosts on every load balancer
before it switches them (release/switch.py)."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import FactBase

from ..core.host_state import folders
from ..core.shell import q
from ..core.units import refresh_service
from ..settings import DeployRefused, Settings
from .certificates import site_certificate
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
            backends[name] = (state, check)
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
