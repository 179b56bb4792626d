"""Services reloaded (or restarted) when, and only when, their inputs changed, even across a run
that was killed between writing a file and reloading the service.

Each service has a stamp file, touched right after each reload. An input (config, unit, secret
file, certificate) newer than the stamp is a change the running service has not seen: the next
run reloads it, whichever run wrote the file. With no stamp yet, the service is refreshed once.
"""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import FactBase, operation

q = shlex.quote

STAMP_DIR = "/var/lib/django-deploy/refreshed"


def stamp_path(service: str) -> str:
    return f"{STAMP_DIR}/{service}"


class NewerThan(FactBase):
    """The files of `paths` changed after `stamp` was touched (all that exist, when it was not)."""

    default = list

    def command(self, stamp: str, paths: list[str]) -> str:
        return (f"for path in {' '.join(q(path) for path in paths)}; do "
                f'[ -e "$path" ] || continue; '
                f'if [ ! -e {q(stamp)} ] || [ "$path" -nt {q(stamp)} ]; then echo "$path"; fi; done')

    def process(self, output):
        return [line.strip() for line in output if line.strip()]


@operation(is_idempotent=False)
def refresh_service(service: str, inputs: list[str], command: str):
    """Run `command` (a reload or restart of `service`) if any of `inputs` changed since the last
    time it ran, then stamp the service."""
    stamp = stamp_path(service)
    changed = host.get_fact(NewerThan, stamp=stamp, paths=inputs)
    if not changed:
        host.noop(f"{service} has seen its inputs")
        return
    yield f"{command} && mkdir -p {STAMP_DIR} && touch {q(stamp)}"
