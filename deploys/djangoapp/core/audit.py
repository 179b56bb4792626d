"""The project's audit log on each host (`<project_root>/audit.jsonl`, root's alone): one JSON line
per run of a deploy file that changed the project there: when (the host's clock), who (the
operator and machine the run came from), what (the deploy file, a detail) and how it ended.
status.py shows the last entries.

Releases and rollbacks record a failure too, from their failure cleanup; skeleton.py records a
run only when one of its operations changed something (the deploy lock's own steps aside), so a
second run that changes nothing leaves the log as it is.
"""

from __future__ import annotations

import json
from typing import Callable

from pyinfra import host, state
from pyinfra.operations import server

from ..settings import Settings
from .lock import OPERATOR
from .shell import q

SHOWN = 8  # entries status.py shows
# Steps that leave a host as they found it: a lock taken and released.
LOCK_STEPS = ("Take the deploy lock", "Release the deploy lock", "Take the db host lock", "Release the db host lock")


def audit_command(settings: Settings, deploy: str, detail: str, outcome: str) -> str:
    """Shell: append one entry, stamped with the host's time, to the audit log (made root's alone)."""
    entry = json.dumps({"operator": OPERATOR, "deploy": deploy, "detail": detail, "outcome": outcome})
    path = q(settings.audit_file)
    return (f"umask 077 && printf '{{\"time\": \"%s\", %s\\n' \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\" "
            f"{q(entry[1:])} >> {path}")


def record(settings: Settings, deploy: str, detail: str, _if: Callable[[], bool] | None = None) -> None:
    """The deploy's last operation: it ended well."""
    server.shell(name=f"Audit log: {deploy} {detail}", commands=[audit_command(settings, deploy, detail, "ok")],
                 **({"_if": _if} if _if else {}))


def failure_command(settings: Settings, deploy: str, detail: str) -> str:
    """Shell for a failure cleanup: the entry of a run that failed (only where the project is)."""
    return f"if [ -d {q(settings.project_root)} ]; then {audit_command(settings, deploy, detail, 'failed')}; fi"


def changed_anything() -> Callable[[], bool]:
    """`_if`: whether an operation of this run changed something on this host (the locks' own
    steps aside), asked when the operation runs, after the others."""
    name = host.name

    def changed() -> bool:
        this_host = next(candidate for candidate in state.ops if candidate.name == name)
        return any(data.operation_meta.is_complete() and data.operation_meta.did_change()
                   for op_hash, data in state.ops[this_host].items()
                   if not any(step in op_name for op_name in state.op_meta[op_hash].names for step in LOCK_STEPS))
    return changed


def last_entries_command(settings: Settings) -> str:
    """Shell (status.py): the last entries, one line each."""
    return (f"if [ -f {q(settings.audit_file)} ]; then echo 'audit log (last {SHOWN}):'; "
            f"tail -n {SHOWN} {q(settings.audit_file)} | python3 -c 'import json, sys\n"
            "for line in sys.stdin:\n"
            "    e = json.loads(line)\n"
            "    print(\"  \", e[\"time\"], e[\"operator\"], e[\"deploy\"], e[\"detail\"], e[\"outcome\"])'; fi")
