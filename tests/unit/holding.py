"""Waiting until another process holds a lock, instead of sleeping and hoping it does."""

from __future__ import annotations

import subprocess
import time


def wait_until_held(path, timeout: float = 20.0) -> None:
    """Return once some process holds a flock(1) lock on `path`, shared or exclusive."""
    deadline = time.monotonic() + timeout
    while subprocess.run(["flock", "-n", "-x", str(path), "true"]).returncode == 0:
        assert time.monotonic() < deadline, f"no process took the lock {path} within {timeout} s"
        time.sleep(0.02)
