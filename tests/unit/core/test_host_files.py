"""host_files: the look at the files on the host and the command that puts uploads in place, run
here against a temporary folder."""

import os
import stat
import subprocess
import time

import pytest

from deploys.djangoapp.core.host_files import FileStates, HostFile, put_in_place_command

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="sets owners: runs as root")


def look(paths: list[str]) -> dict:
    fact = FileStates()
    output = subprocess.run(["sh", "-c", fact.command(paths)], capture_output=True, text=True, check=True).stdout
    return fact.process(output.splitlines())


def put(tmp_path, files: list[HostFile]) -> str:
    """Stage the files' contents as the operation's uploads would be, then run the command."""
    staging = tmp_path / "staging"
    staging.mkdir(mode=0o700)
    for number, f in enumerate(files):
        (staging / str(number)).write_bytes(f.content)
    subprocess.run(["sh", "-c", put_in_place_command(files, str(staging))], check=True)
    return str(staging)


def test_files_put_in_place_read_back_as_they_should_be(tmp_path):
    script = HostFile(str(tmp_path / "new folder" / "run me"), b"#!/bin/sh\necho 'hi'\n", "755")
    key = HostFile(str(tmp_path / "site.key"), b"-----BEGIN PRIVATE KEY-----\n", "640", group="www-data")
    staging = put(tmp_path, [script, key])
    assert not os.path.exists(staging)
    assert look([script.path, key.path, str(tmp_path / "missing")]) == {script.path: script.state, key.path: key.state}
    assert stat.S_IMODE(os.stat(key.path).st_mode) == 0o640 and (tmp_path / "new folder" / "run me").read_bytes() == script.content
    assert not any(name.endswith(".new") for name in os.listdir(tmp_path))


def test_a_file_differing_in_content_or_mode_or_group_is_not_as_it_should_be(tmp_path):
    original = HostFile(str(tmp_path / "app.ini"), b"[uwsgi]\n", "644")
    put(tmp_path, [original])
    found = look([original.path])[original.path]
    assert found == original.state
    assert found != HostFile(original.path, b"[uwsgi]\nchanged\n", "644").state
    assert found != HostFile(original.path, original.content, "600").state
    assert found != HostFile(original.path, original.content, "644", group="www-data").state


def test_a_link_or_a_folder_is_not_taken_for_the_file(tmp_path):
    target = HostFile(str(tmp_path / "real"), b"x\n", "644")
    put(tmp_path, [target])
    os.symlink(target.path, tmp_path / "link")
    (tmp_path / "folder").mkdir()
    assert look([str(tmp_path / "link"), str(tmp_path / "folder")]) == {}


def test_the_command_never_names_a_content_and_gives_each_file_its_mode_before_its_name():
    secret = HostFile("/srv/www/site/secrets.py", b"SECRET_KEY = 'do-not-print-me'\n", "640", group="www-data")
    command = put_in_place_command([secret], "/var/lib/django-deploy/uploads/site")
    assert "do-not-print-me" not in command
    # install creates the copy readable by root alone, sets owner and mode, then it is renamed.
    assert command.startswith("mkdir -p /srv/www/site && install -m 640 -o root -g www-data /var/lib/django-deploy/uploads/site/0 "
                              "/srv/www/site/secrets.py.new && mv -f /srv/www/site/secrets.py.new "
                              "/srv/www/site/secrets.py")
    assert "chmod" not in command and "cp " not in command


def test_every_step_stages_its_uploads_apart_and_a_day_old_folder_goes(tmp_path, monkeypatch):
    from deploys.djangoapp.core import host_files

    # Two runs writing the same host-wide file at once each have their own folder.
    assert host_files.staging_dir() != host_files.staging_dir()
    assert host_files.staging_dir().startswith(host_files.STAGING_ROOT + "/")
    monkeypatch.setattr(host_files, "STAGING_ROOT", str(tmp_path / "uploads"))
    (tmp_path / "uploads" / "killed-run").mkdir(parents=True)
    (tmp_path / "uploads" / "running").mkdir()
    os.utime(tmp_path / "uploads" / "killed-run", (time.time() - 2 * 86400,) * 2)
    mine = host_files.staging_dir()
    subprocess.run(["sh", "-c", host_files.make_staging_command(mine)], check=True)
    assert sorted(os.listdir(tmp_path / "uploads")) == sorted(["running", os.path.basename(mine)])
    assert oct(os.stat(mine).st_mode & 0o777) == "0o700"


@pytest.mark.parametrize("secret", [False, True])
def test_a_diff_shows_a_files_lines_but_never_a_secret_ones(monkeypatch, secret):
    from deploys.djangoapp.core import host_files

    shown = []

    class Host:  # the host holds "workers = 2"
        @staticmethod
        def log(message, _log):
            shown.append(message)

        @staticmethod
        def get_fact(fact, path):
            return ["[uwsgi]", "workers = 2"]

    class Logger:
        @staticmethod
        def info(message, *args):
            shown.append(message % args)

    monkeypatch.setattr(host_files, "host", Host)
    monkeypatch.setattr(host_files, "logger", Logger)
    host_files.show_diff(HostFile("/etc/uwsgi/app.ini", b"[uwsgi]\nworkers = 3\n", "640", secret=secret), exists=True)
    text = "\n".join(shown)
    assert "Will modify" in text and "/etc/uwsgi/app.ini" in text
    assert ("workers = 3" in text and "workers = 2" in text) is not secret
    assert ("workers" in text) is not secret
