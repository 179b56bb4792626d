"""The settings model: defaults, aliases, and one clear error per bad variable."""

import pytest

from deploys.djangoapp.settings.placement import plan_fleet
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
    # The app's user is the project's own (code_doc's name made for it), with a group of that name.
    assert settings.uwsgi_user == settings.uwsgi_group == "django-code_doc" and settings.app_user_is_the_kits
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
        # A '.' would reach nginx's variable names ($maintenance_my.shop) and PostgreSQL's.
        ({"websiteproject": "my.shop"}, "websiteproject", "safe name"),
        ({"websiteproject": "Shop"}, "websiteproject", "safe name"),
        ({"websiteproject": "1shop"}, "websiteproject", "safe name"),
        ({"websiteproject": "s" * 33}, "websiteproject", "safe name"),
        ({"url": "https://example.com/"}, "url", "host name"),
        ({"django_deployment_root_folder": "srv/www"}, "django_deployment_root_folder", "absolute"),
        ({"django_deployment_root_folder": "/srv/../etc"}, "django_deployment_root_folder", ".."),
        ({"django_deployment_root_folder": "/srv/my www"}, "django_deployment_root_folder", "no spaces"),
        ({"nginx_binary_name": "/usr/sbin/nginx; id"}, "nginx_binary_name", "no spaces"),
        ({"apache2_check_binary_name": "a2ensite $(id)"}, "apache2_check_binary_name", "command name"),
        ({"health_check_path": "/health/$(id)"}, "health_check_path", "without spaces or quotes"),
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
        ({"python_interpreter": "python3.12"}, "python_interpreter", "a Python version for uv"),
        ({"python_interpreter": "3"}, "python_interpreter", "a Python version for uv"),
        ({"python_interpreter": 3.12}, "python_interpreter", "written as a string"),
        ({"python_interpreter": "3.12; id"}, "python_interpreter", "a Python version for uv"),
        ({"python_interpreter": "/usr/bin/python 3"}, "python_interpreter", "no spaces"),
        ({"django_build_commands": ["compilemessages", "; rm -rf /"]}, "django_build_commands",
         "'; rm -rf /' must start with the name of a management command"),
        ({"django_build_commands": "compilemessages"}, "django_build_commands", "list"),
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


# ---------------------------------------------------------------- the fleet

REDIS_PASSWORD = "r3dis-password-0123456789"
POSTGRES = {"database": "postgresql",
            "django_environment_variables": {"DJANGO_DB_PASSWORD": "x", "REDIS_PASSWORD": REDIS_PASSWORD}}


def fleet_of(hosts: dict[str, tuple[set[str], dict]]):
    """plan_fleet over hosts given as name -> (groups, overrides of VALID)."""
    return plan_fleet({name: (groups, check(**overrides)[0]) for name, (groups, overrides) in hosts.items()})


def four_hosts(**overrides) -> dict:
    return {name: (groups, {**POSTGRES, "celery": True, "private_address": f"10.0.0.{number}", **overrides})
            for number, (name, groups) in enumerate(
                [("web1", {"web"}), ("web2", {"web"}), ("worker1", {"worker"}), ("db1", {"db"})], 1)}


def test_one_host_in_no_role_group_holds_every_role():
    fleet, found = fleet_of({"app1": ({"prod"}, {})})
    assert found == [] and fleet.roles["app1"] == {"web", "worker", "db"} and fleet.migration_host == "app1"


def test_four_hosts_reach_the_db_host_at_its_private_address():
    fleet, found = fleet_of(four_hosts())
    assert found == []
    assert fleet.migration_host == "web1" and fleet.db_host == "db1"
    assert fleet.switch_batches(None) == [["web1", "web2", "worker1"]]
    assert fleet.switch_batches(1) == [["web1", "worker1"], ["web2"]]
    hosts = {name: check(**overrides)[0] for name, (_, overrides) in four_hosts().items()}
    for name, settings in hosts.items():
        settings._host, settings._fleet = name, fleet
    assert hosts["web2"].app_environment["DJANGO_DB_HOST"] == "10.0.0.4"
    # The broker URL carries Redis's password: it is a secret, not in the environment of the units.
    assert hosts["worker1"].secrets["CELERY_BROKER_URL"] == f"redis://code_doc:{REDIS_PASSWORD}@10.0.0.4:6379/0"
    assert "CELERY_BROKER_URL" not in hosts["worker1"].app_environment
    assert hosts["db1"].database_host == "127.0.0.1"
    assert hosts["db1"].fleet_addresses == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert [name for name, settings in hosts.items() if settings.runs_migrations] == ["web1"]
    assert hosts["worker1"].celery_services == ["celery-code_doc"] and hosts["web1"].celery_services == []


