"""The deploy tools virtualenv: uv installed by Debian's pip wheel, with no pip of its own, run
with dash against a fake virtualenv and wheel folder."""

import subprocess
from pathlib import Path

from deploys.djangoapp.host.host_prep import (
    DEBIAN_PIP_WHEELS,
    BackgroundJob,
    UvVersion,
    background_command,
    tools_install_command,
    wait_command,
)

FAKE_PYTHON = """#!/bin/sh
echo "$@" >> "$(dirname "$0")/calls"
"""


def sh(command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=20)


def fake_venv(tmp_path):
    venv = tmp_path / "it's tools"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    return venv


def test_uv_is_installed_by_debians_pip_wheel_into_the_virtualenv_it_keeps(tmp_path):
    venv = fake_venv(tmp_path)
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for name in ("pip-22.3-py3-none-any.whl", "pip-23.0.1-py3-none-any.whl"):
        (wheels / name).mkdir()
    done = sh(tools_install_command(str(venv), "0.13.8", f"{wheels}/pip-*.whl"))
    assert done.returncode == 0, done.stderr
    # The existing virtualenv's Python runs pip from the newest wheel: uv, pinned, goes there.
    assert (venv / "bin" / "calls").read_text().split() == [
        f"{wheels}/pip-23.0.1-py3-none-any.whl/pip", "install", "--quiet", "--disable-pip-version-check",
        "--no-input", "uv==0.13.8"]


def test_the_virtualenv_gets_no_pip_of_its_own():
    command = tools_install_command("/opt/tools", "0.13.8")
    assert "--without-pip" in command and "ensurepip" not in command and DEBIAN_PIP_WHEELS in command


def test_a_missing_wheel_fails_the_install(tmp_path):
    venv = fake_venv(tmp_path)
    failed = sh(tools_install_command(str(venv), "0.13.8", f"{tmp_path}/none/pip-*.whl"))
    assert failed.returncode != 0 and not (venv / "bin" / "calls").exists()


def test_the_uv_version_is_read_from_its_answer():
    fact = UvVersion()
    assert fact.process(["uv 0.13.8 (x86_64-unknown-linux-gnu)"]) == "0.13.8"
    assert fact.process(["uv 0.13.8"]) == "0.13.8"
    assert fact.process([]) is None
    assert fact.process(["sh: 1: /opt/tools/bin/uv: not found"]) is None


def uv_job(tmp_path, timeout: int = 20) -> BackgroundJob:
    return BackgroundJob("uv", "installing uv", timeout, folder=str(tmp_path))


def test_a_background_job_detaches_and_its_end_is_waited_for(tmp_path):
    job = uv_job(tmp_path)
    started = sh(background_command("sleep 1; echo built", "run1", job))
    assert started.returncode == 0 and not Path(job.status).exists()  # back at once, still running
    waited = sh(wait_command("run1", job))
    assert waited.returncode == 0, waited.stderr
    assert not Path(job.status).exists() and not Path(job.log).exists()


def test_a_failed_job_fails_the_wait_with_its_output(tmp_path):
    job = uv_job(tmp_path)
    sh(background_command("echo no such package; exit 3", "run1", job))
    waited = sh(wait_command("run1", job))
    assert waited.returncode == 1
    assert "installing uv failed" in waited.stderr and "no such package" in waited.stderr


def test_the_end_of_another_runs_job_is_not_this_ones(tmp_path):
    job = uv_job(tmp_path, timeout=1)
    Path(job.status).write_text("run0 0\n")  # left by a killed run
    Path(job.log).write_text("half-way\n")
    waited = sh(wait_command("run1", job))
    assert waited.returncode == 1 and "did not end within 1 s" in waited.stderr and "half-way" in waited.stderr
