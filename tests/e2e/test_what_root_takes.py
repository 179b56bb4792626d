"""What the deploys take as root on a live host is theirs: a folder of someone else's or a mount
point is refused before any change, and the deploy user's keys and sudo follow the settings both
ways without the run ever taking away its own login."""

from __future__ import annotations

import subprocess

import pytest

from tests import fleet
from tests.conftest import https_get, run_pyinfra

pytestmark = pytest.mark.e2e

STATE = ("find /srv /etc/nginx /etc/systemd/system /etc/sudoers.d /home -xdev -printf '%p %u %g %m %s %T@\\n' "
         "2>/dev/null | sort | sha256sum; cat /home/deployer/.ssh/authorized_keys 2>/dev/null; true")


def refused(run, *words: str) -> None:
    assert run.returncode != 0 and run.results == {}, run.output
    assert "nothing was changed" in run.output, run.output
    for line in words:
        assert line in run.output, (line, run.output)


def test_folders_the_kit_did_not_make_are_refused_before_any_change(live_host):
    host, fleet_file = live_host
    assert host.exec("cat /srv/www/guestbook/.django-deploy").stdout.startswith("This folder was made by")
    host.exec("mkdir -p /srv/www/notes && echo 'not the kit' > /srv/www/notes/index.html && "
              "mkdir -p /srv/backups/guestbook && mount -t tmpfs backups /srv/backups/guestbook")
    before = host.exec(STATE).stdout

    # Another project named after a folder the kit did not make: all.py would make it its own, and
    # remove.py delete it.
    refused(run_pyinfra(fleet_file, "deploys/all.py", data={"websiteproject": "notes"}),
            "websiteproject: the project root /srv/www/notes holds files the kit did not make")
    refused(run_pyinfra(fleet_file, "deploys/remove.py", data={"websiteproject": "notes", "confirm_remove": "notes"}),
            "websiteproject: the project root /srv/www/notes holds files the kit did not make")
    # A backup repository that is a disk of its own: the kit would give the whole disk to the backups.
    refused(run_pyinfra(fleet_file, "deploys/skeleton.py", data={
        "backup_repository": "/srv/backups/guestbook", "backup_secrets": '{"RESTIC_PASSWORD": "x"}'}),
        "backup_repository: the backup repository /srv/backups/guestbook is a mount point")

    assert host.exec(STATE).stdout == before
    assert host.exec("cat /srv/www/notes/index.html").stdout == "not the kit\n"
    assert https_get(host, "/").status_code == 200
    host.exec("umount /srv/backups/guestbook")


def test_the_deploy_users_keys_and_sudo_follow_the_settings(live_host, fleet_key, tmp_path):
    host, fleet_file = live_host
    own_key = fleet_key.with_suffix(".pub").read_text().strip()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "left-the-team", "-f",
                    str(tmp_path / "old")], check=True)
    old_key = (tmp_path / "old.pub").read_text().strip()

    def host_prep(fleet_file_, **data):
        return run_pyinfra(fleet_file_, "deploys/host_prep.py", data=data)

    made = host_prep(fleet_file, deploy_user="deployer", deploy_user_ssh_keys=f'["{own_key}", "{old_key}"]')
    assert made.returncode == 0, made.output
    def keys() -> list[str]:
        return [line for line in host.exec("cat /home/deployer/.ssh/authorized_keys").stdout.splitlines() if line]

    assert keys() == [own_key, old_key]
    # A key taken off the list leaves the host.
    kept = host_prep(fleet_file, deploy_user="deployer", deploy_user_ssh_keys=f'["{own_key}"]')
    assert kept.returncode == 0, kept.output
    assert keys() == [own_key]

    # Logged in as the deploy user, the run keeps its own sudo and keys: refused, nothing changed.
    host.data = {"ssh_user": "deployer", "_sudo": True}
    as_deployer = fleet.write_fleet_file(tmp_path / "deployer.json", fleet_key, [host])
    before = host.exec(STATE).stdout
    refused(host_prep(as_deployer), "deploy_user: this run logs in as deployer, whose passwordless sudo the deploys "
                                    "gave (/etc/sudoers.d/django-deploy-deployer) and deploy_user no longer names")
    refused(host_prep(as_deployer, deploy_user="deployer", deploy_user_ssh_keys="[]"),
            "deploy_user_ssh_keys: is empty, and this run logs in as deployer")
    assert host.exec(STATE).stdout == before

    # Logged in as root, deploy_user unset: the deployer keeps the account, loses its sudo.
    dropped = host_prep(fleet_file)
    assert dropped.returncode == 0, dropped.output
    assert host.exec("test -e /etc/sudoers.d/django-deploy-deployer", check=False).returncode != 0
    assert host.exec("id -un deployer").stdout.strip() == "deployer"
    assert host.exec("runuser -u deployer -- sudo -n true", check=False).returncode != 0
    again = host_prep(fleet_file)
    assert again.returncode == 0 and again.changed() == [], again.output


