"""Maintenance mode (the deploy steps are in ../maintenance.py)."""

from __future__ import annotations

import ipaddress
import os
from typing import Any, Literal, Optional

from pydantic import BaseModel, field_validator

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
        text = value
        if "<" not in value:
            if not os.path.isfile(value):
                raise ValueError("must be HTML text or the path of an HTML file on this machine")
            with open(value, encoding="utf-8") as page:
                text = page.read()
        if len(text.encode()) > PAGE_LIMIT:
            raise ValueError(f"is larger than {PAGE_LIMIT // 1024} KiB: one self-contained page, please")
        return text

    @field_validator("maintenance_allow", mode="before")
    @classmethod
    def _maintenance_one_address(cls, value: Any) -> Any:
        # `--data maintenance_allow=203.0.113.7`: one address, as typed.
        return [value] if isinstance(value, str) else value

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
