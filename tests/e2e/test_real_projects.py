"""Stock projects, made by the ecosystem's tools in the test (startproject, wagtail, uv, Poetry),
deploy by configuration alone: the home page and an admin stylesheet over HTTPS, a row written on
the host survives a release and a rollback, a release with the same dependencies installs nothing,
and a worker that cannot start fails its release."""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests import fleet
from tests.conftest import https_get, run_pyinfra
from tests.e2e import generated
from tests.e2e.conftest import world_readable_files_containing

pytestmark = pytest.mark.e2e

ADMIN_CSS = "/static/admin/css/base.css"


def project_data(name: str, folder: Path, settings_file: str, **more) -> dict:
    """What a team sets for its project: names, where the source is; nothing about its layout."""
    return {"websiteproject": name, "django_settings_folder": settings_file.split(".")[0],
            "django_settings_file": settings_file, "django_source_dir": str(folder),
            # group_data/local.py is the example app's: these two are not this project's.
            "django_pip_install_requirements": False, "health_check_path": None, **more}


def manage(host, name: str, code: str) -> str:
    return host.exec(f"/srv/www/{name}/bin/manage shell -v0 -c {json.dumps(code)}").stdout.strip()


def live(host, name: str) -> str:
    return host.exec(f"basename \"$(readlink /srv/www/{name}/current)\"").stdout.strip()


def venv_identity(host, name: str) -> str:
    """The live release's virtualenv: its folder and that folder's inode and change time."""
    return host.exec(f"venv=$(readlink /srv/www/{name}/current/.venv) && echo \"$venv $(stat -c '%i %Z' \"$venv\")\"")\
        .stdout.strip()


def touch_code(folder: Path, package: str, marker: str) -> None:
    urls = folder / package / "urls.py"
    urls.write_text(urls.read_text() + f"\n# {marker}\n")


def release_rollback_keep_row(host, fleet_file, name: str, folder: Path, package: str) -> None:
    """A row written on the host survives a code-only release (which installs nothing) and a
    rollback."""
    manage(host, name, "from django.contrib.auth.models import User; User.objects.create_user('kept-row')")
    venv_before = venv_identity(host, name)

    touch_code(folder, package, "v2")
    second = run_pyinfra(fleet_file, "deploys/release.py", data={"release_id": "v2"})
    assert second.returncode == 0, second.output
    assert live(host, name) == "v2"
    assert venv_identity(host, name) == venv_before  # the same virtualenv, not rebuilt
    exists = "from django.contrib.auth.models import User; print(User.objects.filter(username='kept-row').count())"
    assert manage(host, name, exists) == "1"

    back = run_pyinfra(fleet_file, "deploys/rollback.py")
    assert back.returncode == 0, back.output
    assert live(host, name) == "v1"
    assert manage(host, name, exists) == "1"
    assert https_get(host, "/").headers["X-Release-Id"] == "v1"


GERMAN = """msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\\n"

msgid "Deployed"
msgstr "Ausgeliefert"
"""


def add_translation(folder: Path, package: str) -> None:
    """A German catalog as a team commits it: the .po file, not the .mo that compilemessages makes."""
    catalog = folder / "locale" / "de" / "LC_MESSAGES"
    catalog.mkdir(parents=True)
    (catalog / "django.po").write_text(GERMAN)
    settings = folder / package / "settings.py"
    settings.write_text(settings.read_text() + '\nLOCALE_PATHS = [BASE_DIR / "locale"]\n')


