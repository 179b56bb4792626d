"""The project's deploy lock: one run at a time changes a project on a host.

The lock is a folder holding who took it (holder.json) and the taking run's token, renamed into
place whole (take_command). release.py, rollback.py, skeleton.py, restart.py, remove.py and restore.py take it (a backup
only waits for it to be free: backups.py); a failed run releases it (failure.py), only if it holds it. A second run fails at once naming the holder, or,
with `--data lock_wait=SECONDS`, waits that long for it. A lock left by a killed run is broken
only when asked (release_break_lock), and by one run only.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import uuid
from datetime import datetime, timezone
from typing import Optional

from pyinfra import host, state
from pyinfra.api import FactBase, operation

from ..settings import Settings
from . import failure
from .shell import q, wait_until

# One token per run: the lock it takes is released only by it.
RUN_TOKEN = uuid.uuid4().hex
OPERATOR = f"{getpass.getuser()}@{socket.gethostname()}"


class DeployLock(FactBase):
    """Who holds the deploy lock of a project (the holder.json of its lock folder), or None."""

    def command(self, lock_dir: str) -> str:
        return f"cat {q(lock_dir)}/holder.json 2>/dev/null || true"

    def process(self, output):
        text = "\n".join(output).strip()
        try:
            return json.loads(text) if text else None
        except ValueError:
            return {"operator": "unknown (unreadable holder.json)"}


def lock_holder(purpose: str) -> dict:
    """What the deploy lock records: this run, who runs it, from where, since when, for what."""
    return {"token": RUN_TOKEN, "operator": OPERATOR, "machine": socket.gethostname(), "pid": os.getpid(),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "release": purpose}


def describe_lock_holder(holder: dict, this_machine: str) -> str:
    """Who holds the lock, and whether that run looks gone."""
    description = (f"{holder.get('operator', 'unknown')} (pid {holder.get('pid', '?')}), "
                   f"since {holder.get('started', '?')}, for release {holder.get('release', '?')}")
    if holder.get("machine") == this_machine and isinstance(holder.get("pid"), int):
        try:
            os.kill(holder["pid"], 0)
        except ProcessLookupError:
            return description + " - stale: that run has ended"
        except PermissionError:
            pass
        return description + " - that run is still going"
    return description + " - it may be a run on another machine, or a killed one"


def fail(message: str) -> str:
    """A command that stops the operation with `message` for the operator."""
    return f"echo {q(message)} >&2; exit 1"


def break_command(lock_dir: str, stale_token: str) -> str:
    """Shell: remove a stale lock, if it is still the one that was seen (`stale_token`). Breakers
    take turns through a second lock folder, so two runs breaking one stale lock cannot both win:
    the second finds a fresh lock (another token) and leaves it."""
    breaking = f"{lock_dir}.breaking"
    return (f"mkdir {q(breaking)} 2>/dev/null || {{ {fail('another run is breaking the deploy lock right now')}; }}; "
            f'if [ "$(cat {q(lock_dir)}/token 2>/dev/null)" = {q(stale_token)} ]; then '
            f"echo 'breaking the deploy lock of a previous run' >&2; rm -rf {q(lock_dir)}; fi; rmdir {q(breaking)}")


def wait_while(busy: str, lock_dir: str, wait: int, what: str = "the lock of this project") -> str:
    """Shell: while the command `busy` succeeds, wait, for up to `wait` seconds; then fail naming
    the lock's holder."""
    held = f"echo \"another deploy holds {what}: $(cat {q(lock_dir)}/holder.json 2>/dev/null)\" >&2; exit 1"
    return wait_until(f"! {{ {busy}; }}", wait, held, pause=1)


def take_command(lock_dir: str, holder: dict, wait: int, what: str = "the lock of this project") -> str:
    """Shell: take the lock, waiting up to `wait` seconds for another run to release it. The lock
    is written whole beside its place, then renamed into it in one step (rename(2) of a folder
    onto a folder that holds anything fails): a run killed on the way leaves no lock without its
    holder, which no run could break (an empty one, left so by an earlier version, is taken)."""
    staged = f"{lock_dir}.taking"
    return (f'staged=$(mktemp -d {q(staged)}.XXXXXX) && trap \'rm -rf "$staged"\' EXIT && chmod 755 "$staged" && '
            f"printf '%s\\n' {q(json.dumps(holder, sort_keys=True))} > \"$staged/holder.json\" && "
            f"printf '%s\\n' {q(holder['token'])} > \"$staged/token\" && "
            + wait_while(f'! mv -T "$staged" {q(lock_dir)} 2>/dev/null', lock_dir, wait, what))


def release_lock_command(lock_dir: str, token: str) -> str:
    """Remove the lock if, and only if, this run holds it."""
    return f'if [ "$(cat {q(lock_dir)}/token 2>/dev/null)" = {q(token)} ]; then rm -rf {q(lock_dir)}; fi'


