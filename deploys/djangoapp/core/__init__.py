"""What every concern stands on: the run's settings and templates (context), files written whole
(host_files), systemd units (units), the deploy lock and migration lock (lock), what a failed run
undoes (failure), the audit log, the kit's folders being its own (own_folders), what python.call
callbacks share (callbacks), facts of releases and folders (host_state) and small shell pieces
(shell)."""