@pytest.mark.parametrize("change, words", [
    (lambda hosts: hosts["web2"][1].update(websiteproject="other"), "websiteproject: must be the same on every host"),
    (lambda hosts: hosts["db1"][1].pop("private_address"), "private_address: host db1 needs one"),
    (lambda hosts: hosts.update(db2=({"db"}, {**hosts["db1"][1], "private_address": "10.0.0.9"})),
     "inventory group db: database postgresql needs exactly one host in it (found: db1, db2)"),
    (lambda hosts: hosts.pop("worker1"), "inventory group worker: celery is on but no host runs it"),
    (lambda hosts: [groups.symmetric_difference_update({"web", "worker"}) for groups, _ in hosts.values()
                    if "web" in groups], "inventory group web: no host"),
    (lambda hosts: [overrides.update(migration_host="db1") for _, overrides in hosts.values()],
     "migration_host: 'db1' is not a web or worker host"),
    (lambda hosts: [overrides.update(database="sqlite") for _, overrides in hosts.values()],
     "database: sqlite keeps the database in a file on one host"),
])
def test_a_fleet_that_cannot_work_is_refused_naming_the_variable(change, words):
    hosts = four_hosts()
    change(hosts)
    fleet, found = fleet_of(hosts)
    assert fleet is None and any(line.startswith(words) for line in found), found


def test_a_shared_redis_needs_a_password_of_safe_characters():
    no_password = four_hosts(django_environment_variables={"DJANGO_DB_PASSWORD": "x"})
    fleet, found = fleet_of(no_password)
    assert fleet is None and found == ["django_environment_variables: needs REDIS_PASSWORD: the Redis on the db "
                                       "host serves the other hosts over the network"]
    _, found = check(**{**POSTGRES, "django_environment_variables": {"DJANGO_DB_PASSWORD": "x",
                                                                     "REDIS_PASSWORD": "short"}})
    assert found and found[0].startswith("django_environment_variables: REDIS_PASSWORD must be 16 to 128")


def test_one_host_needs_no_redis_password_and_keeps_the_broker_in_its_environment():
    settings, found = check(celery=True)
    assert found == [] and settings.app_environment["CELERY_BROKER_URL"] == "redis://127.0.0.1:6379/0"
    assert "CELERY_BROKER_URL" not in settings.secrets


def test_every_check_of_every_concern_reaches_settings():
    # pydantic keeps one validator per method name: a check named like another concern's would be
    # silently dropped from Settings.
    from deploys.djangoapp.settings import Settings
    from pydantic import BaseModel

    concerns = [base for base in Settings.__mro__[1:] if issubclass(base, BaseModel) and base is not BaseModel]
    declared = [name for concern in concerns
                for kind in ("field_validators", "model_validators")
                for name in vars(concern).get("__pydantic_decorators__").__getattribute__(kind)]
    assert len(declared) == len(set(declared))
    kept = Settings.__pydantic_decorators__
    assert set(declared) <= set(kept.field_validators) | set(kept.model_validators)


@pytest.mark.parametrize("variable, value", [
    ("url", "example.com"), ("websiteproject", "mysite"), ("django_deployment_root_folder", "/srv/www"),
    ("django_settings_file", "mysite.settings"), ("release_id", "r1"), ("health_check_path", "/health/"),
    ("acme_email", "ops@example.com"), ("uwsgi_user", "www-data"), ("redis_url", "redis://127.0.0.1:6379/0"),
    ("apache2_check_binary_name", "a2ensite"), ("since", "1 hour ago"), ("app_server_options", ["--threads=4"]),
    ("deploy_notify_url", ["https://hooks.example.com/x"]),
])
def test_a_value_with_a_trailing_newline_is_refused(variable, value):
    # A newline would end a line of a config or unit the value goes into.
    newline = [value[0] + "\n"] if isinstance(value, list) else value + "\n"
    assert check(**{variable: value})[1] == []
    found = check(**{variable: newline})[1]
    assert len(found) == 1 and found[0].startswith(f"{variable}: "), found