def let_go_if_command(lock_dir: str, token: str, changed: str, message: str) -> str:
    """Shell: under the lock, when the test `changed` finds what the run was planned on changed
    meanwhile, the lock is released and the run stops with `message`."""
    return f"if {changed}; then {release_lock_command(lock_dir, token)}; {fail(message)}; fi"


def expect_live_command(lock_dir: str, link: str, expected: Optional[str], token: str) -> str:
    """Shell: under the lock, `link` must still point where it did when the run was planned;
    otherwise another run changed the project meanwhile and this one stops (lock released)."""
    return let_go_if_command(lock_dir, token, f'[ "$(readlink {q(link)})" != {q(expected or "")} ]',
                             "the live release changed while this run was being planned or waited for the lock "
                             "(another deploy): run it again; nothing was changed")


def held_lock_commands(lock_dir: str, holder: dict, wait: int = 0, link: Optional[str] = None,
                       expected_live: Optional[str] = None, then: Optional[str] = None) -> str:
    """Shell, one program (one round trip): take the lock (take_command); with `link`, check it
    still points at `expected_live` (expect_live_command); then run `then` under the lock."""
    steps = [take_command(lock_dir, holder, wait)]
    if link is not None:
        steps.append(expect_live_command(lock_dir, link, expected_live, holder["token"]))
    if then:
        steps.append(f"{{ {then}; }}")
    return " && ".join(steps)


@operation(is_idempotent=False)
def take_deploy_lock(lock_dir: str, holder: dict, break_lock: bool, wait: int = 0, link: Optional[str] = None,
                     expected_live: Optional[str] = None, then: Optional[str] = None):
    """Take the project's deploy lock, or fail naming who holds it (at once, or after `wait`
    seconds). With `link`, what `link` points at must still be `expected_live` once the lock is
    held: what the run decided from it still holds. `then`: a command to run under the lock in
    the same step (a failure of it fails the step, the lock held: the failure cleanup runs)."""
    held = host.get_fact(DeployLock, lock_dir=lock_dir)
    if held and held.get("token") == holder["token"]:
        host.noop("this run holds the deploy lock")
        return
    if held and not break_lock and not wait:
        description = describe_lock_holder(held, holder["machine"])
        yield fail(f"another deploy holds the lock of this project: {description}. Wait for it to end (or run "
                   "with --data lock_wait=SECONDS); if it is stale, run again with --data release_break_lock=true")
        return
    if held and break_lock:
        yield break_command(lock_dir, str(held.get("token", "")))
    yield held_lock_commands(lock_dir, holder, wait, link, expected_live, then)


@operation(is_idempotent=False)
def release_deploy_lock(lock_dir: str, token: str):
    yield release_lock_command(lock_dir, token)


def hold_lock(settings: Settings, purpose: str, on_failure: str = "", check_live: bool = False,
              expected_live: Optional[str] = None, then: Optional[str] = None, cleanup_first: bool = False) -> None:
    """Take the deploy lock for the rest of this deploy; if any operation fails from here on, run
    `on_failure` (when this run holds the lock; with `cleanup_first`, before any other host's
    cleanup) and release it. With `check_live`, the live release must still be `expected_live` (a
    release folder, None: none) once the lock is held. `then`: a command run under the lock in the
    same step."""
    check = {"link": settings.current_link, "expected_live": expected_live} if check_live else {}
    take_deploy_lock(name="Take the deploy lock", lock_dir=settings.lock_dir, holder=lock_holder(purpose),
                     break_lock=settings.release_break_lock, wait=settings.lock_wait, then=then, **check)
    holds = f'[ "$(cat {q(settings.lock_dir)}/token 2>/dev/null)" = {q(RUN_TOKEN)} ]'
    failure.on_failure(state, host, (f"if {holds}; then {on_failure}; fi; " if on_failure else "")
                       + release_lock_command(settings.lock_dir, RUN_TOKEN), first=cleanup_first)


def let_go(settings: Settings) -> None:
    """Release the deploy lock at the end of a deploy."""
    release_deploy_lock(name="Release the deploy lock", lock_dir=settings.lock_dir, token=RUN_TOKEN)


def under_migration_lock(lock: str, command: str) -> str:
    """Shell: `command` (migrations) holding the migration lock exclusively: scheduled jobs that
    run hold it shared (schedules.py), as does a backup while it dumps the database (a dump's
    table locks would make a migration's ALTER wait, and every query of the site queue behind
    it), so they finish first, and new ones wait; the run says when it waits. The lock's folder
    is root's alone; flock keeps the lock to itself (-o): no process the command starts (the app's
    code, as the app user) inherits it and could hold it past the migrations."""
    waiting = ("waiting for the scheduled commands or the backup's database dump that hold the migration lock "
               "to end")
    return (f"install -d -m 700 {q(os.path.dirname(lock))} && "
            f"{{ flock -n -o {q(lock)} true || echo {q(waiting)}; }} && flock -o {q(lock)} sh -c {q(command)}")
