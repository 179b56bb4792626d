"""Where a host stands in a fleet of several (the fleet's plan is in placement.py)."""

from __future__ import annotations

import ipaddress
from typing import Optional

from pydantic import BaseModel, field_validator

from .checks import Port, PositiveCount, Seconds


class FleetInputs(BaseModel):
    private_address: Optional[str] = None
    migration_host: Optional[str] = None
    rolling_batch_size: Optional[PositiveCount] = None
    lb_backend_port: Port = 8080
    lb_drain_timeout: Seconds = 30

    @field_validator("private_address")
    @classmethod
    def _ip_address(cls, value: Optional[str]) -> Optional[str]:
        if value is None:
            return None
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise ValueError(f"must be an IP address on the fleet's private network (got {value!r})") from None