KIT_REDIS_PASSWORD = "kit-redis-password-5a6b7c"


@pytest.mark.parametrize("redis_url, secrets", [
    # Without REDIS_PASSWORD the project logs in as the default user, which has no password.
    ("redis://:url-only-password-1a2b@127.0.0.1:6379/0", {}),
    ("redis://someone:url-only-password-1a2b@localhost:6379/0", {}),
    ("redis://someone@[::1]:6379/0", {}),
    # With it, as its own user (code_doc) with that password.
    ("redis://:url-only-password-1a2b@127.0.0.1:6379/0", {"REDIS_PASSWORD": KIT_REDIS_PASSWORD}),
    (f"redis://someone:{KIT_REDIS_PASSWORD}@127.0.0.1:6379/0", {"REDIS_PASSWORD": KIT_REDIS_PASSWORD}),
    ("redis://default@127.0.0.1:6379/0", {"REDIS_PASSWORD": KIT_REDIS_PASSWORD}),
])
def test_a_loopback_redis_url_with_a_login_the_kits_redis_does_not_know_is_refused_masked(redis_url, secrets):
    found = check(celery=True, redis_url=redis_url, django_environment_variables=secrets)[1]
    assert len(found) == 1 and found[0].startswith("redis_url: redis://***@"), found
    assert "url-only-password" not in found[0] and "someone" not in found[0] and KIT_REDIS_PASSWORD not in found[0]


@pytest.mark.parametrize("redis_url, secrets, celery", [
    ("redis://127.0.0.1:6379/0", {}, True),
    ("redis://default@127.0.0.1:6379/0", {}, True),
    (f"redis://:{KIT_REDIS_PASSWORD}@127.0.0.1:6379/1", {"REDIS_PASSWORD": KIT_REDIS_PASSWORD}, True),
    (f"redis://code_doc:{KIT_REDIS_PASSWORD}@localhost:6379/1", {"REDIS_PASSWORD": KIT_REDIS_PASSWORD}, True),
    ("redis://code_doc@127.0.0.1:6379/1", {"REDIS_PASSWORD": KIT_REDIS_PASSWORD}, True),
    # A Redis run elsewhere is the user's: its logins are its own.
    ("redis://someone:url-only-password-1a2b@10.0.0.9:6379/0", {}, True),
    # Without Celery the deploy installs no Redis and gives the app no broker URL.
    ("redis://:url-only-password-1a2b@127.0.0.1:6379/0", {}, False),
])
def test_a_redis_url_whose_login_the_redis_knows_is_accepted(redis_url, secrets, celery):
    assert check(celery=celery, redis_url=redis_url, django_environment_variables=secrets)[1] == []


def test_a_malformed_redis_url_is_refused_without_its_password():
    found = check(redis_url="redis://some one:url-only-password-1a2b@127.0.0.1:6379/0")[1]
    assert found == ["redis_url: must be a redis:// URL (got '***@127.0.0.1:6379/0')"]
    assert check(celery=True, redis_url="redis://127.0.0.1:port/0")[1] == \
        ["redis_url: is not a URL (Port could not be cast to integer value as 'port')"]


def test_a_linked_path_inside_a_linked_folder_is_refused():
    """The folder is shared whole: linking a path inside it again would put a link in the shared
    folder in that path's place, and delete what the app kept there."""
    for dirs, files in ((["var", "var/cache"], []), (["var"], ["var/local.py"]), (["var/", "var/cache"], [])):
        _, found = check(django_linked_dirs=dirs, django_linked_files=files)
        assert len(found) == 1 and "is inside 'var', which is shared whole already" in found[0], found
    assert check(django_linked_dirs=["var", "variants"], django_linked_files=["var.idx"])[1] == []


@pytest.mark.parametrize("name", ["shop", "my-shop_2", "s" * 32])
def test_a_project_name_of_letters_digits_dash_and_underscore_is_taken(name):
    settings, found = check(websiteproject=name)
    assert found == [] and settings.websiteproject == name


