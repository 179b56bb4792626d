"""Day-2 commands on a live project: status, logs, a management command (manage), restart, and
the project's removal."""
