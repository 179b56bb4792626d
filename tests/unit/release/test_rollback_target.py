"""Which release a rollback goes back to, and which it refuses."""

import importlib

import pytest

from deploys.djangoapp.release.rollback import rollback_target
from deploys.djangoapp.settings import DeployRefused, problems
from tests.unit.sites import placed_fleet
from tests.unit.steps import Steps

# The module (deploys.djangoapp's `rollback` is the deploy function of the same name).
rollback = importlib.import_module("deploys.djangoapp.release.rollback")

VALID = {"websiteproject": "site", "url": "site.example.com", "webserver": "nginx",
         "django_deployment_root_folder": "/srv/www", "django_settings_folder": "site",
         "django_settings_file": "site.settings"}
# Oldest first, as the Releases fact gives them; a killed build sorts first (no metadata yet).
RELEASES = {"v3.partial": "partial", "v1": "ok", "v2": "failed", "v3": "rolled-back", "v4": "ok", "v5": "ok"}


def target(**overrides):
    settings, found = problems({**VALID, **overrides})
    assert found == []
    return rollback_target(settings, RELEASES, "v5", "web1")


def test_plain_rollback_goes_to_the_newest_good_release_before_the_live_one():
    assert target() == "v4"


@pytest.mark.parametrize(("asked", "words"), [
    ("v3.partial", "not a complete release"),
    ("v2", "not a complete release"),
    ("v5", "already live"),
    ("v9", "not a release older"),
])
def test_rollback_to_refuses_what_is_not_a_complete_good_release(asked, words):
    with pytest.raises(DeployRefused, match=words):
        target(rollback_to=asked)


def test_rollback_to_an_older_good_or_rolled_back_release():
    assert target(rollback_to="v1") == "v1"
    assert target(rollback_to="v3") == "v3"


def test_an_app_the_target_release_did_not_have_is_migrated_to_zero():
    from deploys.djangoapp.release.rollback import _migration_steps

    live = {"guestbook": "0002_mood", "shop": "0003_price", "blog": "0001_initial"}
    target = {"guestbook": "0001_initial", "blog": "0001_initial"}
    # blog is where it was; guestbook goes back one; shop came with the newer release: to zero.
    assert _migration_steps(live, target) == [("guestbook", "0001_initial"), ("shop", "zero")]
    assert _migration_steps(live, live) == []


def test_a_refused_rollback_names_the_releases_it_could_go_to():
    with pytest.raises(DeployRefused) as error:
        target(rollback_to="v9")
    assert str(error.value) == ("host web1: rollback_to: v9 is not a release older than the live one (v3.partial, v1, "
                                "v2, v3, v4); to go forward, release it again; nothing was changed")
    settings, _ = problems({**VALID, "rollback_to": "v9"})
    with pytest.raises(DeployRefused, match=r"\(there is none\); to go forward"):
        rollback_target(settings, {"v1": "ok"}, "v1", "web1")
    plain, _ = problems(VALID)
    with pytest.raises(DeployRefused) as error:
        rollback_target(plain, {"v1": "failed", "v2": "ok"}, "v2", "web1")
    assert str(error.value) == "host web1: no earlier good release to roll back to; nothing was changed"
    # A live release the host does not list (a killed run's): nothing is earlier than it.
    with pytest.raises(DeployRefused, match="no earlier good release"):
        rollback_target(plain, {"v1": "ok"}, "gone", "web1")


def test_the_fleet_s_hosts_must_agree_on_the_release_they_go_back_to(monkeypatch):
    sites = placed_fleet()
    recorder = Steps(monkeypatch)
    monkeypatch.setattr(rollback, "_targets", {})
    for name in ("web1", "db1"):  # the db host holds no release: it never disagrees
        recorder.host(rollback, name)
        rollback._agree_on_target(sites[name], "v1" if name == "web1" else "v9")
    recorder.host(rollback, "web2")
    with pytest.raises(DeployRefused) as refused:
        rollback._agree_on_target(sites["web2"], "v2")
    assert str(refused.value) == ("rollback_to: the hosts would go back to different releases (web1: v1, web2: v2); "
                                  "name one with rollback_to; nothing was changed")
    rollback._agree_on_target(sites["web2"], "v1")  # the same one: agreed
