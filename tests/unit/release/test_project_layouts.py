"""What a stock project's release finds on the host: the first error an operator sees when its
Django cannot start, its links to shared/, the static files bridged across the switch, the
words of a failed migration, the uWSGI entry, the PostgreSQL password."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deploys.djangoapp.core.context import render_template
from deploys.djangoapp.settings.environment import (
    environment_file_content,
    secret_file_content,
)
from deploys.djangoapp.release.inspection import explain_failure
from tests.unit.sites import settings




@pytest.mark.parametrize(("last_line", "hint"), [
    ("ModuleNotFoundError: No module named 'corsheaders'", "django_dependencies"),
    ("django.core.exceptions.ImproperlyConfigured: The SECRET_KEY setting must not be empty.",
     "django_environment_variables"),
    ("django.db.utils.OperationalError: unable to open database file", "uwsgi_user"),
])
def test_a_django_that_cannot_start_is_explained_in_one_line(tmp_path, last_line, hint):
    output = tmp_path / "out"
    output.write_text(f"Traceback (most recent call last):\n  File \"x\", line 1\n{last_line}\n\n")
    result = subprocess.run(["sh", "-c", explain_failure(str(output), "to start")], capture_output=True, text=True)
    first, second = result.stderr.splitlines()[:2]
    assert first == f"the new release failed to start: {last_line}"
    assert hint in second and "Traceback" in result.stderr


def render_link_shared(site) -> str:
    return render_template("app/link-shared.py.j2", s=site)


def test_link_shared_links_sqlite_media_and_linked_paths(tmp_path):
    user = os.environ.get("USER") or subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    group = subprocess.run(["id", "-gn"], capture_output=True, text=True).stdout.strip()
    site = settings(django_deployment_root_folder=str(tmp_path), uwsgi_user=user, uwsgi_group=group,
                    django_linked_dirs=["var/cache"], django_linked_files=["search.idx"])
    for folder in (site.media_dir, site.db_dir):
        os.makedirs(folder)
    release = tmp_path / "mysite" / "releases" / "1"
    (release / "media").mkdir(parents=True)
    (release / "media" / "logo.png").write_text("png")
    (release / "db.sqlite3").write_text("shipped by mistake")
    (release / "var" / "cache").mkdir(parents=True)
    (release / "search.idx").write_text("index")
    (release / ".paths.json").write_text(json.dumps({
        "static_root": str(release / "static"), "media_root": str(release / "media"),
        "sqlite": {"default": str(release / "db.sqlite3"), "other": str(release / "data" / "other.db")}}))
    script = tmp_path / "link-shared.py"
    script.write_text(render_link_shared(site))
    subprocess.run([sys.executable, str(script), str(release)], check=True, capture_output=True)

    assert os.readlink(release / ".static") == str(release / "static")
    assert os.readlink(release / "db.sqlite3") == site.sqlite_path
    assert os.readlink(release / "data" / "other.db") == f"{site.db_dir}/other.sqlite3"
    assert os.readlink(release / "media") == site.media_dir
    assert (Path(site.media_dir) / "logo.png").read_text() == "png"
    assert os.readlink(release / "var" / "cache") == f"{site.shared_dir}/var/cache"
    assert (Path(site.shared_dir) / "search.idx").read_text() == "index"
    assert not Path(site.sqlite_path).exists()  # the shipped file is not used
    # Again, on the next release: the same links, nothing moved twice.
    subprocess.run([sys.executable, str(script), str(release)], check=True, capture_output=True)
    assert os.readlink(release / "db.sqlite3") == site.sqlite_path


def test_link_shared_follows_no_link_the_app_put_in_its_shared_folders(tmp_path):
    """shared/var is the app's (an earlier release linked var whole; this one links var/cache): a
    link it puts at var/cache, to a folder of root's, fails the release; nothing moves there and
    nothing there changes owner."""
    outside = tmp_path / "root-only"
    outside.mkdir()
    (outside / "keep").write_text("root's")
    site = settings(django_deployment_root_folder=str(tmp_path), uwsgi_user="nobody", uwsgi_group="nogroup",
                    django_linked_dirs=["var/cache"], django_linked_files=["var/local.py"])
    app_var = Path(site.shared_dir) / "var"
    app_var.mkdir(parents=True)
    os.chown(app_var, 65534, 65534)
    (app_var / "cache").symlink_to(outside)
    (app_var / "local.py").symlink_to(outside / "keep")
    release = tmp_path / "mysite" / "releases" / "1"
    (release / "var" / "cache").mkdir(parents=True)
    (release / "var" / "cache" / "seed.txt").write_text("from the release")
    (release / ".paths.json").write_text(json.dumps({"static_root": str(release / "static"), "media_root": "",
                                                     "sqlite": {}}))
    script = tmp_path / "link-shared.py"
    script.write_text(render_link_shared(site))
    failed = subprocess.run([sys.executable, str(script), str(release)], capture_output=True, text=True)
    assert failed.returncode != 0 and "the shared paths could not be linked: cache: Not a directory" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert sorted(path.name for path in outside.iterdir()) == ["keep"]
    assert outside.stat().st_uid == 0 and (outside / "keep").stat().st_uid == 0


def render(name: str, site, **context) -> str:
    return render_template(name, s=site, **context)


def test_the_postgresql_password_is_set_without_psql_getenv_and_quoted_as_sql():
    from deploys.djangoapp.site.skeleton import set_password_command

    site = settings(database="postgresql", django_environment_variables={"DJANGO_DB_PASSWORD": "x"})
    command = set_password_command(site)
    assert "getenv" not in command and "DJANGO_DB_PASSWORD" in command and "'x'" not in command
    # The python3 part, run here with a hostile password in its environment.
    producer = command.split(" | ")[0].replace(f"{site.secrets_loader} ", "")
    hostile = "it's \"quoted\" $HOME `id` \\ ;--"
    sql = subprocess.run(["sh", "-c", producer], capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin", "DJANGO_DB_PASSWORD": hostile}).stdout
    assert sql == "ALTER ROLE \"mysite\" WITH LOGIN PASSWORD 'it''s \"quoted\" $HOME `id` \\ ;--';\n"


def test_assets_of_the_neighbour_release_are_bridged_never_more(tmp_path):
    from deploys.djangoapp.release.inspection import bridge_assets

    def release(name: str, files: dict[str, str]) -> Path:
        static = tmp_path / name / "static-root"
        for path, text in files.items():
            (static / path).parent.mkdir(parents=True, exist_ok=True)
            (static / path).write_text(text)
        (tmp_path / name / ".static").symlink_to(static)
        (tmp_path / name / ".static-own").write_text("".join(f"{path}\n" for path in files))
        return tmp_path / name

    old = release("1", {"app/site.abc.css": "old", "app/site.css": "old", "my file.js": "old"})
    new = release("2", {"app/site.def.css": "new", "app/site.css": "new"})
    subprocess.run(["sh", "-c", bridge_assets('"$live"', str(new))], env={"live": str(old), "PATH": "/usr/bin:/bin"},
                   check=True)
    static = new / ".static"
    assert (static / "app/site.abc.css").read_text() == "old"  # the old page's stylesheet still loads
    assert (static / "my file.js").read_text() == "old"
    assert (static / "app/site.css").read_text() == "new"  # nothing of the new release is overwritten
    # The next release gets release 2's own files only, not what 2 got from 1.
    newest = release("3", {"app/site.ghi.css": "newest"})
    subprocess.run(["sh", "-c", bridge_assets(str(new), str(newest))], check=True)
    assert (newest / ".static/app/site.def.css").exists() and not (newest / ".static/app/site.abc.css").exists()


def test_between_collectstatic_and_the_checks_the_assets_are_bridged_both_ways(tmp_path):
    from deploys.djangoapp.release.inspection import between_command

    def release(name: str, files: dict[str, str]) -> Path:
        for path, text in files.items():
            (tmp_path / name / ".static" / path).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name / ".static" / path).write_text(text)
        return tmp_path / name

    live = release("1", {"app/site.abc.css": "old"})
    (live / ".static-own").write_text("app/site.abc.css\n")
    new = release("2", {"app/site.def.css": "new"})
    (tmp_path / "current").symlink_to(live)
    link_shared = tmp_path / "link-shared.py"
    link_shared.write_text("")
    done = subprocess.run(["sh", "-c", between_command(str(new), str(link_shared), str(tmp_path / "current"))],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    # The live release's page's stylesheet after the switch, and the new one's on a host not yet
    # switched; each release's own list is what it collected.
    assert (new / ".static/app/site.abc.css").read_text() == "old"
    assert (live / ".static/app/site.def.css").read_text() == "new"
    assert (new / ".static-own").read_text() == "app/site.def.css\n"
    assert (live / ".static-own").read_text() == "app/site.abc.css\n"


@pytest.mark.parametrize(("migrates", "restores", "words"), [
    ("true", "true", None),
    ("false", "true", "the database was restored from the snapshot"),
    ("false", "false", "restoring the snapshot /s/v2.dump failed too"),
])
def test_a_failed_migration_says_whether_the_snapshot_came_back(tmp_path, migrates, restores, words):
    from deploys.djangoapp.release.migrate import migrate_command

    # A manage command that fails every time: the migrations cannot be migrated back either.
    (tmp_path / ".django.json").write_text(json.dumps(
        {"pending": ["app.0002_x"], "non_atomic": [], "migrations": {"app": "0002_x"}}))
    command = migrate_command(str(tmp_path), migrates, "/s/v2.dump", take_snapshot="true",
                              restore_snapshot=restores, live_migrations=str(tmp_path / "none.json"))
    result = subprocess.run(["sh", "-c", command], capture_output=True, text=True)
    assert result.returncode == (0 if words is None else 1)
    if words:
        assert words in result.stderr
        assert ("restored from" in result.stderr) == (restores == "true")  # never claimed when it failed


def test_uwsgi_wsgi_file_loads_the_environment_then_the_project_application(tmp_path):
    site = settings(django_deployment_root_folder=str(tmp_path / "srv"),
                    django_webapplication_additional_environment_settings={"FEATURE_FLAG": "on %n $(x)"},
                    django_environment_variables={"API_TOKEN": "s3cret 'q'"})
    bin_dir = Path(site.environment_loader).parent
    bin_dir.mkdir(parents=True)
    Path(site.environment_file).write_text(environment_file_content(site.app_environment))
    Path(site.secret_file).write_text(secret_file_content(site.secrets))
    Path(site.environment_loader).write_text(render("app/app_environment.py.j2", site))
    Path(site.wsgi_entry).write_text(render("app/wsgi.py.j2", site))
    project = tmp_path / "project" / "mysite"
    project.mkdir(parents=True)
    (project / "__init__.py").write_text("")
    # The project's own wsgi.py reads its environment at import, as Django's does.
    (project / "wsgi.py").write_text("import os\nseen = dict(os.environ)\napplication = object()\n")
    loaded = subprocess.run(
        [sys.executable, "-c", "import json, runpy, sys; sys.path.insert(0, sys.argv[2]); "
                               "runpy.run_path(sys.argv[1])['application']; import mysite.wsgi as w; "
                               "print(json.dumps([w.seen['FEATURE_FLAG'], w.seen['API_TOKEN']]))",
         site.wsgi_entry, str(tmp_path / "project")],
        capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin"})
    assert json.loads(loaded.stdout) == ["on %n $(x)", "s3cret 'q'"]
