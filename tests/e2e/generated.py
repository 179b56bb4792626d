"""Projects made by the ecosystem's own tools, as a team starts them: `django-admin startproject`,
`wagtail start`, a uv project (`uv init`, `uv add`) and a Poetry project (`poetry init`,
`poetry add`). Settings are changed only where the tools' own docs say to read a value from the
environment (or to add Celery)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from deploys.djangoapp.release.dependencies import POETRY

BIN = Path(sys.executable).parent


def _run(*command, cwd: Path) -> None:
    subprocess.run([str(part) for part in command], cwd=cwd, check=True, capture_output=True, text=True)


def startproject(folder: Path) -> Path:
    """A stock startproject: sqlite in BASE_DIR, no STATIC_ROOT, DEBUG on, no dependency file."""
    folder.mkdir(parents=True)
    _run(BIN / "django-admin", "startproject", "mysite", ".", cwd=folder)
    return folder


def wagtail_site(folder: Path) -> Path:
    """A stock `wagtail start` site (requirements.txt, sqlite in BASE_DIR, settings package), its
    production settings reading SECRET_KEY and ALLOWED_HOSTS from the environment as Wagtail's
    deployment docs say."""
    folder.mkdir(parents=True)
    _run(BIN / "wagtail", "start", "mysite", ".", cwd=folder)
    production = folder / "mysite" / "settings" / "production.py"
    production.write_text(production.read_text().replace(
        "DEBUG = False\n",
        "DEBUG = False\n\nimport os\n\nSECRET_KEY = os.environ[\"DJANGO_SECRET_KEY\"]\n"
        "ALLOWED_HOSTS = os.environ[\"DJANGO_ALLOWED_HOSTS\"].split(\",\")\n", 1))
    return folder


CELERY_APP = '''import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")

app = Celery("shop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
'''
TASKS = '''from celery import shared_task


@shared_task
def add(x, y):
    return x + y
'''


def uv_project(folder: Path) -> Path:
    """`uv init` + `uv add` (pyproject.toml and uv.lock, no requirements.txt), a startproject in it
    whose DATABASES come from DATABASE_URL (dj-database-url's docs) and a Celery app as Celery's
    "First steps with Django" lays it out, its broker from CELERY_BROKER_URL."""
    folder.mkdir(parents=True)
    _run(BIN / "uv", "init", "--app", "--no-package", "--no-readme", "--vcs", "none", "--author-from", "none",
         "--name", "shop", cwd=folder)
    (folder / "main.py").unlink()
    _run(BIN / "uv", "add", "--no-sync", "django==5.2.*", "dj-database-url==3.*", "psycopg[binary]==3.2.*",
         "celery[redis]==5.5.*", cwd=folder)
    _run(BIN / "django-admin", "startproject", "shop", ".", cwd=folder)
    settings = folder / "shop" / "settings.py"
    text = settings.read_text().replace("from pathlib import Path\n",
                                        "import os\nfrom pathlib import Path\n\nimport dj_database_url\n", 1)
    start = text.index("DATABASES = {")
    end = text.index("\n}\n", start) + 3
    text = (text[:start] + 'DATABASES = {"default": dj_database_url.config(conn_max_age=600)}\n' + text[end:]
            + '\nCELERY_BROKER_URL = os.environ["CELERY_BROKER_URL"]\nCELERY_IMPORTS = ["shop.tasks"]\n')
    settings.write_text(text)
    (folder / "shop" / "celery.py").write_text(CELERY_APP)
    (folder / "shop" / "tasks.py").write_text(TASKS)
    init = folder / "shop" / "__init__.py"
    init.write_text('from .celery import app as celery_app\n\n__all__ = ("celery_app",)\n')
    return folder


def poetry(*arguments, cwd: Path) -> None:
    """Poetry, the version the deploy exports locks with, run by uv as a team's `pipx run` would."""
    _run(BIN / "uv", "tool", "run", "--quiet", "--from", POETRY, "poetry", "--no-interaction", *arguments, cwd=cwd)


def poetry_project(folder: Path) -> Path:
    """`poetry init` + `poetry add` (pyproject.toml and poetry.lock, a dev group), a startproject in it."""
    folder.mkdir(parents=True)
    poetry("init", "--name", "mysite", "--python", ">=3.11", "--author", "Team <team@example.test>",
           "--dependency", "django==5.2.*", cwd=folder)
    poetry("add", "--lock", "--group", "dev", "pytest==8.*", cwd=folder)
    _run(BIN / "django-admin", "startproject", "mysite", ".", cwd=folder)
    return folder
