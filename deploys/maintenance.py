"""Maintenance page on or off: --data maintenance=on (or off)."""

from deploys.djangoapp import maintenance_mode

maintenance_mode()
