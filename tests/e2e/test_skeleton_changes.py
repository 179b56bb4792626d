"""Changes to a live host's skeleton: a deploy user with sudo takes over from root (every deploy
file through its sudo login), a config the webserver rejects is taken back out, and the
webserver can be switched both ways."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import testinfra

from tests import fleet
from tests.conftest import REPO, https_get, run_pyinfra
from tests.e2e.conftest import DEPLOY_USER, deploy_user_data, live_release, manage
from tests.e2e.sources import example_source

pytestmark = pytest.mark.e2e

SITE = "/etc/nginx/sites-available/guestbook.conf"
CONFLICT = "/etc/nginx/conf.d/zz-conflict.conf"


@pytest.mark.long(minutes=4)
def test_every_deploy_file_works_through_a_sudo_login(live_host, fleet_key, tmp_path):
    """The shipped inventories' way: the deploy user that host_prep.py makes (every live image has
    it) logs in and reaches root through sudo (ssh_user + _sudo), for every deploy file, day-2
    commands and backups too."""
    host, fleet_file = live_host
    deploy_user = deploy_user_data(fleet_key)
    host.data = {"ssh_user": DEPLOY_USER, "_sudo": True}
    as_deployer = fleet.write_fleet_file(tmp_path / "deployer.json", fleet_key, [host])
    again = run_pyinfra(as_deployer, "deploys/all.py", data=deploy_user)
    assert again.returncode == 0, again.output
    assert again.changed() == [], again.output

    # A release through sudo, secrets included (uploaded through a private temporary file), and
    # backups to a local folder.
    secrets = ('{"DJANGO_SECRET_KEY": "deployer-test-key-0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b", '
               '"CANARY_SECRET": "sudo-canary"}')
    data = {"django_environment_variables": secrets, "backup_repository": "/srv/backups/guestbook",
            "backup_secrets": '{"RESTIC_PASSWORD": "sudo-restic-password"}', **deploy_user}

    def run(deploy_file: str, **more):
        done = run_pyinfra(as_deployer, deploy_file, data={**data, **more})
        assert done.returncode == 0, done.output
        return done

    run("deploys/all.py", django_source_dir=str(example_source(tmp_path / "v2", "v2")), release_id="v2")
    assert https_get(host, "/").headers["X-Release-Id"] == "v2"
    system = testinfra.get_host(f"docker://{host.container}")
    secret_file = system.file("/srv/www/guestbook/secrets.py")
    assert "sudo-canary" in secret_file.content_string
    assert (secret_file.user, secret_file.group, secret_file.mode) == ("root", "django-guestbook", 0o640)
    assert host.exec("grep -rl sudo-canary /tmp", check=False).stdout == ""

    managed = run("deploys/manage.py", manage="add_note 'written through sudo'")
    assert "written through sudo" in https_get(host, "/").text, managed.output
    backed_up = run("deploys/backup.py")
    assert "last backup:" in backed_up.output and " ok" in backed_up.output, backed_up.output
    manage(host, "add_note", "'after the backup'")
    restored = run("deploys/restore.py", restore_from="latest", confirm_restore="guestbook")
    page = https_get(host, "/").text
    assert "written through sudo" in page and "after the backup" not in page, restored.output
    run("deploys/maintenance.py", maintenance="on")
    assert https_get(host, "/").status_code == 503
    run("deploys/maintenance.py", maintenance="off")
    run("deploys/restart.py")
    assert "v2" in run("deploys/status.py").output
    run("deploys/logs.py")
    run("deploys/release.py", django_source_dir=str(example_source(tmp_path / "v3", "v3")), release_id="v3")
    run("deploys/rollback.py")
    assert https_get(host, "/").headers["X-Release-Id"] == "v2"
    # A dry run's migration gate: the source uploaded and judged through sudo, then gone.
    dry = run_pyinfra(as_deployer, "deploys/release.py", extra=("--dry",), data={
        **data, "django_source_dir": str(example_source(tmp_path / "v4", "v4", mood_migration=True)),
        "release_id": "v4"})
    assert dry.returncode == 0, dry.output
    assert "migration gate (dry run): the 1 pending operations are safe while the live release serves" in dry.output
    assert host.exec("ls -d /tmp/django-deploy-gate.* 2>/dev/null", check=False).stdout == ""
    for deploy_file in ("deploys/host_prep.py", "deploys/skeleton.py"):
        assert run(deploy_file).changed() == []
    run("deploys/remove.py", confirm_remove="guestbook")
    assert host.exec("test -e /srv/www/guestbook", check=False).returncode != 0


def test_a_config_the_webserver_rejects_is_taken_back_out(live_host):
    host, fleet_file = live_host
    # The site on the host differs from what the deploy renders (a hand edit): the next run
    # installs and tests the rendered site again.
    host.exec(f"echo '# edited by hand' >> {SITE}")
    previous = host.exec(f"cat {SITE}").stdout
    # And another config on the host declares the site's TLS session cache with another size: a
    # real nginx error ("conflicts with already declared size") once the rendered site goes in.
    host.exec(f"echo 'ssl_session_cache shared:guestbook_tls:5m;' > {CONFLICT}")

    rejected = run_pyinfra(fleet_file, "deploys/skeleton.py")
    assert rejected.returncode != 0
    assert f"the webserver rejected the new {SITE}: the previous one stays" in rejected.output
    assert "conflicts with already declared size" in rejected.output, rejected.output
    assert host.exec(f"cat {SITE}").stdout == previous
    assert https_get(host, "/").status_code == 200

    # With the conflict gone, the rendered site goes in.
    host.exec(f"rm {CONFLICT}")
    accepted = run_pyinfra(fleet_file, "deploys/skeleton.py")
    assert accepted.returncode == 0, accepted.output
    assert "# edited by hand" not in host.exec(f"cat {SITE}").stdout
    assert https_get(host, "/").status_code == 200


def test_switching_the_webserver_both_ways(live_host):
    host, fleet_file = live_host
    v1 = live_release(host)
    system = testinfra.get_host(f"docker://{host.container}")

    to_apache = run_pyinfra(fleet_file, "deploys/all.py", data={"webserver": "apache2"})
    assert to_apache.returncode == 0, to_apache.output
    page = https_get(host, "/")
    assert page.status_code == 200 and page.headers["Server"] == "Apache"
    assert page.headers["X-Release-Id"] == v1
    assert not system.service("nginx").is_running and not system.service("nginx").is_enabled
    assert system.service("apache2").is_enabled

    # Apache's own config test guards its site too: with another config on the host broken (a
    # directive no loaded module knows), a hand-edited site is not replaced, Apache's error is
    # shown, and the site keeps serving; once that config is fixed, the rendered site goes in.
    apache_site, broken = "/etc/apache2/sites-available/guestbook.conf", "/etc/apache2/conf-enabled/zz-left-over.conf"
    host.exec(f"echo '# edited by hand' >> {apache_site} && echo 'CacheQuickHandler off' > {broken}")
    previous = host.exec(f"cat {apache_site}").stdout
    rejected = run_pyinfra(fleet_file, "deploys/skeleton.py", data={"webserver": "apache2"})
    assert rejected.returncode != 0
    assert f"the webserver rejected the new {apache_site}: the previous one stays" in rejected.output
    assert "Invalid command 'CacheQuickHandler'" in rejected.output, rejected.output
    assert host.exec(f"cat {apache_site}").stdout == previous
    assert https_get(host, "/").status_code == 200
    host.exec(f"rm {broken}")
    accepted = run_pyinfra(fleet_file, "deploys/skeleton.py", data={"webserver": "apache2"})
    assert accepted.returncode == 0, accepted.output
    assert "# edited by hand" not in host.exec(f"cat {apache_site}").stdout

    # Maintenance under Apache: the page for everyone, but the site for an address in
    # maintenance_allow (the test client reaches the host through the Docker gateway).
    client = host.exec("awk '$2 != \"127.0.0.1\" { address = $2 } END { print address }' "
                       "/var/log/apache2/other_vhosts_access.log").stdout.strip()
    assert client
    apache = {"webserver": "apache2"}
    assert run_pyinfra(fleet_file, "deploys/maintenance.py", data={**apache, "maintenance": "on"}).returncode == 0
    assert https_get(host, "/").status_code == 503
    allowed = run_pyinfra(fleet_file, "deploys/skeleton.py", data={**apache, "maintenance_allow": client})
    assert allowed.returncode == 0, allowed.output
    assert https_get(host, "/").status_code == 200
    elsewhere = run_pyinfra(fleet_file, "deploys/skeleton.py", data={**apache, "maintenance_allow": "192.0.2.0/24"})
    assert elsewhere.returncode == 0, elsewhere.output
    assert https_get(host, "/").status_code == 503
    assert run_pyinfra(fleet_file, "deploys/maintenance.py", data={**apache, "maintenance": "off"}).returncode == 0
    assert https_get(host, "/").status_code == 200

    to_nginx = run_pyinfra(fleet_file, "deploys/all.py", data={"webserver": "nginx"})
    assert to_nginx.returncode == 0, to_nginx.output
    page = https_get(host, "/")
    assert page.status_code == 200 and page.headers["Server"] == "nginx"
    assert not system.service("apache2").is_running and not system.service("apache2").is_enabled


def app_sees(host, name: str, value: str) -> bool:
    """Whether the site's app processes have `value` as `name` in their environment (the example
    app answers a digest, never the value)."""
    answer = https_get(host, f"/environment/{name}/").json()
    return answer["sha256"] == hashlib.sha256(value.encode()).hexdigest()


def wait_until_app_sees(host, name: str, value: str, why: str) -> None:
    deadline = time.monotonic() + 30
    while not app_sees(host, name, value):
        assert time.monotonic() < deadline, why
        time.sleep(0.5)


def test_a_changed_environment_reaches_the_app_on_a_graceful_reload(live_host):
    host, fleet_file = live_host
    master = host.exec("systemctl show -p MainPID --value uwsgi-guestbook").stdout.strip()
    plain, secret = "on $HOME %n @(x) 'q'", "s3cret \"$(id)\" %% \\ end"
    changed = run_pyinfra(fleet_file, "deploys/skeleton.py", data={
        "django_webapplication_additional_environment_settings": json.dumps({"PROBE_FLAG": plain}),
        "django_environment_variables": json.dumps({
            "DJANGO_SECRET_KEY": "local-fleet-only-4d1f0b7e2a9c46c8b7a1e6f3d5c2b8a0e9f7d6c5b4a3", "PROBE_SECRET": secret}),
    })
    assert changed.returncode == 0, changed.output
    wait_until_app_sees(host, "PROBE_SECRET", secret, "the reloaded app does not have the new secret")
    assert app_sees(host, "PROBE_FLAG", plain)
    # Graceful: the same master, which kept its socket.
    assert host.exec("systemctl show -p MainPID --value uwsgi-guestbook").stdout.strip() == master
    assert https_get(host, "/").status_code == 200


def test_a_run_killed_before_the_reload_leaves_it_to_the_next(live_host):
    """Killed after the environment file changed and before uWSGI reloaded: the next run, with
    nothing left to write, still reloads (the file is newer than uWSGI's last reload)."""
    host, fleet_file = live_host
    data = ["--data", "django_webapplication_additional_environment_settings=" + json.dumps({"PROBE_FLAG": "v2"})]
    run = subprocess.Popen([sys.executable, "-m", "pyinfra", "-y", *data, "inventories/local.py", "deploys/skeleton.py"],
                           cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           env={**os.environ, "DEPLOY_FLEET_FILE": str(fleet_file)})
    seen = []
    for line in run.stdout:
        seen.append(line)
        if "Starting operation: App skeleton | Secrets in" in line:  # the environment file is written
            run.send_signal(signal.SIGKILL)
            break
    run.wait(timeout=60)
    assert run.returncode == -signal.SIGKILL, "".join(seen)
    assert '"PROBE_FLAG": "v2"' in host.exec("cat /srv/www/guestbook/environment.json").stdout
    assert not app_sees(host, "PROBE_FLAG", "v2")

    # The killed run held the deploy lock: the next one names it stale, and breaks it when asked.
    environment = {"django_webapplication_additional_environment_settings": json.dumps({"PROBE_FLAG": "v2"})}
    stale = run_pyinfra(fleet_file, "deploys/skeleton.py", data=environment)
    assert stale.returncode != 0 and "stale: that run has ended" in stale.output, stale.output
    again = run_pyinfra(fleet_file, "deploys/skeleton.py", data={**environment, "release_break_lock": "true"})
    assert again.returncode == 0, again.output
    assert not any(name.startswith("App skeleton | Write the app's environment") for name in again.changed())  # written already
    wait_until_app_sees(host, "PROBE_FLAG", "v2", "the next run did not reload uWSGI")
    # And a run after that has nothing left to do.
    settled = run_pyinfra(fleet_file, "deploys/skeleton.py", data={
        "django_webapplication_additional_environment_settings": json.dumps({"PROBE_FLAG": "v2"})})
    assert settled.returncode == 0 and settled.changed() == [], settled.output
