"""A project's dependencies: the file of the source tree that declares them, the virtualenv they
key, the Python they ask for, and the commands that install them (release/dependencies.py)."""

import subprocess
import sys
from pathlib import Path

import pytest

from deploys.djangoapp.release.dependencies import (
    dependency_hash,
    install_commands,
    plan_dependencies,
    poetry_specifier,
    python_mismatch,
)
from deploys.djangoapp.settings import DeploySettingsError
from deploys.djangoapp.release.source import pack_directory
from tests.unit.sites import settings


REPO = Path(__file__).resolve().parents[3]


UV_PYPROJECT = b'[project]\nname = "mysite"\nrequires-python = ">=3.12"\ndependencies = ["django>=5.2"]\n'


def source(tmp_path, files: dict[str, bytes]):
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(content)
    return pack_directory(str(tmp_path))


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
