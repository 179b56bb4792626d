"""Which inputs a service has not seen: files newer than its last refresh, run with dash."""

import os
import subprocess

from deploys.djangoapp.core.units import NewerThan


def newer(stamp, paths) -> list[str]:
    command = NewerThan().command(stamp=str(stamp), paths=[str(path) for path in paths])
    output = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout
    return NewerThan().process(output.splitlines())


def test_inputs_newer_than_the_last_refresh(tmp_path):
    config, secrets, missing = tmp_path / "app.ini", tmp_path / "secrets.py", tmp_path / "gone.conf"
    stamp = tmp_path / "stamp"
    config.write_text("a")
    secrets.write_text("b")
    # Never refreshed: everything that exists is news.
    assert newer(stamp, [config, secrets, missing]) == [str(config), str(secrets)]
    stamp.write_text("")
    os.utime(config, (1_000, 1_000))
    os.utime(secrets, (1_000, 1_000))
    os.utime(stamp, (2_000, 2_000))
    assert newer(stamp, [config, secrets]) == []
    # Written after the last refresh (say, by a run killed before it reloaded): news again.
    os.utime(secrets, (3_000, 3_000))
    assert newer(stamp, [config, secrets]) == [str(secrets)]
