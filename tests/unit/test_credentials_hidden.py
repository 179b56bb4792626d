"""Credentials stay out of sight: refusals and git's errors show them masked, and site_proxy
reaches apt, pip and uv through files only root reads, never a command line (every user of the
host sees those in `ps`, and sudo writes them to its log)."""

import os
import subprocess

import pytest

from deploys.djangoapp.site.app_server import gunicorn_install_command
from deploys.djangoapp.release.dependencies import DependencyPlan, install_commands
from deploys.djangoapp.host.host_prep import UV, UV_BINARY, tools_install_command
from deploys.djangoapp.release.build import virtualenv_commands
from deploys.djangoapp.host.proxy import APT_PROXY_CONF, PROXY_ENV, apt_proxy_content, proxy_env_content, uv_files
from deploys.djangoapp.settings import DeploySettingsError, problems
from deploys.djangoapp.release.source import _export_git, _git_failure
from tests.unit.sites import VALID, settings

SECRET = "s3cr@t-T0KEN"
PROXY = "http://deploy:s3cr%40t-T0KEN@proxy.internal:3128"


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(("variable", "value"), [
    ("backup_repository", f"s3:https://AKIA:{SECRET}@minio.internal/backups bucket"),
    ("acme_directory", f"https://acme:{SECRET}@ca.internal/directory?x"),
    ("acme_directory", f"https://{SECRET}@ca.internal/dir ectory"),
    ("django_git_ref", f"https://x:{SECRET}@git.internal/app.git"),
    ("site_proxy", f"deploy:{SECRET}@proxy.internal:3128"),
    ("site_proxy", f"http://deploy:{SECRET}@proxy.internal:3128/\n"),
    ("site_proxy", f'http://deploy:{SECRET}@proxy.internal:3128";\nAcquire::x "y'),
])
def test_a_refused_value_is_shown_without_its_credentials(variable, value):
    extra = {"backup_secrets": {"RESTIC_PASSWORD": "x"}} if variable == "backup_repository" else {}
    found_settings, found = problems({**VALID, variable: value, **extra})
    assert found_settings is None and len(found) == 1 and found[0].startswith(f"{variable}: "), found
    assert "T0KEN" not in found[0] and "s3cr" not in found[0], found


@pytest.mark.parametrize("proxy", ["http://proxy.internal:3128", "https://10.0.0.5:8080/", PROXY,
                                   "http://[2001:db8::1]:3128"])
def test_a_proxy_url_is_accepted(proxy):
    assert settings(site_proxy=proxy).site_proxy == proxy


def test_git_says_what_failed_without_the_token_of_the_repository_url():
    url = f"http://deploy:{SECRET}@127.0.0.1:9/app.git"  # nothing listens on port 9
    with pytest.raises(DeploySettingsError) as refused:
        _export_git(url, "main")
    message = str(refused.value)
    assert message.startswith("django_git_repo: cannot clone http://***@127.0.0.1:9/app.git: ") and "T0KEN" not in message
    error = subprocess.CalledProcessError(128, ["git", "archive"], stderr=f"fatal: cannot fetch {url}\n".encode())
    assert _git_failure("django_git_repo: cannot export", error) == (
        "django_git_repo: cannot export: fatal: cannot fetch http://***@127.0.0.1:9/app.git")


# ---------------------------------------------------------------- site_proxy on the host


FAKE_PROGRAM = """#!/bin/sh
echo "args: $*"
echo "http_proxy=$http_proxy https_proxy=$https_proxy HTTPS_PROXY=$HTTPS_PROXY"
"""


def fake_program(path):
    path.write_text(FAKE_PROGRAM)
    path.chmod(0o755)
    return path


def uv_program(tmp_path, proxy):
    """The uv program and proxy file of `proxy` written where uv_files says, below tmp_path."""
    binary = fake_program(tmp_path / "bin-uv")
    for host_file in uv_files(proxy, UV, str(binary)):
        path = tmp_path / host_file.path.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(host_file.content.replace(PROXY_ENV.encode(), str(tmp_path / PROXY_ENV.lstrip("/")).encode()))
        path.chmod(int(host_file.mode, 8))
    return tmp_path / UV.lstrip("/")


def run_clean(*command) -> str:
    done = subprocess.run(command, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, check=True)
    return done.stdout


def test_uv_runs_through_the_proxy_read_from_its_file(tmp_path):
    uv = uv_program(tmp_path, PROXY)
    shown = run_clean(str(uv), "pip", "install", "--python", "/x y/python", "django")
    assert shown == f"args: pip install --python /x y/python django\nhttp_proxy={PROXY} https_proxy={PROXY} HTTPS_PROXY={PROXY}\n"


def test_uv_runs_without_a_proxy_when_there_is_none(tmp_path):
    assert run_clean(str(uv_program(tmp_path, None)), "venv").splitlines()[1] == "http_proxy= https_proxy= HTTPS_PROXY="


def test_the_proxy_files_are_root_s_alone_and_uv_is_called_by_path():
    env_file, program = uv_files(PROXY, UV, UV_BINARY)
    assert (env_file.path, env_file.mode, env_file.user, env_file.secret) == (PROXY_ENV, "600", "root", True)
    assert (program.path, program.mode, program.user) == (UV, "755", "root") and PROXY.encode() not in program.content
    assert f'exec {UV_BINARY} "$@"' in program.content.decode()


def test_apt_reads_the_proxy_from_its_configuration(tmp_path):
    conf = tmp_path / "proxy.conf"
    conf.write_text(apt_proxy_content(PROXY))
    dumped = run_clean("apt-config", "-c", str(conf), "dump", "Acquire")
    assert f'Acquire::http::Proxy "{PROXY}";' in dumped and f'Acquire::https::Proxy "{PROXY}";' in dumped
    assert APT_PROXY_CONF.startswith("/etc/apt/apt.conf.d/")


def test_pip_installs_uv_through_the_proxy_of_the_file(tmp_path):
    venv, wheels = tmp_path / "tools", tmp_path / "wheels"
    (venv / "bin").mkdir(parents=True)
    fake_program(venv / "bin" / "python")
    (wheels / "pip-23.0.1-py3-none-any.whl").mkdir(parents=True)
    env_file = tmp_path / "proxy.env"
    env_file.write_text(proxy_env_content(PROXY))
    shown = run_clean("sh", "-c", tools_install_command(str(venv), "0.13.8", f"{wheels}/pip-*.whl", str(env_file)))
    assert f"http_proxy={PROXY} https_proxy={PROXY}" in shown


def test_no_command_the_deploys_run_carries_the_proxy():
    plan = DependencyPlan("requirements", "requirements.txt", b"", None, None)
    install = install_commands(plan, "/srv/www/mysite/releases/1", "/srv/venv", UV, ["django"])
    commands = [*virtualenv_commands("/srv/venv", "/usr/bin/python3", UV, install),
                gunicorn_install_command("/srv/venv", UV), tools_install_command("/opt/tools", "0.13.8")]
    assert not [command for command in commands if "proxy.internal" in command or "T0KEN" in command]
    assert all(UV in command for command in install)
    assert os.path.basename(UV) == "uv" and UV != UV_BINARY
