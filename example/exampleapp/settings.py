"""Settings of the example app. Everything that differs per host comes from the environment the
deploy provides, or from the secret file named by DJANGO_SETTINGS_SECRET_FILE (the seed role's
convention: a Python file of NAME = 'value' lines, readable by the app user only)."""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def _read_secret_file() -> dict:
    path = os.environ.get("DJANGO_SETTINGS_SECRET_FILE")
    if not path:
        return {}
    namespace: dict = {}
    with open(path, encoding="utf-8") as secret:
        exec(secret.read(), namespace)
    return {name: value for name, value in namespace.items() if not name.startswith("__")}


SECRETS = _read_secret_file()


def setting(name, default=None):
    return os.environ.get(name, SECRETS.get(name, default))


SECRET_KEY = setting("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY is missing from the environment and the secret file")
DEBUG = setting("DJANGO_DEBUG", "false").lower() == "true"
ALLOWED_HOSTS = setting("DJANGO_ALLOWED_HOSTS", "localhost").split(",")
RELEASE_ID = setting("DJANGO_RELEASE_ID", "development")

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.staticfiles",
    "guestbook",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "exampleapp.urls"
WSGI_APPLICATION = "exampleapp.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

if setting("DJANGO_DB_ENGINE", "sqlite") == "postgresql":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": setting("DJANGO_DB_NAME"),
            "USER": setting("DJANGO_DB_USER"),
            "PASSWORD": setting("DJANGO_DB_PASSWORD"),
            "HOST": setting("DJANGO_DB_HOST", "127.0.0.1"),
            "PORT": setting("DJANGO_DB_PORT", "5432"),
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": setting("DJANGO_DB_NAME", str(BASE_DIR / "db.sqlite3")),
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
}
MEDIA_URL = "/media/"
MEDIA_ROOT = setting("DJANGO_MEDIA_ROOT", str(BASE_DIR / "media"))

# Served over HTTPS only; the webserver sets HSTS, these keep `check --deploy` clean.
SECURE_SSL_REDIRECT = not DEBUG
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = 0 if DEBUG else 63072000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True

# memcached when the deploy runs one (CACHE_URL, django-environ's convention), else in-process.
CACHE_URL = setting("CACHE_URL", "")
if CACHE_URL.startswith("pymemcache://"):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
                          "LOCATION": CACHE_URL.removeprefix("pymemcache://")}}

CELERY_BROKER_URL = setting("CELERY_BROKER_URL")
CELERY_RESULT_BACKEND = setting("CELERY_RESULT_BACKEND")
# Without a broker the example runs its tasks in-process.
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_TZ = True
