"""What makes a stock project deploy: its dependency file, its Python, the ecosystem's environment
variables, the switch's checks, the first error an operator sees, and the links to shared/."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from deploys.djangoapp.core.context import render_template
from deploys.djangoapp.release.dependencies import (
    dependency_hash,
    install_commands,
    plan_dependencies,
    poetry_specifier,
    python_mismatch,
)
from deploys.djangoapp.settings.environment import (
    environment_file_content,
    has_credentials,
    mask_credentials,
    secret_file_content,
)
from deploys.djangoapp.release import switch
from deploys.djangoapp.settings.placement import Fleet, plan_fleet
from deploys.djangoapp.release.inspection import explain_failure
from deploys.djangoapp.settings import DeploySettingsError
from deploys.djangoapp.release.source import pack_directory
from deploys.djangoapp.release.switch import (
    LOG_LINES,
    SwitchPlan,
    back_command,
    restart_services,
    switch_command,
    switch_plan,
    wake_master,
    web_check,
    worker_check,
)
from tests.unit.sites import placed_fleet, settings
from tests.unit.steps import Steps

REPO = Path(__file__).resolve().parents[3]
UV_PYPROJECT = b'[project]\nname = "mysite"\nrequires-python = ">=3.12"\ndependencies = ["django>=5.2"]\n'


def source(tmp_path, files: dict[str, bytes]):
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(content)
    return pack_directory(str(tmp_path))


# ------------------------------------------------------------------ dependencies

def test_auto_prefers_the_uv_lock_and_installs_it_as_locked_without_dev_groups(tmp_path):
    packed = source(tmp_path, {"pyproject.toml": UV_PYPROJECT, "uv.lock": b"version = 1\n",
                               "requirements.txt": b"django\n", "manage.py": b""})
    plan = plan_dependencies(settings(), packed)
    assert (plan.kind, plan.file, plan.requires_python) == ("uv.lock", "uv.lock", ">=3.12")
    [command] = install_commands(plan, "/srv/r/1", "/srv/venvs/abc", "/opt/uv", [])
    assert "uv sync" in command and "--locked" in command and "--no-dev" in command
    assert "--no-install-project" in command and "UV_PROJECT_ENVIRONMENT=/srv/venvs/abc" in command
    assert "--project /srv/r/1" in command and "UV_PYTHON_DOWNLOADS=never" in command


def test_the_virtualenv_is_keyed_by_the_lock(tmp_path):
    first = plan_dependencies(settings(), source(tmp_path / "a", {"pyproject.toml": UV_PYPROJECT,
                                                                    "uv.lock": b"version = 1\n", "app.py": b"1"}))
    code_changed = plan_dependencies(settings(), source(tmp_path / "b", {"pyproject.toml": UV_PYPROJECT,
                                                                           "uv.lock": b"version = 1\n",
                                                                           "app.py": b"2"}))
    lock_changed = plan_dependencies(settings(), source(tmp_path / "c", {"pyproject.toml": UV_PYPROJECT,
                                                                           "uv.lock": b"version = 1\n#x\n",
                                                                           "app.py": b"1"}))
    assert dependency_hash(settings(), first) == dependency_hash(settings(), code_changed)
    assert dependency_hash(settings(), first) != dependency_hash(settings(), lock_changed)
    assert dependency_hash(settings(), first) != dependency_hash(settings(django_dependencies=["x"]), first)


def test_the_key_of_several_requirements_files_is_the_same_in_every_run(tmp_path):
    """Python orders sets differently from one process to the next: the key must not follow."""
    source(tmp_path / "project", {"requirements/prod.txt": b"-r base.txt\n", "requirements/base.txt": b"x\n",
                                  "requirements/dev.txt": b"y\n"})
    code = ("from deploys.djangoapp.release.dependencies import plan_dependencies, dependency_hash; "
            "from deploys.djangoapp.settings import problems; from deploys.djangoapp.release.source import pack_directory; "
            "import sys; s = problems({'websiteproject': 'a', 'url': 'a.b', 'webserver': 'nginx', "
            "'django_deployment_root_folder': '/srv/www', 'django_settings_folder': 'a', 'django_settings_file': 'a.s', "
            "'django_dependency_file': 'requirements/prod.txt'})[0]; "
            "print(dependency_hash(s, plan_dependencies(s, pack_directory(sys.argv[1]))))")
    keys = {subprocess.run([sys.executable, "-c", code, str(tmp_path / "project")], capture_output=True, text=True,
                           check=True, cwd=REPO, env={"PYTHONHASHSEED": str(seed), "PATH": "/usr/bin:/bin"}).stdout
            for seed in range(6)}
    assert len(keys) == 1, keys


def test_pyproject_without_a_lock_and_requirements_with_hashes(tmp_path):
    plan = plan_dependencies(settings(), source(tmp_path / "a", {"pyproject.toml": UV_PYPROJECT}))
    assert plan.kind == "pyproject.toml"
    assert "uv pip install" in install_commands(plan, "/r", "/v", "uv", [])[0]
    plan = plan_dependencies(settings(), source(tmp_path / "b", {
        "requirements.txt": b"django==5.2.1 --hash=sha256:00\n"}))
    assert plan.kind == "requirements" and plan.hashes
    commands = install_commands(plan, "/r", "/v", "uv", ["whitenoise==6.*"])
    assert "--require-hashes -r /r/requirements.txt" in commands[0]
    assert commands[1].endswith("'whitenoise==6.*'")  # extras on top, quoted


def test_a_named_file_a_seed_switch_and_none(tmp_path):
    packed = source(tmp_path, {"requirements/production.txt": b"django\n", "requirements/base.txt": b"x\n",
                               "pyproject.toml": b"[tool.poetry]\n"})
    plan = plan_dependencies(settings(django_dependency_file="requirements/production.txt"), packed)
    assert plan.file == "requirements/production.txt" and b"requirements/base.txt" in plan.key_material
    with pytest.raises(DeploySettingsError, match="not in the release source"):
        plan_dependencies(settings(django_dependency_file="nope.txt"), packed)
    with pytest.raises(DeploySettingsError, match="django_pip_install_requirements"):
        plan_dependencies(settings(django_pip_install_requirements=True), packed)
    assert plan_dependencies(settings(django_dependency_file="none"), packed).kind == "none"


POETRY_PYPROJECT = b'[tool.poetry]\nname = "site"\n\n[tool.poetry.dependencies]\npython = "^3.11"\ndjango = "5.2.*"\n'


def test_a_poetry_lock_is_exported_by_pinned_poetry_and_installed_by_uv(tmp_path):
    packed = source(tmp_path / "a", {"pyproject.toml": POETRY_PYPROJECT, "poetry.lock": b"# lock 1\n",
                                     "requirements.txt": b"django\n"})
    plan = plan_dependencies(settings(), packed)
    assert (plan.kind, plan.file) == ("poetry.lock", "poetry.lock")  # before requirements.txt
    assert (plan.requires_python, plan.python_source) == ("<4,>=3.11", "pyproject.toml [tool.poetry.dependencies] python")
    assert python_mismatch(settings(), plan, "3.10.12") and python_mismatch(settings(), plan, "3.11.2") is None
    [command] = install_commands(plan, "/srv/r/1", "/srv/venvs/abc", "/opt/uv", [])
    export, install = command.split(" && ")
    assert "tool run" in export and "--from poetry==2.5.1 --with poetry-plugin-export==1.10.1 poetry export" in export
    assert "--only main" in export and "--directory /srv/r/1 " in export
    assert "--output /srv/venvs/abc/requirements-from-poetry.lock.txt" in export
    assert "uv pip install" in install and install.endswith("-r /srv/venvs/abc/requirements-from-poetry.lock.txt")
    assert "--require-hashes" not in install  # a path or git dependency has no hash; uv checks those given
    # The lock and the groups in pyproject.toml key the virtualenv; a uv.lock beside it wins.
    relocked = plan_dependencies(settings(), source(tmp_path / "b", {"pyproject.toml": POETRY_PYPROJECT,
                                                                     "poetry.lock": b"# lock 2\n"}))
    regrouped = plan_dependencies(settings(), source(tmp_path / "c", {
        "pyproject.toml": POETRY_PYPROJECT + b"\n[tool.poetry.group.dev.dependencies]\npytest = \"*\"\n",
        "poetry.lock": b"# lock 1\n"}))
    keys = {dependency_hash(settings(), each) for each in (plan, relocked, regrouped)}
    assert len(keys) == 3
    both = plan_dependencies(settings(), source(tmp_path / "d", {"pyproject.toml": UV_PYPROJECT,
                                                                 "uv.lock": b"version = 1\n", "poetry.lock": b""}))
    assert both.kind == "uv.lock"
    nested = plan_dependencies(settings(django_dependency_file="backend/poetry.lock"), source(
        tmp_path / "e", {"backend/pyproject.toml": POETRY_PYPROJECT, "backend/poetry.lock": b""}))
    assert "--directory /srv/r/1/backend " in install_commands(nested, "/srv/r/1", "/v", "uv", [])[0]
    with pytest.raises(DeploySettingsError, match="no pyproject.toml beside it"):
        plan_dependencies(settings(), source(tmp_path / "f", {"poetry.lock": b""}))


@pytest.mark.parametrize(("constraint", "specifier"), [
    ("^3.11", "<4,>=3.11"), ("~3.11", "<3.12,>=3.11"), (">=3.10,<3.14", "<3.14,>=3.10"),
    ("^3.11.2", "<4,>=3.11.2"), ("3.11", None), ("*", None)])
def test_poetrys_python_constraints_as_pep_440(constraint, specifier):
    assert poetry_specifier(constraint) == specifier


def test_the_python_the_project_asks_for_is_checked_with_one_clear_error(tmp_path):
    plan = plan_dependencies(settings(), source(tmp_path / "a", {"pyproject.toml": UV_PYPROJECT}))
    error = python_mismatch(settings(), plan, "3.11.2")
    assert ">=3.12" in error and "3.11.2" in error and "python_interpreter" in error
    assert python_mismatch(settings(), plan, "3.13.5") is None
    pinned = plan_dependencies(settings(), source(tmp_path / "b", {".python-version": b"3.13\n",
                                                                   "requirements.txt": b"django\n"}))
    assert pinned.requires_python == "==3.13.*" and python_mismatch(settings(), pinned, "3.11.2")


# ------------------------------------------------------------------ environment

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


# ------------------------------------------------------------------ switch and checks

def plan(**overrides) -> SwitchPlan:
    values = dict(link="/srv/www/mysite/current", release_dir="/srv/www/mysite/releases/2", release_id="2",
                  app_service="uwsgi-mysite",
                  health_url="https://mysite.example.com/", resolve="mysite.example.com:443:127.0.0.1",
                  strict_health=False, celery_services=("celery-mysite", "celery-beat-mysite"), timeout=7)
    return SwitchPlan(**{**values, **overrides})


def run_check(script: str, fake_bin: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30,
                          env={"PATH": f"{fake_bin}:/usr/bin:/bin", **env})


@pytest.fixture
def fake_bin(tmp_path):
    """curl, journalctl and systemctl stand-ins answering from environment variables."""
    (tmp_path / "curl").write_text('#!/bin/sh\nprintf "%s" "$ANSWER"\n')
    (tmp_path / "journalctl").write_text('#!/bin/sh\nprintf "%s\\n" "$JOURNAL"\n')
    (tmp_path / "systemctl").write_text('#!/bin/sh\n[ "$ACTIVE" = yes ]\n')
    (tmp_path / "sleep").write_text("#!/bin/sh\n")  # the deadline passes at once (timeout=0)
    for tool in ("curl", "journalctl", "systemctl", "sleep"):
        (tmp_path / tool).chmod(0o755)
    return tmp_path


@pytest.mark.parametrize(("strict", "answer", "healthy"), [
    (False, "200 2", True), (False, "404 2", True), (False, "302 2", True),
    (False, "500 2", False), (False, "400 2", False), (False, "200 1", False), (False, "000 ", False),
    (True, "200 2", True), (True, "404 2", False),
])
def test_web_check_accepts_what_a_stock_project_answers(fake_bin, strict, answer, healthy):
    result = run_check(web_check(plan(strict_health=strict, timeout=0)), fake_bin,
                       {"ANSWER": answer, "JOURNAL": "Traceback: the app's last words"})
    assert (result.returncode == 0) is healthy, result.stderr
    if healthy:
        return
    wanted = "200 from release 2" if strict else "an answer below 500 from release 2"
    said = result.stderr.splitlines()
    assert said[0] == (f"health check failed: https://mysite.example.com/ did not give {wanted} within 0 s "
                       f"(last answer: {answer})")
    hint = {"400": ["Django answers 400 Bad Request: its ALLOWED_HOSTS does not hold the site name (the app gets "
                    "it as DJANGO_ALLOWED_HOSTS)"],
            "500": ["the app fails: its log follows", "Traceback: the app's last words"],
            "000": ["nothing answers: is the webserver running?"]}.get(answer[:3], [])
    assert said[1:] == hint, said


@pytest.mark.parametrize(("journal", "active", "ready"), [
    ("[INFO] celery@web1 ready.", "yes", True),
    ("ModuleNotFoundError: No module named 'gone'", "yes", False),
    ("[INFO] celery@web1 ready.", "no", False),
])
def test_worker_check_needs_a_ready_worker_that_still_runs(fake_bin, journal, active, ready):
    result = run_check("started=0; " + worker_check(plan(timeout=0), "$started"), fake_bin,
                       {"JOURNAL": journal, "ACTIVE": active})
    assert (result.returncode == 0) is ready, result.stderr
    if not ready and active == "yes":
        assert "No module named 'gone'" in result.stderr


def test_the_switch_goes_back_and_restarts_the_old_release_when_a_check_fails():
    command = switch_command(plan())
    previous = command.index('previous="$(readlink /srv/www/mysite/current)"')
    switch_to_new = command.index("ln -sfn /srv/www/mysite/releases/2")
    back = command.index('ln -sfn "$previous"')
    assert previous < switch_to_new < command.index("curl") < command.index("journalctl") < back
    assert "systemctl restart celery-mysite celery-beat-mysite" in command[back:]
    assert "systemctl reload-or-restart uwsgi-mysite" in command[back:]
    assert "systemctl stop uwsgi-mysite celery-mysite celery-beat-mysite" in command[back:]  # no previous


def test_a_graceful_uwsgi_reload_wakes_its_master_and_nothing_else_does():
    woken = switch_command(plan(master_fifo="/srv/www/mysite/uwsgi/master.fifo", as_app_user=APP_USER))
    reload = f"systemctl reload-or-restart uwsgi-mysite && {{ {APP_USER} sh -c 'i=0; while"
    # After each reload of uWSGI (to the new release, and back to the old one), never before it.
    assert woken.count(reload) == 2 and woken.count("master.fifo") == 2
    assert woken.index("ln -sfn /srv/www/mysite/releases/2") < woken.index(reload) < woken.index("curl")
    assert "master.fifo" not in switch_command(plan())  # gunicorn: no master to wake


def test_the_master_is_woken_only_until_the_checks_are_over(tmp_path, fake_bin):
    (fake_bin / "sleep").unlink()  # the real one: the wake loop paces itself
    (fake_bin / "dd").write_text(f"#!/bin/sh\necho woken >> {tmp_path / 'writes'}\n")
    (fake_bin / "dd").chmod(0o755)
    (tmp_path / "releases" / "2").mkdir(parents=True)
    command = switch_command(plan(link=str(tmp_path / "current"), release_dir=str(tmp_path / "releases" / "2"),
                                  celery_services=(), master_fifo=str(tmp_path / "master.fifo")))
    switched = run_check(command, fake_bin, {"ANSWER": "200 2", "ACTIVE": "yes"})
    assert switched.returncode == 0, switched.stderr
    writes = tmp_path / "writes"

    def count() -> int:
        return writes.read_text().count("woken") if writes.exists() else 0

    subprocess.run(["sleep", "0.3"])
    seen = count()
    subprocess.run(["sleep", "0.5"])
    assert count() == seen < 60  # stopped when the check passed, long before its 60 writes


def test_waking_the_master_writes_no_command_and_never_waits(tmp_path):
    fifo = tmp_path / "it's a master.fifo"
    os.mkfifo(fifo)
    # No reader (the master is starting anew): the writes fail at once, nothing hangs.
    alone = subprocess.run(["sh", "-c", wake_master(str(fifo), "", times=3, pause=0.01) + " wait"],
                           capture_output=True, text=True, timeout=10)
    assert alone.returncode == 0
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        started = subprocess.run(["sh", "-c", wake_master(str(fifo), "", times=3, pause=0.01)],
                                 capture_output=True, text=True, timeout=10)
        assert started.returncode == 0 and started.stdout == ""  # back at once, in the background
        for _ in range(100):
            subprocess.run(["sleep", "0.02"])
            written = b""
            try:
                written = os.read(reader, 16)
            except BlockingIOError:
                pass
            if written:
                break
        assert written and set(written) == {ord("\n")}  # a newline is no uWSGI master command
    finally:
        os.close(reader)


APP_USER = "setpriv --reuid=nobody --regid=nogroup --init-groups --reset-env --"


def test_the_master_fifo_is_written_with_the_app_users_rights_and_no_planted_link_is_followed():
    """The app owns the FIFO's folder: whatever it puts there instead of the FIFO (a link to a
    file only root may write, a root file linked in) is neither followed nor written, and nothing
    is made where the FIFO is missing."""
    folder = Path(tempfile.mkdtemp(prefix="fifo-folder-", dir="/tmp"))
    try:
        folder.chmod(0o755)
        outside = folder / "root-only"
        outside.write_text("root's own\n")
        outside.chmod(0o600)
        control = folder / "uwsgi"
        control.mkdir()
        os.chown(control, 65534, 65534)
        (control / "master.fifo").symlink_to(outside)
        # A root file in the app's folder, as a hard link would put it there: the app may not write it.
        (control / "linked.fifo").write_text("root's too\n")
        for fifo in ("master.fifo", "linked.fifo", "gone.fifo"):
            subprocess.run(["sh", "-c", wake_master(str(control / fifo), APP_USER, times=3, pause=0.01) + " wait"],
                           check=True, timeout=10)
        assert outside.read_text() == "root's own\n"
        assert (control / "linked.fifo").read_text() == "root's too\n"
        assert not (control / "gone.fifo").exists()
    finally:
        shutil.rmtree(folder)


@pytest.mark.parametrize("live", ["/srv/www/mysite/releases/1", None])
def test_the_switch_run_with_a_failing_check_ends_where_it_started(tmp_path, fake_bin, live):
    """The switch itself, run against a folder: with the web check failing, `current` points where
    it pointed before (or is gone, on a first release), and the run fails."""
    link = tmp_path / "current"
    if live:
        link.symlink_to(live)
    (fake_bin / "date").write_text("#!/bin/sh\necho 0\n")
    (fake_bin / "date").chmod(0o755)
    (fake_bin / "systemctl").write_text(f'#!/bin/sh\necho "$*" >> {tmp_path}/systemctl.log\n')
    release = tmp_path / "releases" / "2"
    release.mkdir(parents=True)
    command = switch_command(plan(link=str(link), release_dir=str(release), timeout=0, celery_services=()))
    result = run_check(command, fake_bin, {"ANSWER": "500 2", "ACTIVE": "yes"})
    assert result.returncode == 1
    assert (release / ".switched-from").read_text() == f"{live or ''}\n"  # it did switch, then went back
    assert (os.readlink(link) if live else os.path.lexists(link)) == (live or False)
    calls = (tmp_path / "systemctl.log").read_text().splitlines()
    # Back on the release before, or, with none, the app server stopped.
    assert calls[-1] == ("reload-or-restart uwsgi-mysite" if live else "stop uwsgi-mysite"), calls


def test_a_rollbacks_switch_with_a_failing_check_leaves_going_back_to_the_cleanup(tmp_path, fake_bin):
    """A rollback's host stays on the target when its check fails (the run's cleanup migrates the
    database forward first, then brings it back: undo_command)."""
    from deploys.djangoapp.release.switch import undo_command

    link = tmp_path / "current"
    link.symlink_to("/srv/www/mysite/releases/3")
    (fake_bin / "date").write_text("#!/bin/sh\necho 0\n")
    (fake_bin / "date").chmod(0o755)
    (tmp_path / "releases" / "2").mkdir(parents=True)
    rollback = plan(link=str(link), release_dir=str(tmp_path / "releases" / "2"), timeout=0, celery_services=(),
                    switch_back_at_once=False)
    result = run_check(switch_command(rollback), fake_bin, {"ANSWER": "500 2", "ACTIVE": "yes"})
    assert result.returncode == 1
    assert os.readlink(link) == str(tmp_path / "releases" / "2")
    assert "the run's failure cleanup brings every host back to /srv/www/mysite/releases/3" in result.stderr
    assert run_check(undo_command(rollback), fake_bin, {"ACTIVE": "yes"}).returncode == 0
    assert os.readlink(link) == "/srv/www/mysite/releases/3"


# ------------------------------------------------------------------ first errors

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


# ------------------------------------------------------------------ links to shared/

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


@pytest.mark.parametrize("celery_services", [(), ("celery-mysite",), ("celery-mysite", "celery-beat-mysite")])
@pytest.mark.parametrize("app_service", [None, "uwsgi-mysite"])
@pytest.mark.parametrize("switch_back_at_once", [True, False])
def test_every_shape_of_switch_parses_under_dash(celery_services, app_service, switch_back_at_once):
    command = switch_command(plan(celery_services=celery_services, app_service=app_service,
                                  switch_back_at_once=switch_back_at_once))
    parsed = subprocess.run(["sh", "-n", "-c", command], capture_output=True, text=True)
    assert parsed.returncode == 0, parsed.stderr


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


def test_a_host_that_switched_goes_back_when_the_run_fails_elsewhere(tmp_path, fake_bin):
    from deploys.djangoapp.release.switch import undo_command

    releases = tmp_path / "releases"
    (releases / "1").mkdir(parents=True)
    (releases / "2").mkdir()
    link = tmp_path / "current"
    link.symlink_to(releases / "1")
    switched = plan(link=str(link), release_dir=str(releases / "2"), celery_services=(), timeout=0)
    assert run_check(switch_command(switched), fake_bin, {"ANSWER": "200 2", "ACTIVE": "yes"}).returncode == 0
    assert os.readlink(link) == str(releases / "2")
    # Another host failed: this one, healthy on release 2, goes back to 1 as well.
    assert run_check(undo_command(switched), fake_bin, {"ACTIVE": "yes"}).returncode == 0
    assert os.readlink(link) == str(releases / "1")
    # A host that did not switch (or went back already) is left as it is.
    assert run_check(undo_command(switched), fake_bin, {"ACTIVE": "yes"}).returncode == 0
    assert os.readlink(link) == str(releases / "1")


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


def test_the_key_of_the_same_dependencies_stays_from_one_version_of_the_kit_to_the_next(tmp_path):
    """Hosts keep their virtualenvs across an upgrade of the kit only if the key is computed the same
    way: these are the keys this version gives (a change here rebuilds every host's virtualenv on
    its next release, and must be meant)."""
    requirements = source(tmp_path / "a", {"requirements/prod.txt": b"-r base.txt\n", "requirements/base.txt": b"x\n",
                                           "requirements/dev.txt": b"y\n", "manage.py": b""})
    site = settings(django_dependency_file="requirements/prod.txt", django_dependencies=["whitenoise", "sentry-sdk"])
    locked = source(tmp_path / "b", {"pyproject.toml": UV_PYPROJECT, "uv.lock": b"version = 1\n"})
    keys = (dependency_hash(site, plan_dependencies(site, requirements)),
            dependency_hash(settings(app_server="gunicorn"), plan_dependencies(settings(), locked)))
    assert keys == ("28d1bca331b4e6d9", "b78504fb28183e1d")


def test_the_seed_role_s_switch_takes_the_top_requirements_txt_or_refuses(tmp_path):
    chosen = plan_dependencies(settings(django_pip_install_requirements=True),
                               source(tmp_path / "a", {"requirements.txt": b"Django==5.2\n",
                                                       "pyproject.toml": UV_PYPROJECT, "uv.lock": b"x"}))
    assert (chosen.kind, chosen.file) == ("requirements", "requirements.txt")
    with pytest.raises(DeploySettingsError) as refused:
        plan_dependencies(settings(django_pip_install_requirements=True),
                          source(tmp_path / "b", {"app/requirements.txt": b"Django\n"}))
    assert str(refused.value) == "django_pip_install_requirements: the source has no requirements.txt"


def test_a_pyproject_without_dependencies_is_passed_over_and_a_broken_one_named(tmp_path):
    # No [project] dependencies (a tool's settings only): the requirements file beside it is used.
    chosen = plan_dependencies(settings(), source(tmp_path / "a", {
        "pyproject.toml": b"[tool.black]\nline-length = 100\n", "requirements.txt": b"Django\n"}))
    assert (chosen.kind, chosen.file) == ("requirements", "requirements.txt")
    with pytest.raises(DeploySettingsError) as refused:
        plan_dependencies(settings(), source(tmp_path / "b", {"pyproject.toml": b"[project\n"}))
    assert str(refused.value).startswith("django_dependency_file: pyproject.toml is not valid TOML: ")
    with pytest.raises(DeploySettingsError) as refused:
        plan_dependencies(settings(django_dependency_file="deps.cfg"), source(tmp_path / "c", {"deps.cfg": b"x"}))
    assert str(refused.value) == ("django_dependency_file: deps.cfg is not a uv.lock, poetry.lock, pyproject.toml "
                                  "or requirements .txt file")


def test_a_source_without_dependencies_plans_none_with_its_python(tmp_path):
    plan = plan_dependencies(settings(), source(tmp_path, {"manage.py": b"", ".python-version": b"3.11\n"}))
    assert plan.kind == "none" and plan.file is None and plan.key_material == b"" and not plan.hashes
    assert (plan.requires_python, plan.python_source) == ("==3.11.*", ".python-version")


def test_a_project_in_a_subfolder_reads_its_own_python_pin_and_requirements(tmp_path):
    plan = plan_dependencies(settings(django_dependency_file="app/requirements.txt"), source(tmp_path, {
        "app/requirements.txt": b"-r requirements-base.txt\n", "app/requirements-base.txt": b"Django\n",
        "app/.python-version": b"3.12.1\n", ".python-version": b"3.9\n", "requirements-other.txt": b"flask\n",
        "app/notes.txt": b"not a requirements file\n"}))
    assert (plan.requires_python, plan.python_source) == ("==3.12.1", "app/.python-version")
    assert plan.key_material == (b"app/requirements-base.txt\0Django\n\0"
                                 b"app/requirements.txt\0-r requirements-base.txt\n\0")


@pytest.fixture
def logging_bin(tmp_path):
    """curl, journalctl and systemctl stand-ins that note each call (its arguments, one line) in
    $CALLS; curl answers $ANSWER, journalctl prints $JOURNAL, systemctl succeeds."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool, then in (("curl", 'printf "%s" "$ANSWER"'), ("journalctl", 'printf "%s\\n" "$JOURNAL"'),
                       ("systemctl", "true"), ("sleep", "true")):
        (folder / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> "$CALLS"\n{then}\n')
        (folder / tool).chmod(0o755)
    return folder


def calls_of(script: str, folder: Path, **env) -> tuple[subprocess.CompletedProcess, list[str]]:
    calls = folder.parent / "calls"
    calls.write_text("")
    done = run_check(script, folder, {"CALLS": str(calls), "JOURNAL": "", "ANSWER": "", **env})
    return done, [line for line in calls.read_text().splitlines() if not line.startswith("sleep")]


def test_each_check_asks_about_its_own_service_and_address(logging_bin):
    done, calls = calls_of(web_check(plan(timeout=0)), logging_bin, ANSWER="503 2")
    assert done.returncode == 1
    assert calls[0] == ("curl -sk -o /dev/null --max-time 5 --resolve mysite.example.com:443:127.0.0.1 "
                        "-w %{http_code} %header{x-release-id} https://mysite.example.com/")
    assert calls[-1] == f"journalctl -u uwsgi-mysite -n {LOG_LINES} --no-pager -o cat"
    done, calls = calls_of(f"{worker_check(plan(), '1700000000')}", logging_bin,
                           JOURNAL="celery@web1 ready.")
    assert done.returncode == 0, done.stderr
    assert calls == ['journalctl -u celery-mysite --since @1700000000 --no-pager -o cat',
                     "systemctl is-active -q celery-mysite", "systemctl is-active -q celery-beat-mysite"]


def test_a_worker_host_s_switch_waits_for_the_worker_started_by_this_switch(logging_bin, tmp_path):
    release = tmp_path / "releases" / "2"
    release.mkdir(parents=True)
    worker = plan(link=str(tmp_path / "current"), release_dir=str(release), app_service=None)
    done, calls = calls_of(switch_command(worker), logging_bin, JOURNAL="celery@worker1 ready.")
    assert done.returncode == 0, done.stderr
    assert calls[0] == "systemctl restart celery-mysite celery-beat-mysite"
    since = calls[1].split("--since ")[1].split(" ")[0]
    assert since.startswith("@") and since[1:].isdigit(), calls[1]


def test_with_nothing_to_restart_or_check_a_switch_only_moves_the_link(logging_bin, tmp_path):
    release = tmp_path / "releases" / "2"
    release.mkdir(parents=True)
    bare = plan(link=str(tmp_path / "current"), release_dir=str(release), app_service=None, celery_services=())
    assert restart_services(bare) == "true"
    done, calls = calls_of(switch_command(bare), logging_bin)
    assert done.returncode == 0 and calls == [] and os.readlink(tmp_path / "current") == str(release)
    # Going back with no release before: nothing to stop, the link goes.
    done, calls = calls_of(f"previous=; {back_command(bare)}", logging_bin)
    assert done.returncode == 0 and calls == [] and not os.path.lexists(tmp_path / "current")
    (tmp_path / "current").symlink_to(release)
    workers = plan(link=str(tmp_path / "current"), release_dir=str(release), app_service=None)
    done, calls = calls_of(f"previous=; {back_command(workers)}", logging_bin)
    assert calls == ["systemctl stop celery-mysite celery-beat-mysite"]


def test_each_host_switches_as_its_settings_say():
    site = settings(health_check_path="/health/", health_check_timeout=30)
    assert switch_plan(site, "v2") == SwitchPlan(
        link="/srv/www/mysite/current", release_dir="/srv/www/mysite/releases/v2", release_id="v2",
        app_service=site.app_service, app_restart=site.app_restart, master_fifo=site.uwsgi_master_fifo,
        as_app_user=site.as_app_user, health_url="https://mysite.example.com/health/",
        resolve="mysite.example.com:443:127.0.0.1", strict_health=True, celery_services=(), timeout=30,
        switch_back_at_once=True)
    assert site.app_service == "uwsgi-mysite" and site.uwsgi_master_fifo
    stock = switch_plan(settings(), "v3", switch_back_at_once=False)
    assert (stock.health_url, stock.strict_health, stock.switch_back_at_once) == ("https://mysite.example.com/", False,
                                                                               False)
    assert switch_plan(settings(app_server="gunicorn"), "v2").master_fifo is None
    # A worker-only host has no app server to check; its Celery services are.
    worker = settings(celery=True, redis_url="redis://10.0.0.3:6379/0")
    worker._fleet, worker._host = Fleet({"web1": frozenset({"web"}), "worker1": frozenset({"worker"})},
                                        {"web1": "10.0.0.1", "worker1": "10.0.0.2"}, "web1"), "worker1"
    assert switch_plan(worker, "v2").app_service is None
    assert switch_plan(worker, "v2").celery_services == tuple(worker.celery_services) != ()


def test_the_fleet_switches_batch_after_batch_each_host_in_its_own(monkeypatch):
    sites = placed_fleet(rolling_batch_size=1)
    steps = Steps(monkeypatch).replace(switch, "switch_release")
    steps.host(switch, "web2")
    switch.switch_in_batches(sites["web2"], "v2", switch_back_at_once=False)
    assert [step.name for step in steps] == ["Switch to release v2 and check it (batch 1 of 2)",
                                             "Switch to release v2 and check it (batch 2 of 2)"]
    assert [step.runs() for step in steps] == [False, True]  # web2 is in the second batch
    assert steps[0].kwargs["plan"] == switch_plan(sites["web2"], "v2", switch_back_at_once=False)
    steps.clear()
    switch.switch_in_batches(placed_fleet()["web2"], "v3")
    assert [(step.name, step.runs()) for step in steps] == [("Switch to release v3 and check it", True)]
    assert steps[0].kwargs["plan"].switch_back_at_once
