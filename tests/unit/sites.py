"""The settings of a plain one-host project, for the unit tests to vary."""

from deploys.djangoapp.settings import problems

VALID = {"websiteproject": "mysite", "url": "mysite.example.com", "webserver": "nginx",
         "django_deployment_root_folder": "/srv/www", "django_settings_folder": "mysite",
         "django_settings_file": "mysite.settings"}


def settings(**overrides):
    """Valid settings with `overrides` (the test fails on any problem)."""
    found_settings, found = problems({**VALID, **overrides})
    assert found == [], found
    return found_settings
