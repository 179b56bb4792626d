"""Apache's sites, modules and confs turned on and off with its own tools (nginx needs no such
tool: a link in sites-enabled)."""

from __future__ import annotations


from pyinfra import host
from pyinfra.api import operation
from pyinfra.facts.files import Link

from ..core.shell import q


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
