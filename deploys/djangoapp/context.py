"""What every deploy function needs: this host's validated settings and the template helper."""

from __future__ import annotations

from pathlib import Path

from pyinfra import host, inventory
from pyinfra.operations import files

from .settings import Settings, validate_inventory

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"

_validated: dict[int, dict[str, Settings]] = {}


def current_settings() -> Settings:
    """This host's settings. The first call of a run validates every host of the inventory, so one
    error lists all the problems of all the hosts, raised before any operation is added."""
    key = id(inventory)
    if key not in _validated:
        _validated[key] = validate_inventory(inventory.get_active_hosts())
    return _validated[key][host.name]


def proxy_environment(settings: Settings) -> dict[str, str]:
    """The environment that sends apt, pip and uv through `site_proxy`, when one is set."""
    if not settings.site_proxy:
        return {}
    return {name: settings.site_proxy for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")}


def template(name: str, dest: str, settings: Settings, mode: str, user="root", group="root", **context):
    """Render templates/<name> to `dest` on the host, with `s` bound to the settings."""
    return files.template(
        name=f"Write {dest}",
        src=str(TEMPLATES / name),
        dest=dest,
        mode=mode,
        user=user,
        group=group,
        s=settings,
        jinja_env_kwargs={"trim_blocks": True, "lstrip_blocks": True},
        **context,
    )
