"""Maintenance mode (the deploy steps are in site/maintenance.py)."""

from __future__ import annotations

import ipaddress
from typing import Any, Literal, Optional

from pydantic import BaseModel, field_validator

from .checks import one_or_many, text_or_file

# A page is sent whole with each 503: keep it a page, not a site.
PAGE_LIMIT = 256 * 1024


class MaintenanceInputs(BaseModel):
    maintenance: Optional[Literal["on", "off", "during_migrations"]] = None
    maintenance_page: Optional[str] = None
    maintenance_allow: list[str] = []

    @field_validator("maintenance_page")
    @classmethod
    def _maintenance_page(cls, value: Optional[str]) -> Optional[str]:
        if value is None:
            return None
        text = text_or_file(value, "<", "HTML")
        if len(text.encode()) > PAGE_LIMIT:
            raise ValueError(f"is larger than {PAGE_LIMIT // 1024} KiB: one self-contained page, please")
        return text

    @field_validator("maintenance_allow", mode="before")
    @classmethod
    def _maintenance_one_address(cls, value: Any) -> Any:
        return one_or_many(value)  # `--data maintenance_allow=203.0.113.7`

    @field_validator("maintenance_allow")
    @classmethod
    def _maintenance_networks(cls, value: list[str]) -> list[str]:
        networks = []
        for entry in value:
            try:
                networks.append(str(ipaddress.ip_network(entry, strict=False)))
            except ValueError:
                raise ValueError(f"entries must be IP addresses or networks such as 203.0.113.0/24 (got {entry!r})")
        return networks
