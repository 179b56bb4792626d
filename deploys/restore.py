"""Restore a backup (--data restore_from=<snapshot id|latest> confirm_restore=<websiteproject>)."""

from deploys.djangoapp import restore

restore()
