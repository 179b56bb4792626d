"""core/shell.py: the shell pieces every concern uses."""

from __future__ import annotations

import subprocess
import time

from deploys.djangoapp.core.shell import q, visible, wait_until


def sh(command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=30)


def test_wait_until_waits_for_ready_and_gives_up_at_its_deadline(tmp_path):
    flag = tmp_path / "ready"
    # Ready on the third try.
    done = sh(f"n=0; {wait_until(f'n=$((n + 1)); [ $n -ge 3 ]', 5, 'exit 1', pause=0.05)} && echo tried $n")
    assert done.returncode == 0 and done.stdout == "tried 3\n"
    # Never ready: the timeout's command ends it once the deadline passes (whole seconds of the
    # clock: 2 s from a time within a second wait more than 1 s).
    started = time.monotonic()
    done = sh(f"{wait_until(f'[ -e {q(str(flag))} ]', 2, 'echo late >&2; exit 1', pause=0.1)}; echo after")
    assert done.returncode == 1 and done.stderr == "late\n" and done.stdout == ""
    assert 1 <= time.monotonic() - started < 6
    # `break` goes on after the wait.
    assert sh(f"{wait_until('false', 0, 'break', pause=0.1)}; echo after").stdout == "after\n"
    # One command: after a failed step, it does not run at all.
    done = sh(f"false && {wait_until('false', 30, 'exit 1')}; echo skipped")
    assert done.stdout == "skipped\n"


def test_visible_writes_control_characters_out_and_keeps_tabs():
    assert visible("a\x1b[2Jb\tc\x7f") == "a\\x1b[2Jb\tc\\x7f"
