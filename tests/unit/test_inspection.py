"""The release's one start of Django (templates/app/inspect-release.py.j2), run against a stock
`django-admin startproject` site: collectstatic and the paths as root, the shell step between,
then the deploy checks and the migration plan as the app user."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from deploys.djangoapp.context import render_template

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="gives up root's rights as the deploy does")

APP_USER = "nobody"


@pytest.fixture
def release():
    """A startproject site, migrated, in a folder anyone may enter (pytest's tmp_path is root's
    alone), its sqlite database readable by root only."""
    top = Path(tempfile.mkdtemp(prefix="inspect-"))
    top.chmod(0o755)
    folder = top / "release"
    folder.mkdir()
    subprocess.run([sys.executable, "-m", "django", "startproject", "mysite", str(folder)], check=True)
    subprocess.run([sys.executable, "manage.py", "migrate", "--verbosity", "0"], cwd=folder, check=True)
    (folder / "db.sqlite3").chmod(0o600)
    (folder / "inspect-release.py").write_text(render_template("app/inspect-release.py.j2"))
    yield folder
    shutil.rmtree(top)


def inspect(folder: Path, between: str, build_commands: tuple[str, ...] = (), stand_ins: dict | None = None,
            env: dict | None = None) -> subprocess.CompletedProcess:
    code = (f"exec(open({str(folder / 'inspect-release.py')!r}).read()); "
            f"inspect_release({str(folder)!r}, {APP_USER!r}, {between!r}, {list(build_commands)!r}, {stand_ins!r})")
    return subprocess.run([sys.executable, "manage.py", "shell", "--verbosity", "0", "-c", code], cwd=folder,
                          capture_output=True, text=True, env={**os.environ, "HOME": "/tmp", **(env or {})})


def test_the_checks_run_as_the_app_user_after_the_step_between(release):
    """The step between makes the database readable: only then can the app user's checks open it;
    collectstatic (as root) filled a folder of the release, and the paths were written first."""
    result = inspect(release, f"chmod 644 {release}/db.sqlite3 && echo linked")
    assert result.returncode == 0, result.stderr
    *before, last = result.stdout.splitlines()
    assert "linked" in before
    answer = json.loads(last)
    assert answer["pending"] == [] and answer["migrations"]["auth"].startswith("0012")
    paths = json.loads((release / ".paths.json").read_text())
    assert paths["static_root"] == str(release / ".static-collected")
    assert paths["sqlite"] == {"default": str(release / "db.sqlite3")}
    assert (release / ".static-collected" / "admin" / "css" / "base.css").is_file()


def test_without_the_step_between_the_app_user_cannot_open_roots_database(release):
    """Root could read the database: the failure shows the checks did not run as root."""
    result = inspect(release, "true")
    assert result.returncode != 0
    assert "unable to open database file" in result.stderr.splitlines()[-1]
    assert (release / ".paths.json").is_file()


def test_a_failed_step_between_stops_before_the_checks(release):
    result = inspect(release, f"chmod 644 {release}/db.sqlite3 && echo no shared folder >&2 && exit 3")
    assert result.returncode == 3
    assert result.stderr.splitlines()[-1] == "no shared folder"
    assert not result.stdout.strip()  # no answer: the checks never ran


MAKE_ASSET = """from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("name")

    def handle(self, name, **options):
        folder = Path(settings.BASE_DIR) / "built"
        folder.mkdir(exist_ok=True)
        (folder / name).write_text("made by a build command")
"""


def test_build_commands_run_before_collectstatic_and_a_failing_one_is_named(release):
    """A management command of the project's (as `compress` or `compilemessages` would) makes a
    file collectstatic then collects; a command that fails stops everything with its words."""
    app = release / "builder"
    (app / "management" / "commands").mkdir(parents=True)
    for package in (app, app / "management", app / "management" / "commands"):
        (package / "__init__.py").write_text("")
    (app / "management" / "commands" / "makeasset.py").write_text(MAKE_ASSET)
    settings_file = release / "mysite" / "settings.py"
    settings_file.write_text(settings_file.read_text().replace("INSTALLED_APPS = [\n", "INSTALLED_APPS = [\n    'builder',\n", 1)
                             + '\nSTATICFILES_DIRS = [BASE_DIR / "built"]\n')
    (release / "built").mkdir()
    between = f"chmod 644 {release}/db.sqlite3"

    result = inspect(release, between, ("makeasset 'site.css'",))
    assert result.returncode == 0, result.stderr
    assert (release / ".static-collected" / "site.css").read_text() == "made by a build command"

    (release / ".paths.json").unlink()  # as the release's step does before it starts Django
    failed = inspect(release, between, ("makeasset other.css", "nosuchcommand --now"))
    assert failed.returncode == 1
    assert failed.stderr.splitlines()[-1] == ("django_build_commands: 'nosuchcommand --now' failed: CommandError: "
                                              "Unknown command: 'nosuchcommand'")
    assert (release / "built" / "other.css").exists() and not (release / ".paths.json").exists()


FAKE_PYTHON = """#!/bin/sh
echo "uid=$(id -u) HOME=$HOME DJANGO_LOG_DIR=$DJANGO_LOG_DIR args=$*"
echo "$DJANGO_DB_NAME $DATABASE_URL $DJANGO_MEDIA_ROOT"
"""
# Stands in for bin/with-secrets: the app's environment names the app's folders.
FAKE_WITH_SECRETS = """#!/bin/sh
export DJANGO_LOG_DIR={s.log_dir} DJANGO_DB_NAME={s.sqlite_path} DATABASE_URL=sqlite:///{s.sqlite_path} \\
    DJANGO_MEDIA_ROOT={s.media_dir}