class InventoryHost:
    """What validate_inventory reads of a pyinfra host: its name, groups and data."""

    def __init__(self, name: str, groups: tuple[str, ...], **data):
        self.name, self.groups = name, groups
        self.data = type("Data", (), {"dict": lambda _: {**VALID, **data}})()


def test_the_inventory_gives_each_host_settings_that_know_the_fleet():
    from deploys.djangoapp.settings import validate_inventory

    found = validate_inventory([
        InventoryHost("web1", ("web",), database="postgresql", private_address="10.0.0.1",
                      django_environment_variables={"DJANGO_DB_PASSWORD": "x"}),
        InventoryHost("db1", ("db",), database="postgresql", private_address="10.0.0.3",
                      django_environment_variables={"DJANGO_DB_PASSWORD": "x"})])
    assert list(found) == ["web1", "db1"]
    assert found["web1"].fleet is found["db1"].fleet
    assert found["web1"].fleet.hosts("web") == ["web1"] and found["web1"].fleet.db_host == "db1"
    assert found["web1"].host_name == "web1" and found["db1"].host_name == "db1"
    assert found["web1"].runs_migrations and not found["db1"].holds_releases


def test_every_host_s_problems_are_told_at_once_and_the_fleet_only_when_each_host_is_right():
    from deploys.djangoapp.settings import DeploySettingsError, validate_inventory

    with pytest.raises(DeploySettingsError) as refused:
        validate_inventory([InventoryHost("web1", ("web",), websiteproject="a.b"),
                            InventoryHost("web2", ("web",)),
                            InventoryHost("web3", ("web",), uwsgi_number_workers=0, url="")])
    lines = str(refused.value).splitlines()
    assert lines[0] == "invalid deploy settings, nothing was changed:"
    assert lines[1] == "host web1:" and lines[2].startswith("  - websiteproject: ")
    assert lines[3] == "host web3:" and len(lines) == 6
    assert all(line.startswith("  - ") for line in lines[4:]), lines
    # Each host right, the fleet wrong (sqlite on two web hosts): the fleet's problems.
    with pytest.raises(DeploySettingsError) as refused:
        validate_inventory([InventoryHost("web1", ("web",)), InventoryHost("web2", ("web",))])
    lines = str(refused.value).splitlines()
    assert lines[:2] == ["invalid deploy settings, nothing was changed:", "the fleet:"]
    assert lines[2].startswith("  - database: sqlite keeps the database in a file on one host")
    assert lines[3:] == ["  - private_address: host web1 needs one: the project runs on several hosts, which reach "
                         "each other at these addresses", "  - private_address: host web2 needs one: the project runs "
                         "on several hosts, which reach each other at these addresses"]


def test_a_problem_without_a_variable_is_named_by_its_message_and_credentials_are_masked():
    from deploys.djangoapp.settings import _describe

    assert _describe({"loc": (), "msg": "Value error, celery_beat: needs celery: set both", "type": "value_error"}) \
        == "celery_beat: needs celery: set both"
    assert _describe({"loc": (), "msg": "Value error, no colon here", "type": "value_error"}) == "no colon here"
    assert _describe({"loc": ("url",), "msg": "Field required", "type": "missing"}) == "url: is required and not set"
    assert _describe({"loc": ("webserver",), "msg": "Input should be 'nginx' or 'apache'", "type": "literal_error",
                      "input": "caddy"}) == "webserver: Input should be 'nginx' or 'apache' (got 'caddy')"
    assert _describe({"loc": ("broker",), "msg": "Value error, bad redis://:hunter2@h:1/0", "type": "value_error"}) \
        == "broker: bad redis://***@h:1/0"


def test_a_variable_a_new_version_renamed_is_refused_with_its_new_name(monkeypatch):
    # A copy's group_data/ still sets a variable under the name an older version of the kit gave it.
    import deploys.djangoapp.settings as settings_module

    monkeypatch.setattr(settings_module, "RENAMED", {
        "uwsgi_processes": "now uwsgi_number_workers", "deploy_banner": "removed: the kit no longer shows one"})
    settings, found = check(uwsgi_processes=4, deploy_banner="hi")
    assert settings is None
    assert found == ["deploy_banner: removed: the kit no longer shows one", "uwsgi_processes: now uwsgi_number_workers"]
