"""site_proxy on the hosts: apt, pip and uv reach the network through it, and read it from files
only root reads, never from a command line (which every user of the host sees in `ps`, and sudo
writes to its log).

    APT_PROXY_CONF   apt's Acquire::http(s)::Proxy (with site_proxy only)
    PROXY_ENV        http_proxy and its kin, as sh reads them (no variable without site_proxy)
    uv_script        what the deploys run as uv: it reads PROXY_ENV, then runs uv
"""

from __future__ import annotations

from typing import Optional

from ..core.host_files import HostFile
from ..core.shell import q

APT_PROXY_CONF = "/etc/apt/apt.conf.d/90django-deploy-proxy"
PROXY_ENV = "/etc/django-deploy/proxy.env"
HEADER = "# site_proxy, written by the deploys (host_prep.py, release.py): readable by root alone.\n"


def proxy_env_content(proxy: Optional[str]) -> str:
    """PROXY_ENV: the variables curl, pip and uv read, in both spellings."""
    names = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY") if proxy else ()
    return HEADER + "".join(f"{name}={q(proxy)}\n" for name in names)


def apt_proxy_content(proxy: str) -> str:
    """APT_PROXY_CONF (site_proxy is checked: no quotes or spaces in it)."""
    return HEADER + f'Acquire::http::Proxy "{proxy}";\nAcquire::https::Proxy "{proxy}";\n'


def load_proxy_env(path: str = PROXY_ENV) -> str:
    """Shell: the variables of the proxy file `path` exported to what runs next (none when there
    is no such file yet: a host prepared before it)."""
    return f"if [ -e {q(path)} ]; then set -a && . {q(path)} && set +a; fi"


def uv_script(binary: str, env_file: str = PROXY_ENV) -> str:
    """The program the deploys call uv: uv (`binary`) with the proxy's variables."""
    return (f"#!/bin/sh\n# uv through site_proxy, read from {env_file} (root's alone), never given on a "
            f"command line.\n{load_proxy_env(env_file)}\nexec {q(binary)} \"$@\"\n")


def uv_files(proxy: Optional[str], uv: str, binary: str) -> list[HostFile]:
    """The proxy's variables and the uv program `uv` that reads them."""
    return [HostFile(PROXY_ENV, proxy_env_content(proxy).encode(), "600", secret=True),
            HostFile(uv, uv_script(binary).encode(), "755")]
