"""What a release or rollback does when one of its operations fails on a host.

pyinfra stops a host at its first failed operation and has no `finally`: this module is that
`finally`. A failure on one host stops the run on every host (FAIL_PERCENT = 0 in config.py: a
fleet switches as one, or not at all), and each host runs its cleanup command once: mark the new
release failed unless it went live, release the deploy lock if this run holds it. No failure
path leaves a lock behind. One host's cleanup may have to come before the others' (a rollback's
migration host puts the database forward before the others go back to the code that needs it).
"""

from __future__ import annotations

from typing import Callable

from pyinfra.api import State, StringCommand
from pyinfra.api.arguments import CONNECTOR_ARGUMENT_KEYS, pop_global_arguments
from pyinfra.api.state import BaseStateCallback

# host name -> {what it undoes: cleanup command}, until they have run (one pyinfra run per process).
_cleanups: dict[str, dict[str, str]] = {}
# The host whose cleanup runs before any other's, when one is named: a rollback's migration host
# migrates the database forward before any host goes back to the code that needs it.
_first: list[str] = []
# Hosts that failed before the first host's cleanup ran: theirs waits for it.
_waiting: list[str] = []
# Called once, at the run's first failure, after the cleanups (notifications.py).
_run_failure_callbacks: list[Callable[[], None]] = []


def login_arguments(state: State, host) -> dict:
    """How this run reaches root on `host` outside an operation: _sudo, _sudo_user, ... from the
    host's data or from the command line (`pyinfra --sudo` sets them in the config)."""
    arguments, _ = pop_global_arguments(state, host, {})
    return {key: arguments[key] for key in CONNECTOR_ARGUMENT_KEYS if key in arguments}


def _clean_up(state: State, host_name: str) -> None:
    commands = _cleanups.pop(host_name, None)
    if not commands:
        return
    command = "; ".join(commands.values())
    host = state.inventory.get_host(host_name)
    host.run_shell_command(StringCommand(command), print_output=True, **login_arguments(state, host))


def _first_pending() -> bool:
    return bool(_first) and _first[0] in _cleanups


def _clean_up_in_order(state: State, host_names: list[str]) -> None:
    """The cleanups of `host_names` that have not run, the first host's before the others'."""
    for name in sorted(host_names, key=lambda name: not (_first and name == _first[0])):
        _clean_up(state, name)


def _announce_failure() -> None:
    while _run_failure_callbacks:
        _run_failure_callbacks.pop(0)()


class ReleaseFailureCleanup(BaseStateCallback):
    @staticmethod
    def operation_host_error(state: State, host, op_hash, retry_count: int = 0, max_retries: int = 0):
        # The host's operation is over: its cleanup runs now, unless the first host's has not run
        # yet. Once that one has, the hosts that waited for it run theirs (their operations are
        # over too); the others run theirs when the run stops (_stop_every_host).
        if _first_pending() and host.name != _first[0]:
            _waiting.append(host.name)
        else:
            _clean_up_in_order(state, [host.name, *_waiting])
            _waiting.clear()
        _announce_failure()


def _stop_every_host(state: State) -> bool:
    """Called by pyinfra when a failure is about to stop the run (the failed operation is over on
    every host): the hosts that did not fail clean up too, and those that waited. True: let
    pyinfra stop the run."""
    _clean_up_in_order(state, [*_waiting, *(host.name for host in state.active_hosts)])
    _waiting.clear()
    _announce_failure()
    return True


def _watch(state: State) -> None:
    if not any(isinstance(handler, ReleaseFailureCleanup) for handler in state.callback_handlers):
        state.add_callback_handler(ReleaseFailureCleanup())
        state.should_raise_failed_hosts = _stop_every_host


def on_failure(state: State, host, command: str, first: bool = False, undoes: str = "the deploy") -> None:
    """Run `command` on `host` if an operation fails on any host from now on (once); with `first`,
    before any other host's (only one host may be first). A later command for what it `undoes`
    replaces an earlier one (a release after the skeleton, in all.py); for something else, it runs
    after it."""
    _watch(state)
    _cleanups.setdefault(host.name, {})[undoes] = command
    if first:
        _first[:] = [host.name]


def settle(state: State) -> None:
    """The run's work stands whatever fails from now on: no host undoes anything, nothing is
    announced as a failed release (a release live on every host, whose last step fails)."""
    _cleanups.clear()
    _first.clear()
    _waiting.clear()
    _run_failure_callbacks.clear()


def on_run_failure(state: State, callback: Callable[[], None]) -> None:
    """Call `callback` on the control machine once if an operation fails on any host from now on."""
    _watch(state)
    _run_failure_callbacks.append(callback)
