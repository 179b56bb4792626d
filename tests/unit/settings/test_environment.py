"""The app's environment (settings/environment.py): the ecosystem's variables, every value as
given, and every credential in the secret file only."""

import json
import os
import subprocess
import sys
from pathlib import Path


from deploys.djangoapp.core.context import render_template
from deploys.djangoapp.settings.environment import (
    environment_file_content,
    has_credentials,
    mask_credentials,
    secret_file_content,
)
from deploys.djangoapp.settings.placement import plan_fleet
from tests.unit.sites import settings




def test_database_url_with_a_password_goes_to_the_secrets_only():
    hosts = {"app": ({"web", "worker", "db"}, settings(database="postgresql", celery=True, django_environment_variables={
        "DJANGO_DB_PASSWORD": "p@ss/w:rd"}))}
    fleet, found = plan_fleet(hosts)
    assert found == []
    app = hosts["app"][1]
    app._fleet, app._host = fleet, "app"
    assert app.secrets["DATABASE_URL"] == "postgres://mysite:p%40ss%2Fw%3Ard@127.0.0.1:5432/mysite"
    assert "DATABASE_URL" not in app.app_environment
    assert app.app_environment["REDIS_URL"] == app.app_environment["CELERY_BROKER_URL"] == "redis://127.0.0.1:6379/0"
    assert "p@ss" not in json.dumps(app.app_environment)


def test_sqlite_database_url_and_user_values_win():
    plain = settings()
    assert plain.app_environment["DATABASE_URL"] == "sqlite:////srv/www/mysite/shared/db/mysite.sqlite3"
    mine = settings(django_environment_variables={"DATABASE_URL": "postgres://u:p@db/x"},
                    django_webapplication_additional_environment_settings={"REDIS_URL": "redis://cache:6379/1"})
    assert mine.secrets["DATABASE_URL"] == "postgres://u:p@db/x" and "DATABASE_URL" not in mine.app_environment
    assert mine.app_environment["REDIS_URL"] == "redis://cache:6379/1"


def test_any_url_with_credentials_is_a_secret_and_masked_in_errors():
    with_password = settings(celery=True, redis_url="redis://:hunter2hunter2@10.1.1.1:6379/0")
    assert "hunter2" not in json.dumps(with_password.app_environment)
    assert with_password.secrets["CELERY_BROKER_URL"].startswith("redis://:hunter2")
    assert has_credentials("redis://u:p@h/0") and not has_credentials("redis://h:6379/0")
    assert mask_credentials("'redis://:hunter2@h:1/0'") == "'redis://***@h:1/0'"
    one, two = settings(redis_url="redis://:aaaa@h/0"), settings(redis_url="redis://:bbbb@h/0")
    _, found = plan_fleet({"a": ({"web"}, one), "b": ({"db"}, two)})
    assert "redis_url" in found[0] and "aaaa" not in found[0] and "bbbb" not in found[0]


def render(name: str, site, **context) -> str:
    return render_template(name, s=site, **context)


def test_no_credential_reaches_a_world_readable_file():
    site = settings(celery=True, redis_url="redis://:hunter2hunter2@10.1.1.1:6379/0", database="postgresql",
                    django_environment_variables={"DJANGO_DB_PASSWORD": "pg-secret-123"})
    hosts = {"app": ({"web", "worker", "db"}, site)}
    fleet, _ = plan_fleet(hosts)
    site._fleet, site._host = fleet, "app"
    world_readable = [
        render("uwsgi/app.ini.j2", site),
        render("systemd/celery.service.j2", site, kind="worker", command="worker"),
        render("app/manage.sh.j2", site),
        render("app/wsgi.py.j2", site),
        render("app/app_environment.py.j2", site),
        environment_file_content(site.app_environment),
    ]
    for text in world_readable:
        assert "hunter2" not in text and "pg-secret-123" not in text
    assert "CELERY_BROKER_URL" in site.secrets and "DATABASE_URL" in site.secrets


HOSTILE = "it's \"quoted\" $HOME `id` $(id) @(file) %(x) %n 100% \\ #hash\nsecond line, été ✓ "