exec "$@"
"""


def test_django_as_root_writes_its_log_and_home_only_where_root_owns_the_folders(tmp_path):
    """bin/manage --user root (a release's build commands and collectstatic): HOME is root's,
    DJANGO_LOG_DIR a folder of the release only root may enter, never the app's log folder, and
    the sqlite database and uploads folder paths that do not exist; as the app user, the app's
    environment as it is."""
    from tests.unit.sites import settings

    top = Path(tempfile.mkdtemp(prefix="manage-"))
    try:
        top.chmod(0o755)
        site = settings(django_deployment_root_folder=str(top), uwsgi_user=APP_USER, uwsgi_group="nogroup")
        release = Path(site.releases_dir) / "r1"
        (release / ".venv" / "bin").mkdir(parents=True)
        (release / "REVISION").write_text("r1\n")
        (release / ".venv" / "bin" / "python").write_text(FAKE_PYTHON)
        Path(site.secrets_loader).parent.mkdir(parents=True)
        Path(site.secrets_loader).write_text(FAKE_WITH_SECRETS.format(s=site))
        manage = Path(site.manage_command)
        manage.write_text(render_template("app/manage.sh.j2", s=site))
        for program in (release / ".venv" / "bin" / "python", Path(site.secrets_loader), manage):
            program.chmod(0o755)

        def run(user: str) -> str:
            return subprocess.run([str(manage), "--release", str(release), "--user", user, "collectstatic"],
                                  capture_output=True, text=True, check=True).stdout.strip()

        nowhere = "/nonexistent/django-deploy"
        assert run("root").splitlines() == [
            f"uid=0 HOME=/root DJANGO_LOG_DIR={release}/.build-log args=manage.py collectstatic",
            f"{nowhere}/mysite.sqlite3 sqlite:///{nowhere}/mysite.sqlite3 {nowhere}/media"]
        build_log = (release / ".build-log").stat()
        assert (build_log.st_uid, build_log.st_mode & 0o777) == (0, 0o700)
        assert run(APP_USER).splitlines() == [
            f"uid=65534 HOME=/tmp DJANGO_LOG_DIR={site.log_dir} args=manage.py collectstatic",
            f"{site.sqlite_path} sqlite:///{site.sqlite_path} {site.media_dir}"]
    finally:
        shutil.rmtree(top)


READS_THE_DATABASE = """from django.contrib.auth.models import User
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    def handle(self, **options):
        print(User.objects.count())
"""


def test_django_as_root_reaches_the_apps_database_through_no_path_and_the_checks_get_it_back(release):
    """Settings that read the database's path from the environment (DJANGO_DB_NAME, as bin/manage
    gives it): started as root, Django is told a path that does not exist, so a build command
    that opens the database fails and root never opens the app's; the checks, as the app user,
    read the app's own database (its migrations, all applied), and .paths.json names it."""
    nowhere = "/nonexistent/django-deploy/mysite.sqlite3"
    app_database = release / "db.sqlite3"
    settings_file = release / "mysite" / "settings.py"
    settings_file.write_text(settings_file.read_text() + "\nimport os\n"
                             "DATABASES['default']['NAME'] = os.environ['DJANGO_DB_NAME']\n")
    between = f"chmod 644 {app_database}"
    stand_ins = {nowhere: str(app_database)}

    result = inspect(release, between, stand_ins=stand_ins, env={"DJANGO_DB_NAME": nowhere})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["pending"] == []
    assert json.loads((release / ".paths.json").read_text())["sqlite"] == {"default": str(app_database)}

    app = release / "reader"
    (app / "management" / "commands").mkdir(parents=True)
    for package in (app, app / "management", app / "management" / "commands"):
        (package / "__init__.py").write_text("")
    (app / "management" / "commands" / "countusers.py").write_text(READS_THE_DATABASE)
    settings_file.write_text(settings_file.read_text().replace("INSTALLED_APPS = [\n", "INSTALLED_APPS = [\n    'reader',\n", 1))
    (release / ".paths.json").unlink()
    opened = inspect(release, between, ("countusers",), stand_ins=stand_ins, env={"DJANGO_DB_NAME": nowhere})
    assert opened.returncode == 1
    assert "countusers' failed: OperationalError: unable to open database file" in opened.stderr.splitlines()[-1]


def test_a_file_that_does_not_compile_fails_the_release_naming_file_and_line(tmp_path):
    """The bytecode compiles in the background while Django starts: a syntax error in the release
    stops it with compileall's words (the file, the line); a release that compiles goes on."""
    from deploys.djangoapp.inspection import compile_command

    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "views.py").write_text("def view(request):\n    return 1\n")
    start, wait = compile_command(sys.executable, str(tmp_path))
    compiled = subprocess.run(["sh", "-c", f"{start}; {wait} && echo on"], capture_output=True, text=True)
    assert compiled.returncode == 0 and compiled.stdout == "on\n", compiled.stderr
    assert not (tmp_path / ".compile.log").exists()
    (tmp_path / "app" / "broken.py").write_text("def view(request:\n    return 1\n")
    failed = subprocess.run(["sh", "-c", f"{start}; {wait} && echo on"], capture_output=True, text=True)
    assert failed.returncode == 1 and failed.stdout == ""
    assert failed.stderr.startswith("the new release does not compile:\n")
    assert "broken.py" in failed.stderr and "line 1" in failed.stderr, failed.stderr
