"""The webserver's configs written only when it accepts them, and Apache's sites, modules and confs
turned on and off with its own tools (nginx needs no such tool: a link in sites-enabled)."""

from __future__ import annotations


from pyinfra import host
from pyinfra.api import operation
from pyinfra.facts.files import Link

from ..core.context import template
from ..core.host_files import install_tested_config
from ..core.shell import q
from ..settings import Settings


APACHE_ITEMS = {
    # kind: (enabled folder, file suffix, enable tool, disable tool)
    "module": ("mods-enabled", "load", "a2enmod", "a2dismod"),
    "site": ("sites-enabled", "conf", "a2ensite", "a2dissite"),
    "conf": ("conf-enabled", "conf", "a2enconf", "a2disconf"),
}


@operation()
def apache_enabled(kind: str, names: list[str], enabled: bool = True, tool: str | None = None):
    """Enable (or disable) Apache modules, sites or confs with Debian's a2en*/a2dis* tools, only
    those not in that state already. `tool` overrides the enable tool (the seed role's
    apache2_check_binary_name)."""
    folder, suffix, enable, disable = APACHE_ITEMS[kind]
    to_change = [name for name in names
                 if bool(host.get_fact(Link, path=f"/etc/apache2/{folder}/{name}.{suffix}")) != enabled]
    if not to_change:
        host.noop(f"apache {kind}s {', '.join(names)} already {'enabled' if enabled else 'disabled'}")
        return
    yield f"{q((tool or enable) if enabled else disable)} -q {' '.join(q(name) for name in to_change)}"


STAGING_DIR = "/etc/django-deploy/staged"


def staged_path(dest: str) -> str:
    """Where the staging copy of a webserver config lives."""
    return f"{STAGING_DIR}/{dest.strip('/').replace('/', '_')}"


def tested_config(settings: Settings, template_name: str, dest: str, test_command: str,
                  tester: str = "the webserver"):
    """Write a config of the webserver (or of `tester`) only if it accepts it. It is rendered to a
    staging copy first; when the config in place differs from it (a new version, or a hand edit), the copy is
    put in place and tested, and one the test rejects is taken back out (the error shown), so the
    running server keeps, and a restart finds, the previous config."""
    staged_copy = staged_path(dest)
    template(template_name, staged_copy, settings, mode="644")
    install_tested_config(name=f"Install {dest} if {tester} accepts it", staged=staged_copy, dest=dest,
                          test_command=test_command)
