"""The settings of a plain one-host project, for the unit tests to vary."""

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from deploys.djangoapp.settings.placement import plan_fleet
from deploys.djangoapp.settings import problems

VALID = {"websiteproject": "mysite", "url": "mysite.example.com", "webserver": "nginx",
         "django_deployment_root_folder": "/srv/www", "django_settings_folder": "mysite",
         "django_settings_file": "mysite.settings"}


def settings(**overrides):
    """Valid settings with `overrides` (the test fails on any problem)."""
    found_settings, found = problems({**VALID, **overrides})
    assert found == [], found
    return found_settings


def placed_fleet(**overrides) -> dict:
    """web1, web2 and db1 (PostgreSQL) with `overrides`, each settings placed in the fleet they
    make (as validate_inventory does): host name -> settings."""
    roles = {"web1": {"web"}, "web2": {"web"}, "db1": {"db"}}
    hosts = {name: (groups, settings(database="postgresql", private_address=address,
                                     django_environment_variables={"DJANGO_DB_PASSWORD": "x"}, **overrides))
             for (name, groups), address in zip(roles.items(), ["10.0.0.1", "10.0.0.2", "10.0.0.3"])}
    fleet, found = plan_fleet(hosts)
    assert found == [], found
    for name, (_, site) in hosts.items():
        site._fleet, site._host = fleet, name
    return {name: site for name, (_, site) in hosts.items()}


# The unit tests' stand-in for the app user: Debian's `nobody`, whose rights a root step gives
# itself where it works in the app's folders (Layout.as_app_user).
APP_USER = "setpriv --reuid=nobody --regid=nogroup --init-groups --reset-env --"
NOBODY = 65534


@contextmanager
def app_folder():
    """A folder the stand-in app user owns, inside one every user may enter (pytest's tmp_path is
    root's alone); removed afterwards."""
    top = Path(tempfile.mkdtemp(prefix="app-folder-", dir="/tmp"))
    try:
        top.chmod(0o755)
        folder = top / "app"
        folder.mkdir()
        os.chown(folder, NOBODY, NOBODY)
        yield folder
    finally:
        shutil.rmtree(top)
