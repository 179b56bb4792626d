"""What a release does when one of its operations fails on a host.

pyinfra stops a host at its first failed operation and has no `finally`: this callback is that
`finally`. It runs one cleanup command on the failed host (mark the new release failed unless it
went live, release the deploy lock if this run holds it), so no failure path leaves the lock.
"""

from __future__ import annotations

from pyinfra.api import State, StringCommand
from pyinfra.api.state import BaseStateCallback

# host name -> cleanup command (one pyinfra run per process).
_cleanups: dict[str, str] = {}


class ReleaseFailureCleanup(BaseStateCallback):
    @staticmethod
    def operation_host_error(state: State, host, op_hash, retry_count: int = 0, max_retries: int = 0):
        command = _cleanups.pop(host.name, None)
        if command is None:
            return
        sudo = {key: host.data.get(key) for key in ("_sudo", "_sudo_user") if host.data.get(key)}
        host.run_shell_command(StringCommand(command), print_output=True, **sudo)


def on_failure(state: State, host, command: str) -> None:
    """Run `command` on `host` if one of its operations fails from now on (once)."""
    if not any(isinstance(handler, ReleaseFailureCleanup) for handler in state.callback_handlers):
        state.add_callback_handler(ReleaseFailureCleanup())
    _cleanups[host.name] = command

