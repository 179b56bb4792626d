"""A live project whose secret key comes from an Ansible Vault file made by the real ansible-vault,
then from an age file: the host's secret file holds it, nothing of it is shown in the run's
output, and a wrong vault password changes nothing on the host, naming the file."""

from __future__ import annotations

import pyrage
import pytest

from tests import fleet
from tests.conftest import https_get, run_pyinfra
from tests.e2e.test_bad_input import HOST_STATE
from tests.unit.settings.test_secret_sources import ansible_vault

pytestmark = pytest.mark.e2e

SECRET_FILE = "/srv/www/guestbook/secrets.py"


def secret_key_on(host: fleet.TestHost) -> str:
    """The DJANGO_SECRET_KEY line of the host's secret file (root's to read)."""
    return host.exec(f"grep '^DJANGO_SECRET_KEY = ' {SECRET_FILE}").stdout.strip()


def test_the_secret_key_from_an_ansible_vault_file_then_an_age_file(live_host, fleet_key, tmp_path):
    host, fleet_file = live_host
    vault_key = "from-the-vault-7e6d5c4b3a29180706f5e4d3c2b1a09f8e7d6c5b4a39281"
    vault, password = ansible_vault(tmp_path, f"vault_guestbook_django_secret_key: {vault_key}\n")
    host.data = {**host.data, "secrets_files": [str(vault)], "vault_password_file": str(password),
                 "django_environment_variables": {"DJANGO_SECRET_KEY": "{{ vault_guestbook_django_secret_key }}"}}
    fleet.write_fleet_file(fleet_file, fleet_key, [host])

    # A wrong password: refused before anything changes, naming the file.
    before = host.exec(HOST_STATE).stdout
    password.write_text("wrong horse\n")
    refused = run_pyinfra(fleet_file, "deploys/skeleton.py")
    assert refused.returncode != 0 and refused.results == {}, refused.output
    assert f"  - secrets_files: {vault}: cannot be decrypted with the vault password" in refused.output
    assert host.exec(HOST_STATE).stdout == before

    password.write_text("correct horse\n")
    done = run_pyinfra(fleet_file, "deploys/skeleton.py")
    assert done.returncode == 0, done.output
    assert vault_key in secret_key_on(host)
    assert vault_key not in done.output
    assert https_get(host, "/").status_code == 200

    # The same name from an age file instead.
    age_key = "from-age-0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c"
    identity = pyrage.x25519.Identity.generate()
    keys = tmp_path / "age-keys.txt"
    keys.write_text(f"{identity}\n")
    secrets = tmp_path / "guestbook.age"
    secrets.write_bytes(pyrage.encrypt(f"vault_guestbook_django_secret_key: {age_key}\n".encode(),
                                       [identity.to_public()], armored=True))
    host.data = {**host.data, "secrets_files": [str(secrets)], "age_identity_file": str(keys)}
    fleet.write_fleet_file(fleet_file, fleet_key, [host])
    done = run_pyinfra(fleet_file, "deploys/skeleton.py")
    assert done.returncode == 0, done.output
    assert age_key in secret_key_on(host) and age_key not in done.output
    assert https_get(host, "/").status_code == 200
