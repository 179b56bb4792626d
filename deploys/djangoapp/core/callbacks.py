"""What the kit's python.call callbacks share: running a command as their operation runs its own
(pyinfra hands a callback none of the operation's _sudo, _sudo_user, ...), and showing what it
printed with every secret value masked."""

from __future__ import annotations

from pyinfra import logger
from pyinfra.api.arguments import CONNECTOR_ARGUMENT_KEYS, pop_global_arguments
from pyinfra.api.exceptions import OperationError

from ..settings.environment import mask_credentials


def mask_secrets(text: str, secrets: dict[str, str]) -> str:
    """`text` with every secret value (and any URL's password) replaced by ***."""
    for value in sorted(secrets.values(), key=len, reverse=True):
        if len(value) >= 4:
            text = text.replace(value, "***")
    return mask_credentials(text)


def run_as_operation(host, command: str):
    """In a python.call callback: run `command` as the operation runs its commands (pyinfra hands a
    callback none of the operation's _sudo, _sudo_user, ...: they are taken from the operation
    here, so a sudo login works). pyinfra's (succeeded, output)."""
    arguments = host.current_op_global_arguments or {}
    return host.run_shell_command(command, **{key: arguments[key] for key in CONNECTOR_ARGUMENT_KEYS
                                              if key in arguments})


def run_on_other_host(state, other, command: str):
    """In a python.call callback: run `command` on another host of the inventory (a load balancer,
    from a web host's step), logged in and raised to root as the inventory says for that host
    (its _sudo, _sudo_user, ...). pyinfra's (succeeded, output)."""
    arguments, _ = pop_global_arguments(state, other, {})
    return other.run_shell_command(command, **{key: arguments[key] for key in CONNECTOR_ARGUMENT_KEYS
                                               if key in arguments})


def run_shown(state, host, command: str, secrets: dict[str, str], what: str) -> None:
    """A python.call callback: run `command` as the operation would (run_as_operation), show what
    it printed with secrets masked, fail if it did."""
    done, output = run_as_operation(host, command)
    for line in output.output_lines:
        logger.info(f"{host.print_prefix}{mask_secrets(line, secrets)}")
    if not done:
        raise OperationError(f"{what} failed (its output is above)")
