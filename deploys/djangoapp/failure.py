"""What a release or rollback does when one of its operations fails on a host.

pyinfra stops a host at its first failed operation and has no `finally`: this module is that
`finally`. A failure on one host stops the run on every host (FAIL_PERCENT = 0 in config.py: a
fleet switches as one, or not at all), and each host runs its cleanup command once: mark the new
release failed unless it went live, release the deploy lock if this run holds it. No failure
path leaves a lock behind.
"""

from __future__ import annotations

from typing import Callable

from pyinfra.api import State, StringCommand
from pyinfra.api.arguments import CONNECTOR_ARGUMENT_KEYS, pop_global_arguments
from pyinfra.api.state import BaseStateCallback

# host name -> cleanup command (one pyinfra run per process).
_cleanups: dict[str, str] = {}
# Called once, at the run's first failure, after the cleanups (notifications.py).
_run_failure_callbacks: list[Callable[[], None]] = []


def login_arguments(state: State, host) -> dict:
    """How this run reaches root on `host` outside an operation: _sudo, _sudo_user, ... from the
    host's data or from the command line (`pyinfra --sudo` sets them in the config)."""
    arguments, _ = pop_global_arguments(state, host, {})
    return {key: arguments[key] for key in CONNECTOR_ARGUMENT_KEYS if key in arguments}


def _clean_up(state: State, host) -> None:
    command = _cleanups.pop(host.name, None)
    if command is None:
        return
    host.run_shell_command(StringCommand(command), print_output=True, **login_arguments(state, host))


def _announce_failure() -> None:
    while _run_failure_callbacks:
        _run_failure_callbacks.pop(0)()


class ReleaseFailureCleanup(BaseStateCallback):
    @staticmethod
    def operation_host_error(state: State, host, op_hash, retry_count: int = 0, max_retries: int = 0):
        _clean_up(state, host)
        _announce_failure()


def _stop_every_host(state: State) -> bool:
    """Called by pyinfra when a failure is about to stop the run: the hosts that did not fail
    clean up too. True: let pyinfra stop the run."""
    for host in list(state.active_hosts):
        _clean_up(state, host)
    _announce_failure()
    return True


def _watch(state: State) -> None:
    if not any(isinstance(handler, ReleaseFailureCleanup) for handler in state.callback_handlers):
        state.add_callback_handler(ReleaseFailureCleanup())
        state.should_raise_failed_hosts = _stop_every_host


def on_failure(state: State, host, command: str) -> None:
    """Run `command` on `host` if an operation fails on any host from now on (once)."""
    _watch(state)
    _cleanups[host.name] = command


def on_run_failure(state: State, callback: Callable[[], None]) -> None:
    """Call `callback` on the control machine once if an operation fails on any host from now on."""
    _watch(state)
    _run_failure_callbacks.append(callback)