# A proxy that takes one connection, writes down what it was asked (with the login it was given)
# and closes: enough to see who came through it, and with what.
RECORDING_PROXY = r"""
import socket, sys
server = socket.create_server(("127.0.0.1", 3128))
server.settimeout(30)
connection, _ = server.accept()
with open(sys.argv[1], "w") as log:
    log.write(connection.recv(65536).decode(errors="replace").split("\r\n\r\n")[0].lower())
"""


def test_site_proxy_reaches_apt_and_uv_from_files_only_root_reads(live_host, fleet_key, tmp_path):
    host, fleet_file = live_host
    proxy = "http://deploy:s3cret-proxy-pass@127.0.0.1:3128"
    own_key = fleet_key.with_suffix(".pub").read_text().strip()
    made = run_pyinfra(fleet_file, "deploys/host_prep.py", data={
        "deploy_user": "deployer", "deploy_user_ssh_keys": f'["{own_key}"]', "site_proxy": proxy})
    assert made.returncode == 0, made.output
    # Through the deploy user's sudo, as the shipped inventories log in: host preparation and a
    # release (of the live source: nothing to build, uv's proxy file written as the settings say).
    host.data = {"ssh_user": "deployer", "_sudo": True}
    as_deployer = fleet.write_fleet_file(tmp_path / "deployer.json", fleet_key, [host])
    for deploy_file in ("deploys/host_prep.py", "deploys/release.py"):
        done = run_pyinfra(as_deployer, deploy_file, data={
            "deploy_user": "deployer", "deploy_user_ssh_keys": f'["{own_key}"]', "site_proxy": proxy})
        assert done.returncode == 0, done.output
        assert "s3cret" not in done.output

    for path in ("/etc/apt/apt.conf.d/90django-deploy-proxy", "/etc/django-deploy/proxy.env"):
        assert host.exec(f"stat -c '%U %G %a' {path}").stdout.split() == ["root", "root", "600"], path
    # sudo logged every command of the runs, and no command carried the proxy's password.
    sudo_log = host.exec("journalctl --no-pager _COMM=sudo").stdout
    assert "COMMAND=" in sudo_log and "s3cret" not in sudo_log
    assert host.exec("journalctl --no-pager | grep -c s3cret", check=False).stdout.strip() == "0"

    # apt and uv go through the proxy, with its login, read from those files.
    host.exec(f"cat > /tmp/proxy.py <<'PY'\n{RECORDING_PROXY}\nPY")
    login = "proxy-authorization: basic zgvwbg95onmzy3jldc1wcm94es1wyxnz"  # deploy:s3cret-proxy-pass

    def asked_of_proxy(command: str) -> str:
        host.exec("rm -f /tmp/proxy.log; nohup python3 /tmp/proxy.py /tmp/proxy.log > /dev/null 2>&1 & sleep 0.5")
        host.exec(command, check=False)
        host.exec("for _ in $(seq 50); do [ -e /tmp/proxy.log ] && break; sleep 0.1; done")
        return host.exec("cat /tmp/proxy.log").stdout

    apt_asked = asked_of_proxy("apt-get -o Acquire::Retries=0 update")
    assert apt_asked.startswith("get http://") and login in apt_asked, apt_asked
    uv_asked = asked_of_proxy("/opt/django-deploy-tools/uv pip install --dry-run --no-cache --python /usr/bin/python3 "
                              "--target /tmp/uv-target six")
    assert uv_asked.startswith("connect pypi.org:443") and login in uv_asked, uv_asked

    # No site_proxy: apt's configuration goes, and the proxy file holds no proxy.
    plain = run_pyinfra(fleet_file, "deploys/host_prep.py", data={
        "deploy_user": "deployer", "deploy_user_ssh_keys": f'["{own_key}"]'})
    assert plain.returncode == 0, plain.output
    assert host.exec("test -e /etc/apt/apt.conf.d/90django-deploy-proxy", check=False).returncode != 0
    assert "proxy=" not in host.exec("cat /etc/django-deploy/proxy.env").stdout