def test_django_admin_startproject_with_sqlite_in_base_dir(start_hosts, tmp_path):
    folder = generated.startproject(tmp_path / "mysite")
    add_translation(folder, "mysite")
    data = project_data("mysite", folder, "mysite.settings", django_dependencies=["django==5.2.*"],
                        django_build_commands=["compilemessages"], application_additional_packages=["gettext"])
    (host,), fleet_file = start_hosts("web1", data=data)

    first = run_pyinfra(fleet_file, "deploys/all.py", data={"release_id": "v1"})
    assert first.returncode == 0, first.output
    home = https_get(host, "/")
    assert home.status_code == 200 and "The install worked successfully!" in home.text
    assert home.headers["X-Release-Id"] == "v1"
    css = https_get(host, ADMIN_CSS)
    assert css.status_code == 200 and "body" in css.text
    # BASE_DIR / "db.sqlite3" is a link to the one database file in shared/db.
    assert host.exec("readlink /srv/www/mysite/current/db.sqlite3").stdout.strip() == \
        "/srv/www/mysite/shared/db/mysite.sqlite3"
    # The build command made the catalog the repository does not hold.
    german = "from django.utils import translation; translation.activate('de'); print(translation.gettext('Deployed'))"
    assert manage(host, "mysite", german) == "Ausgeliefert"

    release_rollback_keep_row(host, fleet_file, "mysite", folder, "mysite")
    snapshots = host.exec("ls /srv/www/mysite/snapshots").stdout.split()
    assert "v1.sqlite3" in snapshots  # the first migrations were snapshotted, of the shared file


def test_poetry_project_installs_its_lock_without_dev_groups(start_hosts, tmp_path):
    folder = generated.poetry_project(tmp_path / "mysite")
    data = project_data("mysite", folder, "mysite.settings")
    (host,), fleet_file = start_hosts("web1", data=data)

    first = run_pyinfra(fleet_file, "deploys/all.py", data={"release_id": "v1"})
    assert first.returncode == 0, first.output
    assert "poetry.lock" in first.output  # installed from the lock
    assert "The install worked successfully!" in https_get(host, "/").text
    assert https_get(host, ADMIN_CSS).status_code == 200
    locked = next(package["version"] for package in tomllib.loads((folder / "poetry.lock").read_text())["package"]
                  if package["name"] == "django")
    assert manage(host, "mysite", "import django; print(django.__version__)") == locked
    venv = "/srv/www/mysite/current/.venv"
    assert host.exec(f"{venv}/bin/python -c 'import pytest'", check=False).returncode != 0  # no dev group
    assert "--hash=sha256:" in host.exec(f"cat {venv}/requirements-from-poetry.lock.txt").stdout

    release_rollback_keep_row(host, fleet_file, "mysite", folder, "mysite")

    # A pyproject.toml changed without `poetry lock`: Poetry's own words, and v1 serves on.
    pyproject = folder / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"django (==5.2.*)"', '"django (==5.2.*)",\n    "requests"'))
    stale = run_pyinfra(fleet_file, "deploys/release.py", data={"release_id": "v3"})
    assert stale.returncode != 0
    assert "changed significantly since poetry.lock was last generated" in stale.output
    assert live(host, "mysite") == "v1" and https_get(host, "/").headers["X-Release-Id"] == "v1"


@pytest.fixture(scope="module")
def trixie_image(fleet_key) -> str:
    return fleet.ensure_image("trixie")


def test_wagtail_start_site(start_hosts, tmp_path, trixie_image):
    # Wagtail's template asks for Django 6.1, which needs Python 3.12+: Debian 13.
    folder = generated.wagtail_site(tmp_path / "mysite")
    data = project_data("wagtailsite", folder, "mysite.settings.production")
    (host,), fleet_file = start_hosts("web1", image=trixie_image, data=data)

    first = run_pyinfra(fleet_file, "deploys/all.py", data={"release_id": "v1"})
    assert first.returncode == 0, first.output
    home = https_get(host, "/")
    assert home.status_code == 200 and "Welcome to your new Wagtail site!" in home.text
    assert https_get(host, ADMIN_CSS).status_code == 200
    assert https_get(host, "/admin/login/").status_code == 200  # Wagtail's admin, its static files hashed

    release_rollback_keep_row(host, fleet_file, "wagtailsite", folder, "mysite")
    # Wagtail's own rows (the home page made by its migrations) are in the shared database too.
    assert "Welcome to your new Wagtail site!" in https_get(host, "/").text


