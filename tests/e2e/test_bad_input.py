"""Bad input against a live host: each value is refused before anything changes on the host, and
the error names the variable."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import https_get, run_pyinfra
from tests.e2e.sources import example_source

pytestmark = pytest.mark.e2e

HOST_STATE = ("find /srv/www /etc/nginx /etc/uwsgi /etc/systemd/system -printf '%p %u %g %m %s %T@\\n' "
              "2>/dev/null | sort | sha256sum")
PEM_KEY = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"
PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

BAD_INPUT = [
    # (variable named in the error, --data values)
    ("webserver", {"webserver": "lighttpd"}),
    ("websiteproject", {"websiteproject": '""'}),
    ("websiteproject", {"websiteproject": "guest book; rm -rf /"}),
    ("django_source_folder", {"django_source_folder": "../../etc"}),
    ("uwsgi_number_workers", {"uwsgi_number_workers": "0"}),
    ("uwsgi_number_workers", {"uwsgi_number_workers": "many"}),
    ("site_key", {"site_certificate": PEM_CERTIFICATE}),
    ("site_certificate", {"site_certificate": "-----BEGIN CERTIFICATE-----\nMIIB", "site_key": PEM_KEY}),
    ("release_id", {"release_id": "2026/11/24"}),
    ("django_deployment_root_folder", {"django_deployment_root_folder": "srv/www"}),
    ("database", {"database": "mongodb"}),
    ("keep_releases", {"keep_releases": "0"}),
    ("django_settings_file", {"django_settings_file": "exampleapp/settings.py"}),
    ("url", {"url": "https://localhost/"}),
    ("django_environment_variables", {"database": "postgresql"}),
]


def test_bad_input_is_refused_before_anything_changes(live_host, tmp_path):
    host, fleet_file = live_host
    before = host.exec(HOST_STATE).stdout
    for variable, data in BAD_INPUT:
        refused = run_pyinfra(fleet_file, "deploys/all.py", data=data)
        assert refused.returncode != 0, (variable, refused.output)
        assert "invalid deploy settings, nothing was changed" in refused.output, (variable, refused.output)
        assert f"  - {variable}: " in refused.output, (variable, refused.output)
        assert refused.results == {}, variable
    assert host.exec(HOST_STATE).stdout == before
    assert https_get(host, "/").status_code == 200

    # A git ref that does not exist.
    repo = example_source(tmp_path / "repo", "repo")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=ci", "-c", "user.email=ci@localhost", "commit", "-qm",
                    "init", "--allow-empty"], check=True)
    refused = run_pyinfra(fleet_file, "deploys/release.py", data={
        "django_source_dir": "null", "django_git_repo": str(repo), "django_git_ref": "v9.9.9"})
    assert refused.returncode != 0 and "  - django_git_ref: 'v9.9.9' is not a commit" in refused.output
    assert host.exec(HOST_STATE).stdout == before
