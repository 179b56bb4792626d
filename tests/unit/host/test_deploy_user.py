"""The deploy user's keys and sudo follow the settings both ways, and a run never takes away the
login it runs through."""

import subprocess
from types import SimpleNamespace

import pytest

from deploys.djangoapp.host import deploy_user
from deploys.djangoapp.host.deploy_user import deploy_user_plan, sudo_users_command, sudoers_file
from deploys.djangoapp.settings import DeployRefused
from tests.unit.sites import settings

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOps ops@laptop"


def sudo_users(folder, **env) -> list[str]:
    done = subprocess.run(["sh", "-c", sudo_users_command(str(folder))], capture_output=True, text=True, check=True,
                          env={"PATH": "/usr/bin:/bin", **env})
    return done.stdout.splitlines()


def test_the_sudo_the_deploys_gave_is_found_by_its_file_name_and_the_login_from_sudo(tmp_path):
    for name in ("django-deploy-deploy", "django-deploy-ops", "90-cloud-init-users", "README"):
        (tmp_path / name).write_text("x ALL=(ALL) NOPASSWD: ALL\n")
    (tmp_path / "django-deploy-folder").mkdir()
    me = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
    assert sudo_users(tmp_path) == ["sudo deploy", "sudo ops", f"login {me}"]
    assert sudo_users(tmp_path, SUDO_USER="deploy")[-1] == "login deploy"
    assert sudo_users(tmp_path / "none") == [f"login {me}"]
    assert sudoers_file("deploy") == "/etc/sudoers.d/django-deploy-deploy"


def test_a_user_no_longer_deploy_user_loses_the_sudo_the_deploys_gave_it():
    unset, changed = settings(), settings(deploy_user="ops", deploy_user_ssh_keys=[KEY])
    assert deploy_user_plan(unset, ["deploy"], {"root"}) == (["deploy"], None)
    assert deploy_user_plan(changed, ["deploy", "ops"], {"root"}) == (["deploy"], None)
    assert deploy_user_plan(changed, ["ops"], {"root"}) == ([], None)


def test_the_login_of_the_run_keeps_its_sudo_and_the_run_is_refused():
    stale, refusal = deploy_user_plan(settings(), ["deploy"], {"deploy"})
    assert stale == [] and refusal == (
        "deploy_user: this run logs in as deploy, whose passwordless sudo the deploys gave "
        "(/etc/sudoers.d/django-deploy-deploy) and deploy_user no longer names (it is not set): taking it away "
        'would leave this login without root; set deploy_user = "deploy" to keep it, or run as another user '
        "(root) to take it away")
    stale, refusal = deploy_user_plan(settings(deploy_user="ops", deploy_user_ssh_keys=[KEY]), ["deploy", "ops"],
                                      {"deploy", "root"})
    assert stale == [] and "logs in as deploy" in refusal and "(it is ops)" in refusal


def test_the_login_of_the_run_keeps_its_keys_and_the_run_is_refused():
    no_keys = settings(deploy_user="deploy")
    stale, refusal = deploy_user_plan(no_keys, ["deploy"], {"deploy"})
    assert stale == [] and refusal.startswith("deploy_user_ssh_keys: is empty, and this run logs in as deploy")
    # Logged in as another user, the list empties authorized_keys, as it says.
    assert deploy_user_plan(no_keys, ["deploy"], {"root"}) == ([], None)


def test_the_steps_make_the_keys_exactly_the_list_and_take_sudo_from_the_others(monkeypatch):
    """What deploy_users asks pyinfra for, on a host where "old" had the deploys' sudo, the run
    logged in as root."""
    steps = []
    monkeypatch.setattr(deploy_user, "host", SimpleNamespace(name="web1", data={"ssh_user": "root"}))
    monkeypatch.setattr(deploy_user, "fact_before_run", lambda fact: {"sudo": ["deploy", "old"], "login": ["root"]})
    monkeypatch.setattr(deploy_user.server, "user", lambda **kwargs: steps.append(("user", kwargs)))
    monkeypatch.setattr(deploy_user, "write_files", lambda label, files: steps.append(("files", [f.path for f in files])))
    monkeypatch.setattr(deploy_user, "absent", lambda name, paths: steps.append(("absent", paths)))
    deploy_user.deploy_users(settings(deploy_user="deploy", deploy_user_ssh_keys=[KEY]))
    (_, user), files, gone = steps
    assert (user["user"], user["public_keys"], user["delete_keys"]) == ("deploy", [KEY], True)
    assert files == ("files", ["/etc/sudoers.d/django-deploy-deploy"])
    assert gone == ("absent", ["/etc/sudoers.d/django-deploy-old"])
    # The inventory's ssh_user counts as this run's login too.
    monkeypatch.setattr(deploy_user, "host", SimpleNamespace(name="web1", data={"ssh_user": "old"}))
    with pytest.raises(DeployRefused, match="host web1: deploy_user: this run logs in as old, .*nothing was changed"):
        deploy_user.refuse_locking_this_login_out(settings(deploy_user="deploy", deploy_user_ssh_keys=[KEY]))
