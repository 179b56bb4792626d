"""What a release or rollback does when one of its operations fails on a host.

pyinfra stops a host at its first failed operation and has no `finally`: this module is that
`finally`. A failure on one host stops the run on every host (FAIL_PERCENT = 0 in config.py: a
fleet switches as one, or not at all), and each host runs its cleanup command once: mark the new
release failed unless it went live, release the deploy lock if this run holds it. No failure
path leaves a lock behind.
"""

from __future__ import annotations

from pyinfra.api import State, StringCommand
from pyinfra.api.state import BaseStateCallback

# host name -> cleanup command (one pyinfra run per process).
_cleanups: dict[str, str] = {}


def _clean_up(host) -> None:
    command = _cleanups.pop(host.name, None)
    if command is None:
        return
    sudo = {key: host.data.get(key) for key in ("_sudo", "_sudo_user") if host.data.get(key)}
    host.run_shell_command(StringCommand(command), print_output=True, **sudo)


class ReleaseFailureCleanup(BaseStateCallback):
    @staticmethod
    def operation_host_error(state: State, host, op_hash, retry_count: int = 0, max_retries: int = 0):
        _clean_up(host)


def _stop_every_host(state: State) -> bool:
    """Called by pyinfra when a failure is about to stop the run: the hosts that did not fail
    clean up too. True: let pyinfra stop the run."""
    for host in list(state.active_hosts):
        _clean_up(host)
    return True


def on_failure(state: State, host, command: str) -> None:
    """Run `command` on `host` if an operation fails on any host from now on (once)."""
    if not any(isinstance(handler, ReleaseFailureCleanup) for handler in state.callback_handlers):
        state.add_callback_handler(ReleaseFailureCleanup())
        state.should_raise_failed_hosts = _stop_every_host
    _cleanups[host.name] = command
