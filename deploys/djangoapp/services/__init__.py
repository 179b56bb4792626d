"""What runs beside the site on a schedule or on an event: backups and their restore, scheduled
management commands, notifications."""
