"""The settings model: defaults, aliases, and one clear error per bad variable."""

import pytest

from deploys.djangoapp.settings import Settings, problems

VALID = {
    "websiteproject": "code_doc",
    "url": "code-doc.example.com",
    "webserver": "nginx",
    "django_deployment_root_folder": "/srv/www",
    "django_settings_folder": "www",
    "django_settings_file": "www.settings.code_doc_production",
}
GOOD_CERTIFICATE = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
GOOD_KEY = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"


def check(**overrides):
    settings, found = problems({**VALID, **overrides})
    return settings, found


def test_valid_settings_take_the_seed_role_defaults():
    settings, found = check()
    assert found == []
    assert settings.uwsgi_number_workers == 2
    assert settings.uwsgi_user == settings.uwsgi_group == "www-data"
    assert settings.nginx_binary_name == "/usr/sbin/nginx"
    assert settings.apache2_check_binary_name == "a2ensite"
    assert settings.django_pip_install_requirements is False
    assert settings.keep_releases == 5
    assert settings.project_root == "/srv/www/code_doc"
    assert settings.app_environment["DJANGO_SETTINGS_MODULE"] == "www.settings.code_doc_production"
    assert settings.app_environment["DJANGO_SETTINGS_SECRET_FILE"] == "/srv/www/code_doc/secrets.py"


def test_apache_is_an_alias_of_apache2():
    settings, found = check(webserver="apache")
    assert found == [] and settings.webserver == "apache2"


def test_none_means_unset_so_defaults_apply():
    settings, found = check(uwsgi_number_workers=None, site_proxy=None)
    assert found == [] and settings.uwsgi_number_workers == 2


@pytest.mark.parametrize(
    ("overrides", "variable", "words"),
    [
        ({"webserver": "lighttpd"}, "webserver", "lighttpd"),
        ({"websiteproject": ""}, "websiteproject", "safe name"),
        ({"websiteproject": "my project; rm -rf /"}, "websiteproject", "safe name"),
        ({"websiteproject": "../etc"}, "websiteproject", "safe name"),
        ({"url": "https://example.com/"}, "url", "host name"),
        ({"django_deployment_root_folder": "srv/www"}, "django_deployment_root_folder", "absolute"),
        ({"django_deployment_root_folder": "/srv/../etc"}, "django_deployment_root_folder", ".."),
        ({"django_source_folder": "../outside"}, "django_source_folder", ".."),
        ({"uwsgi_number_workers": 0}, "uwsgi_number_workers", "positive"),
        ({"uwsgi_number_workers": -3}, "uwsgi_number_workers", "positive"),
        ({"uwsgi_number_workers": "four"}, "uwsgi_number_workers", "positive"),
        ({"uwsgi_number_workers": True}, "uwsgi_number_workers", "positive"),
        ({"keep_releases": 0}, "keep_releases", "positive"),
        ({"django_settings_file": "www/settings.py"}, "django_settings_file", "dotted"),
        ({"django_settings_folder": "my-site"}, "django_settings_folder", "dotted"),
        ({"database": "mongodb"}, "database", "mongodb"),
        ({"release_id": "2026/01"}, "release_id", "no '/'"),
        ({"site_certificate": "-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----"},
         "site_key", "go together"),
        ({"site_certificate": "not a pem", "site_key": GOOD_KEY}, "site_certificate", "PEM"),
        ({"site_certificate": "-----BEGIN CERTIFICATE-----\nMIIB truncated", "site_key": GOOD_KEY},
         "site_certificate", "not a PEM certificate"),
        ({"django_environment_variables": {"BAD NAME": "x"}}, "django_environment_variables", "BAD NAME"),
        ({"uwsgi_user": "Robert'); DROP"}, "uwsgi_user", "user or group"),
        ({"health_check_path": "health"}, "health_check_path", "'/'"),
        ({"django_source_dir": "/no/such/dir"}, "django_source_dir", "no such directory"),
        ({"django_workers": 3}, "django_workers", "typo"),
    ],
)
def test_a_bad_value_is_reported_naming_its_variable(overrides, variable, words):
    settings, found = check(**overrides)
    assert settings is None
    assert len(found) == 1, found
    assert found[0].startswith(f"{variable}: "), found
    assert words in found[0], found


@pytest.mark.parametrize("variable", ["websiteproject", "url", "webserver", "django_deployment_root_folder",
                                      "django_settings_folder", "django_settings_file"])
def test_a_missing_required_variable_is_reported(variable):
    data = {key: value for key, value in VALID.items() if key != variable}
    settings, found = problems(data)
    assert settings is None
    assert found == [f"{variable}: is required and not set"]


def test_all_problems_are_reported_at_once():
    settings, found = check(webserver="iis", uwsgi_number_workers=0, websiteproject="", url=None)
    assert settings is None
    assert sorted(line.split(":")[0] for line in found) == sorted(
        ["webserver", "uwsgi_number_workers", "websiteproject", "url"])


def test_pem_text_and_pem_files_are_both_accepted(tmp_path):
    key_file = tmp_path / "site.key"
    key_file.write_text(GOOD_KEY)
    settings, found = check(site_certificate=GOOD_CERTIFICATE, site_key=str(key_file))
    assert found == []
    assert settings.site_certificate == GOOD_CERTIFICATE and settings.site_key == GOOD_KEY


def test_the_model_is_frozen():
    settings, _ = check()
    with pytest.raises(Exception):
        settings.url = "other.example.com"
    assert isinstance(settings, Settings)