@pytest.mark.long(minutes=2)
def test_uv_project_with_postgresql_and_celery(start_hosts, tmp_path):
    folder = generated.uv_project(tmp_path / "shop")
    data = project_data("shop", folder, "shop.settings", database="postgresql", celery=True,
                        django_environment_variables={"DJANGO_DB_PASSWORD": "shop-db-pass-9f8e7d"})
    (host,), fleet_file = start_hosts("web1", data=data)

    first = run_pyinfra(fleet_file, "deploys/all.py", data={"release_id": "v1"})
    assert first.returncode == 0, first.output
    assert "uv.lock" in first.output  # installed from the lock
    assert https_get(host, "/").status_code == 200
    assert https_get(host, ADMIN_CSS).status_code == 200
    vendor = manage(host, "shop", "from django.db import connection; connection.ensure_connection(); "
                                  "print(connection.vendor)")
    assert vendor == "postgresql"  # DATABASE_URL, read by dj-database-url
    # DATABASE_URL carries the password: only the secret file has it.
    assert world_readable_files_containing(host, "shop-db-pass-9f8e7d") == []
    assert "DATABASE_URL" in host.exec("cat /srv/www/shop/secrets.py").stdout

    release_rollback_keep_row(host, fleet_file, "shop", folder, "shop")

    # A worker that cannot start on the new code fails the release; the old worker runs again.
    tasks = folder / "shop" / "tasks.py"
    tasks.write_text("import module_that_is_not_installed  # noqa\n" + tasks.read_text())
    broken = run_pyinfra(fleet_file, "deploys/release.py", data={"release_id": "v3"})
    assert broken.returncode != 0
    assert "Celery worker of release v3 did not become ready" in broken.output
    assert "module_that_is_not_installed" in broken.output
    assert live(host, "shop") == "v1"
    assert host.exec("systemctl is-active celery-shop").stdout.strip() == "active"
    worker_cwd = host.exec("readlink /proc/$(systemctl show -p MainPID --value celery-shop)/cwd").stdout.strip()
    assert worker_cwd.endswith("/releases/v1")

    # A migration that fails: PostgreSQL undoes it in its transaction; no snapshot is restored.
    tasks.write_text(tasks.read_text().replace("import module_that_is_not_installed  # noqa\n", ""))
    add_failing_app(folder)
    # The gate refuses what it cannot judge (RunPython) until the release names it.
    refused = run_pyinfra(fleet_file, "deploys/release.py", data={"release_id": "v4"})
    assert refused.returncode != 0
    assert "orders.0001_initial: Raw Python operation: runs Python (RunPython)" in refused.output
    assert "--data allow_unsafe_migrations=orders.0001_initial" in refused.output
    assert "this migration fails on purpose" not in refused.output
    failed = run_pyinfra(fleet_file, "deploys/release.py", data={"release_id": "v4",
                                                                 "allow_unsafe_migrations": "orders.0001_initial"})
    assert failed.returncode != 0
    assert "the database undid the one that failed: it is as it was (no snapshot restored" in failed.output
    assert live(host, "shop") == "v1"
    exists = "from django.contrib.auth.models import User; print(User.objects.filter(username='kept-row').count())"
    assert manage(host, "shop", exists) == "1"
    tables = manage(host, "shop", "from django.db import connection; print(connection.introspection.table_names())")
    assert "orders_order" not in tables and "auth_user" in tables


FAILING_MIGRATION = """from django.db import migrations, models


def fail(apps, schema_editor):
    raise RuntimeError("this migration fails on purpose")


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel("Order", [("id", models.BigAutoField(primary_key=True))]),
        migrations.RunPython(fail),
    ]
"""


def add_failing_app(folder: Path) -> None:
    """An app made by `startapp`, whose first migration fails after creating its table."""
    subprocess.run([str(generated.BIN / "django-admin"), "startapp", "orders"], cwd=folder, check=True)
    (folder / "orders" / "migrations" / "0001_initial.py").write_text(FAILING_MIGRATION)
    settings = folder / "shop" / "settings.py"
    settings.write_text(settings.read_text().replace("INSTALLED_APPS = [\n", "INSTALLED_APPS = [\n    'orders',\n", 1))
