"""The app's environment, split in two: the secret part goes to the secret file only (read by
bin/with-secrets when a process starts), the rest into the uWSGI ini, the Celery units and
bin/manage, which anyone on the host may read.

Besides the kit's own variables (DJANGO_DB_ENGINE, DJANGO_DB_NAME, ...) the app gets the
ecosystem's conventions, so settings written for dj-database-url, django-environ or Celery's docs
work as they are: DATABASE_URL, with Celery REDIS_URL and CELERY_BROKER_URL, and with memcached
CACHE_URL (django-environ's pymemcache:// form). A value the user
sets (django_environment_variables, django_webapplication_additional_environment_settings) wins.
Any URL with a user or password in it is a secret, wherever it comes from.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from ..settings import Settings

# scheme://user:password@ -> the part to hide: up to the last @ before the path, so that an @ in
# the password is hidden too.
URL_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#\s'\"]+)@")


def has_credentials(value: str) -> bool:
    """True for a URL that carries a user name or password."""
    return bool(URL_CREDENTIALS.search(value))


def mask_credentials(text: str) -> str:
    """`text` with the user and password of every URL in it replaced by ***."""
    return URL_CREDENTIALS.sub(lambda match: f"{match['scheme']}***@", text)


def host_in_url(host: str) -> str:
    """An address as a URL or an `address:port` names it: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host else host


def database_url(settings: Settings) -> str:
    """The deploy's database as dj-database-url and django-environ read it."""
    if settings.database == "sqlite":
        return f"sqlite:///{settings.sqlite_path}"
    password = quote(settings.django_environment_variables.get("DJANGO_DB_PASSWORD", ""), safe="")
    return (f"postgres://{settings.db_name}:{password}@{host_in_url(settings.database_host)}:5432/"
            f"{settings.db_name}")


def kit_environment(settings: Settings) -> dict[str, str]:
    """What the deploy itself tells the app: its settings module, paths, database and broker."""
    env = {
        "DJANGO_SETTINGS_MODULE": settings.django_settings_file,
        "DJANGO_SETTINGS_SECRET_FILE": settings.secret_file,
        "DJANGO_ALLOWED_HOSTS": settings.url,
        "DJANGO_MEDIA_ROOT": settings.media_dir,
        "DJANGO_LOG_DIR": settings.log_dir,
        "DJANGO_DB_ENGINE": settings.database,
    }
    if settings.database == "sqlite":
        env["DJANGO_DB_NAME"] = settings.sqlite_path
    else:
        env.update(DJANGO_DB_NAME=settings.db_name, DJANGO_DB_USER=settings.db_name,
                   DJANGO_DB_HOST=settings.database_host, DJANGO_DB_PORT="5432")
    env["DATABASE_URL"] = database_url(settings)
    if settings.celery:
        env.update(CELERY_BROKER_URL=settings.broker_url, REDIS_URL=settings.broker_url)
    if settings.memcached and settings.is_web:
        # memcached runs on each web host, for that host's app (as the fabfile set it up).
        env["CACHE_URL"] = "pymemcache://127.0.0.1:11211"
    return env


def split_environment(settings: Settings) -> tuple[dict[str, str], dict[str, str]]:
    """(public, secret): the whole environment of the app's processes, each name in one part."""
    merged = {**kit_environment(settings), **settings.django_webapplication_additional_environment_settings}
    secret = {name: value for name, value in merged.items() if has_credentials(value)}
    secret.update(settings.django_environment_variables)
    return {name: value for name, value in merged.items() if name not in secret}, secret

def environment_file_content(public: dict[str, str]) -> str:
    """The environment file (JSON): bin/with-secrets sets it as it is, no escaping anywhere."""
    return json.dumps(public, indent=1, sort_keys=True) + "\n"


def secret_file_content(secret: dict[str, str]) -> str:
    """The secret file, in the seed role's format: Python assignments, values as Python literals."""
    return "".join(f"{name} = {value!r}\n" for name, value in sorted(secret.items()))
