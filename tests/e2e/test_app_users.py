"""One user per project: two projects on one host keep to themselves, and a host whose app ran as
www-data (the kit's default once) moves to the project's own user, and back, with every row kept."""

from __future__ import annotations

import shlex

import pytest

from tests.conftest import https_get, run_pyinfra
from tests.e2e.conftest import APP_USER, ROOT, manage, under_load
from tests.e2e.sources import example_source

pytestmark = pytest.mark.e2e

OTHER = {"websiteproject": "otherbook", "url": "otherbook.localhost"}
OTHER_USER = "django-otherbook"
OTHER_ROOT = "/srv/www/otherbook"


def can(host, user: str, command: str) -> bool:
    return host.exec(f"runuser -u {user} -- sh -c {shlex.quote(command)}", check=False).returncode == 0


def connects(socket_path: str) -> str:
    return f"python3 -c 'import socket; socket.socket(socket.AF_UNIX).connect(\"{socket_path}\")'"


def test_two_projects_on_one_host_keep_to_themselves(live_host, tmp_path):
    host, fleet_file = live_host
    other = run_pyinfra(fleet_file, "deploys/all.py",
                        data={**OTHER, "django_source_dir": example_source(tmp_path / "other", "other")})
    assert other.returncode == 0, other.output
    assert https_get(host, "/", server_name="otherbook.localhost").status_code == 200
    assert https_get(host, "/").status_code == 200

    projects = {APP_USER: ROOT, OTHER_USER: OTHER_ROOT}
    for user, root in projects.items():
        project = root.rsplit("/", 1)[1]
        own = {"secrets": f"cat {root}/secrets.py", "database": f"ls {root}/shared/db",
               "socket": connects(f"/run/uwsgi-{project}/uwsgi.sock")}
        assert all(can(host, user, command) for command in own.values()), user
        for other_user, other_root in projects.items():
            if other_user == user:
                continue
            other_project = other_root.rsplit("/", 1)[1]
            for what, command in {
                "secrets": f"cat {other_root}/secrets.py",
                "TLS key": f"cat /etc/nginx/ssl/{other_project}.key",
                "database": f"ls {other_root}/shared/db",
                "release": f"cat {other_root}/current/manage.py",
                "socket": connects(f"/run/uwsgi-{other_project}/uwsgi.sock"),
            }.items():
                assert not can(host, user, command), f"{user} reaches {other_project}'s {what}"
        # Nor its own TLS key: only the webserver's master (root) reads it.
        assert not can(host, user, f"cat /etc/nginx/ssl/{project}.key")


def test_a_host_moves_to_the_projects_own_user_and_back_keeping_every_row(live_host, tmp_path):
    host, fleet_file = live_host
    manage(host, "add_note", "'written as the project user'")
    upload = f"{ROOT}/shared/media/proof.txt"
    host.exec(f"runuser -u {APP_USER} -- sh -c 'echo an upload > {upload}'")

    def runs_as(user: str) -> None:
        workers = host.exec("ps -o user= -C uwsgi | sort -u").stdout.split()
        assert workers == [user], workers
        for path in (f"{ROOT}/shared/db", f"{ROOT}/shared/db/guestbook.sqlite3", upload):
            assert host.exec(f"stat -c '%U %G' {path}").stdout.strip() == f"{user} {user}", path
        live = host.exec(f"stat -L -c '%G' {ROOT}/current").stdout.strip()
        assert live == user
        page = https_get(host, "/")
        assert page.status_code == 200 and "written as the project user" in page.text
        assert https_get(host, "/static/guestbook/site.css").status_code == 200

    with under_load(host) as answers:
        to_www_data = run_pyinfra(fleet_file, "deploys/all.py", data={"uwsgi_user": "www-data"})
    assert to_www_data.returncode == 0, to_www_data.output
    assert "Move the app's files from django-guestbook:django-guestbook to www-data:www-data" in to_www_data.output
    runs_as("www-data")
    print(f"answers while moving to www-data: {sorted(set(map(str, answers)))} of {len(answers)}")

    # A release before the skeleton moved the host back: refused, naming what to run.
    refused = run_pyinfra(fleet_file, "deploys/release.py",
                          data={"django_source_dir": example_source(tmp_path / "early", "early"), "release_id": "early"})
    assert refused.returncode != 0
    assert "the app runs as www-data here and the settings say django-guestbook: run deploys/skeleton.py" in refused.output

    v2 = {"django_source_dir": example_source(tmp_path / "v2", "v2"), "release_id": "v2"}
    with under_load(host) as answers:
        back = run_pyinfra(fleet_file, "deploys/all.py", data=v2)
    assert back.returncode == 0, back.output
    runs_as(APP_USER)
    assert https_get(host, "/").headers["X-Release-Id"] == "v2"
    print(f"answers while moving back: {sorted(set(map(str, answers)))} of {len(answers)}")
    again = run_pyinfra(fleet_file, "deploys/all.py", data=v2)
    assert again.returncode == 0 and again.changed() == [], again.output