def test_every_value_reaches_the_app_exactly_as_given(tmp_path):
    """bin/with-secrets sets the environment file and the secret file as they are: no value is
    escaped for, or expanded by, a shell, an ini file or a unit."""
    site = settings(django_deployment_root_folder=str(tmp_path),
                    django_webapplication_additional_environment_settings={"PLAIN_HOSTILE": HOSTILE},
                    django_environment_variables={"SECRET_HOSTILE": HOSTILE + "secret"})
    os.makedirs(site.project_root)
    Path(site.environment_file).write_text(environment_file_content(site.app_environment))
    Path(site.secret_file).write_text(secret_file_content(site.secrets))
    loader = Path(site.secrets_loader)
    loader.parent.mkdir(parents=True, exist_ok=True)
    loader.write_text(render("app/with-secrets.py.j2", site))
    Path(site.environment_loader).write_text(render("app/app_environment.py.j2", site))
    shown = subprocess.run([sys.executable, str(loader), sys.executable, "-c",
                            "import json, os; print(json.dumps(dict(os.environ)))"],
                           capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin"})
    environment = json.loads(shown.stdout)
    assert environment["PLAIN_HOSTILE"] == HOSTILE
    assert environment["SECRET_HOSTILE"] == HOSTILE + "secret"
    assert environment["DJANGO_SETTINGS_MODULE"] == "mysite.settings"
    assert "HOSTILE" not in render("uwsgi/app.ini.j2", site) + render("app/manage.sh.j2", site)


def test_the_kit_tells_the_app_its_settings_paths_database_broker_and_cache():
    from dataclasses import replace

    from deploys.djangoapp.settings.environment import database_url, kit_environment
    from tests.unit.sites import placed_fleet

    common = {"DJANGO_SETTINGS_MODULE": "mysite.settings", "DJANGO_SETTINGS_SECRET_FILE": "/srv/www/mysite/secrets.py",
              "DJANGO_ALLOWED_HOSTS": "mysite.example.com", "DJANGO_MEDIA_ROOT": "/srv/www/mysite/shared/media",
              "DJANGO_LOG_DIR": "/srv/www/mysite/shared/log"}
    sqlite = "/srv/www/mysite/shared/db/mysite.sqlite3"
    assert kit_environment(settings()) == {**common, "DJANGO_DB_ENGINE": "sqlite", "DJANGO_DB_NAME": sqlite,
                                           "DATABASE_URL": f"sqlite:///{sqlite}"}
    broker = "redis://127.0.0.1:6379/0"
    assert kit_environment(settings(celery=True, memcached=True)) == {
        **common, "DJANGO_DB_ENGINE": "sqlite", "DJANGO_DB_NAME": sqlite, "DATABASE_URL": f"sqlite:///{sqlite}",
        "CELERY_BROKER_URL": broker, "REDIS_URL": broker, "CACHE_URL": "pymemcache://127.0.0.1:11211"}
    fleet = placed_fleet(memcached=True)
    postgres = {**common, "DJANGO_DB_ENGINE": "postgresql", "DJANGO_DB_NAME": "mysite", "DJANGO_DB_USER": "mysite",
                "DJANGO_DB_HOST": "10.0.0.3", "DJANGO_DB_PORT": "5432",
                "DATABASE_URL": "postgres://mysite:x@10.0.0.3:5432/mysite"}
    # memcached runs on each web host, for that host's app only.
    assert kit_environment(fleet["web1"]) == {**postgres, "CACHE_URL": "pymemcache://127.0.0.1:11211"}
    # The db host reaches its own database on the loopback.
    assert kit_environment(fleet["db1"]) == {**postgres, "DJANGO_DB_HOST": "127.0.0.1",
                                             "DATABASE_URL": "postgres://mysite:x@127.0.0.1:5432/mysite"}
    # The password quoted for a URL; an IPv6 address in brackets.
    site = fleet["web1"]
    site._fleet = replace(site.fleet, addresses={**site.fleet.addresses, "db1": "fd00::3"})
    quoted = settings(database="postgresql", django_environment_variables={"DJANGO_DB_PASSWORD": "p@ss/w:rd%"})
    quoted._fleet, quoted._host = site._fleet, "web1"
    assert database_url(quoted) == "postgres://mysite:p%40ss%2Fw%3Ard%25@[fd00::3]:5432/mysite"


def test_the_environment_file_is_sorted_json_and_the_secret_file_python_literals():
    assert environment_file_content({"B": "2", "A": "it's \"1\""}) == '{\n "A": "it\'s \\"1\\"",\n "B": "2"\n}\n'
    assert secret_file_content({"B": "x'y", "A": "1"}) == "A = '1'\nB = \"x'y\"\n"
    assert secret_file_content({}) == ""
