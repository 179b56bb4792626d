"""Where a release, rollback or failed run is announced (the sending is in services/notifications.py)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, field_validator

from .checks import one_or_many

WEBHOOK = re.compile(r"^https?://[^\s/?#]+(/[^\s]*)?$")


class NotificationInputs(BaseModel):
    deploy_notify_url: list[str] = []

    @field_validator("deploy_notify_url", mode="before")
    @classmethod
    def _notifications_one_url(cls, value: Any) -> Any:
        return one_or_many(value)  # `--data deploy_notify_url=https://...`

    @field_validator("deploy_notify_url")
    @classmethod
    def _notifications_webhooks(cls, value: list[str]) -> list[str]:
        # The URLs are not echoed: a webhook's path is often its secret (Slack's are).
        bad = [str(number) for number, url in enumerate(value, 1) if not WEBHOOK.fullmatch(url)]
        if bad:
            raise ValueError(f"entry {', '.join(bad)} is not an http:// or https:// URL")
        return value
