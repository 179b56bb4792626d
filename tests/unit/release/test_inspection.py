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

from deploys.djangoapp.core.context import render_template
from deploys.djangoapp.settings.layout import ROOT_HAS_NONE

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="gives up root's rights as the deploy does")

APP_USER = "nobody"


# Root's Django writes only where root alone can change what is there, from / down: a release
# in /tmp (everyone's, sticky or not) would be refused, where <root>/releases/<id> on a host is not.
ROOTS_OWN = "/var/lib"


@pytest.fixture
def release():
    """A startproject site, migrated, in a folder anyone may enter (pytest's tmp_path is root's
    alone), its sqlite database readable by root only."""
    top = Path(tempfile.mkdtemp(prefix="inspect-", dir=ROOTS_OWN))
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
            env: dict | None = None, judge_migrations: bool = False) -> subprocess.CompletedProcess:
    code = (f"exec(open({str(folder / 'inspect-release.py')!r}).read()); "
            f"inspect_release({str(folder)!r}, {APP_USER!r}, {between!r}, {list(build_commands)!r}, {stand_ins!r}, "
            f"{judge_migrations!r})")
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
echo "PGOPTIONS=${PGOPTIONS:-}"
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
            f"{nowhere}/mysite.sqlite3 sqlite:///{nowhere}/mysite.sqlite3 {nowhere}/media", "PGOPTIONS="]
        build_log = (release / ".build-log").stat()
        assert (build_log.st_uid, build_log.st_mode & 0o777) == (0, 0o700)
        assert run(APP_USER).splitlines() == [
            f"uid=65534 HOME=/tmp DJANGO_LOG_DIR={site.log_dir} args=manage.py collectstatic",
            f"{site.sqlite_path} sqlite:///{site.sqlite_path} {site.media_dir}", "PGOPTIONS="]
        # A release's migrations on PostgreSQL: a statement waiting longer for a lock fails.
        limited = subprocess.run([str(manage), "--release", str(release), "--lock-timeout", "7", "migrate"],
                                 capture_output=True, text=True, check=True).stdout.splitlines()
        assert limited[-1] == "PGOPTIONS=-c lock_timeout=7s"
        # ... and a statement running longer than its time fails too.
        both = subprocess.run([str(manage), "--release", str(release), "--lock-timeout", "7", "--statement-timeout",
                               "30", "migrate"], capture_output=True, text=True, check=True).stdout.splitlines()
        assert both[-1] == "PGOPTIONS=-c lock_timeout=7s -c statement_timeout=30s"
        alone = subprocess.run([str(manage), "--release", str(release), "--statement-timeout", "30", "migrate"],
                               capture_output=True, text=True, check=True).stdout.splitlines()
        assert alone[-1] == "PGOPTIONS=-c statement_timeout=30s"
        for option in ("--lock-timeout", "--statement-timeout"):
            refused = subprocess.run([str(manage), option, "7; id", "migrate"], capture_output=True, text=True)
            assert refused.returncode == 2 and f"{option}: whole seconds" in refused.stderr
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


def add_to_settings(release: Path, text: str, app: str = "") -> None:
    settings_file = release / "mysite" / "settings.py"
    settings = settings_file.read_text() + f"\n{text}\n"
    if app:
        settings = settings.replace("INSTALLED_APPS = [\n", f"INSTALLED_APPS = [\n    {app!r},\n", 1)
    settings_file.write_text(settings)


@pytest.mark.parametrize("mode, owner, through_a_link", [(0o775, 0, False), (0o1777, 0, False),
                                                        (0o755, 65534, False), (0o755, 65534, True)],
                         ids=["group-writable", "sticky-world-writable", "nobodys", "a-link-in-the-release-to-it"])
def test_a_static_root_others_can_write_is_refused_before_anything_runs(release, mode, owner, through_a_link):
    """collectstatic runs as root and writes in STATIC_ROOT: under a folder another user may
    write (and put a link in), also reached through a link, it is refused before the build
    commands (one that does not exist is never reached) and nothing is collected there."""
    open_folder = release.parent / "open"
    open_folder.mkdir()
    open_folder.chmod(mode)
    os.chown(open_folder, owner, owner)
    if through_a_link:
        (release / "assets").symlink_to(open_folder)
    static_root = (release / "assets" if through_a_link else open_folder) / "site" / "static"
    add_to_settings(release, f"STATIC_ROOT = {str(static_root)!r}")

    result = inspect(release, f"chmod 644 {release}/db.sqlite3", ("nosuchcommand",))
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        f"STATIC_ROOT ({static_root}) is in {open_folder}, which users other than root may write, and "
        "collectstatic runs as root: leave STATIC_ROOT unset (the release collects into a folder of its own) "
        'or put it inside the project, e.g. BASE_DIR / "staticfiles"')
    assert list(open_folder.iterdir()) == [] and not (release / ".paths.json").exists()


def test_a_static_root_inside_a_release_of_the_apps_group_is_collected(release):
    """A release as the deploy makes it (root's, the app's group, 0750): STATIC_ROOT inside it,
    its folder not made yet, is root's alone and collected into."""
    shutil.chown(release, "root", "nogroup")
    release.chmod(0o750)
    add_to_settings(release, 'STATIC_ROOT = BASE_DIR / "staticfiles"')

    result = inspect(release, f"chmod 644 {release}/db.sqlite3")
    assert result.returncode == 0, result.stderr
    assert json.loads((release / ".paths.json").read_text())["static_root"] == str(release / "staticfiles")
    assert (release / "staticfiles" / "admin" / "css" / "base.css").is_file()


