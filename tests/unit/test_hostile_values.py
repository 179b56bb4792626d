"""Hostile values, generated: whatever a user sets arrives as set, or is refused, and never runs."""

import json
import os
import subprocess
import sys
from pathlib import Path

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from deploys.djangoapp.core.context import render_template
from deploys.djangoapp.settings.environment import (
    environment_file_content,
    mask_credentials,
    secret_file_content,
)
from deploys.djangoapp.settings import problems
from deploys.djangoapp.settings.checks import RELEASE_ID, URL_PATH
from deploys.djangoapp.release.switch import SwitchPlan, switch_command

VALID = {"websiteproject": "mysite", "url": "mysite.example.com", "webserver": "nginx",
         "django_deployment_root_folder": "/srv/www", "django_settings_folder": "mysite",
         "django_settings_file": "mysite.settings"}
# What an environment variable can hold: any text but NUL (and lone surrogates, which no file holds).
ENV_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
SLOW = hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SLOW
@given(plain=ENV_TEXT, secret=ENV_TEXT)
def test_any_value_reaches_the_app_as_set(tmp_path, plain, secret):
    site, found = problems({**VALID, "django_deployment_root_folder": str(tmp_path),
                            "django_webapplication_additional_environment_settings": {"PLAIN": plain},
                            "django_environment_variables": {"SECRET": secret}})
    assert found == []
    os.makedirs(site.project_root, exist_ok=True)
    Path(site.environment_file).write_text(environment_file_content(site.app_environment), encoding="utf-8")
    Path(site.secret_file).write_text(secret_file_content(site.secrets), encoding="utf-8")
    loader = Path(site.secrets_loader)
    loader.parent.mkdir(parents=True, exist_ok=True)
    loader.write_text(render_template("app/with-secrets.py.j2", s=site))
    Path(site.environment_loader).write_text(render_template("app/app_environment.py.j2", s=site))
    shown = subprocess.run([sys.executable, str(loader), sys.executable, "-c",
                            "import json, os; print(json.dumps([os.environ['PLAIN'], os.environ['SECRET']]))"],
                           capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin"})
    assert json.loads(shown.stdout) == [plain, secret]


USERINFO = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~%!$&()*+,;=:"),
                   min_size=1, max_size=20)


@given(user=USERINFO, password=USERINFO, scheme=st.sampled_from(["postgres", "redis", "rediss", "amqp", "https"]))
def test_credentials_in_any_url_are_masked(user, password, scheme):
    secret = f"S3CR3T@{password}"  # an @ in a password left unencoded hides nothing after it either
    masked = mask_credentials(f"broker {scheme}://{user}:{secret}@db.internal:5432/app, and more")
    assert secret not in masked and f"{scheme}://***@db.internal:5432/app" in masked


@SLOW
@given(release_id=st.from_regex(RELEASE_ID, fullmatch=True), path=st.from_regex(URL_PATH, fullmatch=True),
       strict=st.booleans())
def test_any_accepted_release_id_and_health_path_make_a_switch_that_parses(release_id, path, strict):
    plan = SwitchPlan(link="/srv/www/mysite/current", release_dir=f"/srv/www/mysite/releases/{release_id}",
                      release_id=release_id, app_service="uwsgi-mysite",
                      health_url=f"https://mysite.example.com{path}", resolve="mysite.example.com:443:127.0.0.1",
                      strict_health=strict, celery_services=("celery-mysite",))
    command = switch_command(plan)
    parsed = subprocess.run(["sh", "-n", "-c", command], capture_output=True, text=True)
    assert parsed.returncode == 0, parsed.stderr