SHOWS_THE_PATHS = """import os

from django.conf import settings
from django.core import checks


def paths():
    from django.db import connection

    try:
        connection.ensure_connection()
        opened = "opens"
    except Exception as error:
        opened = str(error)
    return (f"uid={os.getuid()} MEDIA_ROOT={settings.MEDIA_ROOT} NAME={settings.DATABASES['default']['NAME']} "
            f"database: {opened}")


@checks.register()
def show_the_paths(app_configs, **kwargs):
    print(paths())
    return []
"""
SHOWS_THE_PATHS_COMMAND = """from django.core.management.base import BaseCommand

from shower import paths


class Command(BaseCommand):
    def handle(self, **options):
        print(paths())
"""


def test_a_hard_coded_media_root_and_database_others_can_write_are_stand_ins_for_root_given_back(release):
    """Settings that name the app's folders themselves (MEDIA_ROOT = "/srv/x/shared/media"):
    root's Django (a build command) is told paths that do not exist instead and opens no
    database, .paths.json names the real ones (for the links), and the checks, as the app user,
    get them back and open the app's database."""
    shared = release.parent / "shared"
    media, database = shared / "media", shared / "db" / "mysite.sqlite3"
    for folder in (media, database.parent):
        folder.mkdir(parents=True)
        os.chown(folder, 65534, 65534)
    shutil.move(release / "db.sqlite3", database)
    os.chown(database, 65534, 65534)
    app = release / "shower"
    (app / "management" / "commands").mkdir(parents=True)
    (app / "__init__.py").write_text(SHOWS_THE_PATHS)
    (app / "management" / "__init__.py").write_text("")
    (app / "management" / "commands" / "__init__.py").write_text("")
    (app / "management" / "commands" / "showpaths.py").write_text(SHOWS_THE_PATHS_COMMAND)
    add_to_settings(release, f"MEDIA_ROOT = {str(media)!r}\nDATABASES['default']['NAME'] = {str(database)!r}",
                    app="shower")

    result = inspect(release, "true", ("showpaths",))
    assert result.returncode == 0, result.stderr
    nowhere = f"{ROOT_HAS_NONE}/hard-coded"
    *shown, answer = result.stdout.splitlines()
    assert shown == [
        f"uid=0 MEDIA_ROOT={nowhere}/media NAME={nowhere}/default.sqlite3 database: unable to open database file",
        f"uid=65534 MEDIA_ROOT={media} NAME={database} database: opens"], result.stdout
    assert json.loads(answer)["pending"] == []
    paths = json.loads((release / ".paths.json").read_text())
    assert paths["media_root"] == str(media) and paths["sqlite"] == {"default": str(database)}
    assert list(media.iterdir()) == []


def test_a_file_that_does_not_compile_fails_the_release_naming_file_and_line(tmp_path):
    """The bytecode compiles in the background while Django starts: a syntax error in the release
    stops it with compileall's words (the file, the line); a release that compiles goes on."""
    from deploys.djangoapp.release.inspection import compile_command

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


LIVE_ORDERS = """from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [migrations.CreateModel("Order", [("id", models.AutoField(primary_key=True)),
                                                   ("note", models.TextField())])]
"""
PENDING_ORDERS = """from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("orders", "0001_initial")]
    operations = [
        migrations.CreateModel("Item", [("id", models.AutoField(primary_key=True))]),
        migrations.RemoveField("order", "note"),
        migrations.RunPython(migrations.RunPython.noop),
    ]
"""


def test_on_the_host_that_migrates_the_gate_judges_the_pending_migrations_as_the_app_user(release):
    """The gate's verdicts come with the plan, judged against the state the app user's database
    has (root's alone until the step between): a column the live release has, removed, is unsafe."""
    migrations = release / "orders" / "migrations"
    migrations.mkdir(parents=True)
    for empty in (release / "orders" / "__init__.py", migrations / "__init__.py"):
        empty.write_text("")
    (migrations / "0001_initial.py").write_text(LIVE_ORDERS)
    add_to_settings(release, "", app="orders")
    subprocess.run([sys.executable, "manage.py", "migrate", "--verbosity", "0"], cwd=release, check=True)
    (migrations / "0002_changes.py").write_text(PENDING_ORDERS)
    result = inspect(release, f"chmod 644 {release}/db.sqlite3", judge_migrations=True)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.splitlines()[-1])
    assert answer["pending"] == ["orders.0002_changes"]
    gate = answer["gate"]
    assert "error" not in gate, gate
    assert gate["vendor"] == "sqlite" and gate["live"]["orders_order"] == ["id", "note"]
    assert [(v["operation"], v["kind"], v["change"], v["table"], v["column"]) for v in gate["verdicts"]] == [
        ("Create model Item", "safe", "new-table", "orders_item", None),
        ("Remove field note from order", "unsafe", "drop-column", "orders_order", "note"),
        ("Raw Python operation", "safe", "no-change", None, None)]
    plain = inspect(release, f"chmod 644 {release}/db.sqlite3")
    assert json.loads(plain.stdout.splitlines()[-1])["gate"] is None
