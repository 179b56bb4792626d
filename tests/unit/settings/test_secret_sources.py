"""Secrets from encrypted files and password managers (settings/secret_sources.py): an Ansible
Vault file made by the real ansible-vault, an age file, a secrets_command; what a variable's
`{{ name }}` becomes; and every way a source fails, named without its content."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyrage
import pytest

from deploys.djangoapp.settings import DeploySettingsError, problems, validate_inventory
from deploys.djangoapp.settings.secret_sources import forget_secrets
from tests.unit.sites import VALID

SECRET_KEY = "vault-secret-key-5f4e3d2c1b0a99887766554433221100ffeeddccbbaa"
DB_PASSWORD = "p@ss word:with/odd&chars"
ROLE_VAULT = f"vault_mysite_django_secret_key: {SECRET_KEY}\nvault_mysite_db_password: '{DB_PASSWORD}'\n"
# The role's group_vars, carried over: the app's secrets refer to the vault's names.
REFERRING = {"database": "postgresql", "django_environment_variables": {
    "DJANGO_SECRET_KEY": "{{ vault_mysite_django_secret_key }}",
    "DJANGO_DB_PASSWORD": "{{vault_mysite_db_password}}",
    "DATABASE_URL": "postgres://mysite:{{ vault_mysite_db_password }}@db/mysite"}}


@pytest.fixture(autouse=True)
def fresh_reads():
    forget_secrets()  # each test's files are read anew
    yield
    forget_secrets()


def ansible_vault(tmp_path: Path, text: str, password: str = "correct horse") -> tuple[Path, Path]:
    """A vault file made by ansible-vault itself, and the password file it was made with."""
    plain, password_file = tmp_path / "mysite.yml", tmp_path / "vault-password"
    plain.write_text(text)
    password_file.write_text(password + "\n")
    tool = Path(sys.executable).with_name("ansible-vault")
    done = subprocess.run([str(tool), "encrypt", "--vault-password-file", str(password_file),
                           "--output", str(tmp_path / "mysite"), str(plain)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    plain.unlink()
    return tmp_path / "mysite", password_file


def check(**data):
    return problems({**VALID, **data})


def test_the_roles_vault_file_is_read_as_ansible_vault_wrote_it(tmp_path):
    vault, password = ansible_vault(tmp_path, ROLE_VAULT)
    assert vault.read_bytes().startswith(b"$ANSIBLE_VAULT;1.1;AES256")
    settings, found = check(secrets_files=[str(vault)], vault_password_file=str(password), **REFERRING)
    assert found == []
    assert settings.django_environment_variables == {
        "DJANGO_SECRET_KEY": SECRET_KEY, "DJANGO_DB_PASSWORD": DB_PASSWORD,
        "DATABASE_URL": f"postgres://mysite:{DB_PASSWORD}@db/mysite"}
    # A program that prints the password, as ansible's --vault-password-file takes it.
    program = tmp_path / "password-program"
    program.write_text("#!/bin/sh\necho 'correct horse'\n")
    program.chmod(0o700)
    forget_secrets()
    assert check(secrets_files=[str(vault)], vault_password_file=str(program), **REFERRING)[1] == []
    # Without vault_password_file: ANSIBLE_VAULT_PASSWORD_FILE, as ansible reads it.
    forget_secrets()
    os.environ["ANSIBLE_VAULT_PASSWORD_FILE"] = str(password)
    try:
        assert check(secrets_files=[str(vault)], **REFERRING)[1] == []
    finally:
        del os.environ["ANSIBLE_VAULT_PASSWORD_FILE"]


def test_a_wrong_password_or_a_changed_file_stops_the_run_naming_the_file_and_nothing_of_it(tmp_path):
    vault, password = ansible_vault(tmp_path, ROLE_VAULT)
    password.write_text("wrong horse\n")
    settings, found = check(secrets_files=[str(vault)], vault_password_file=str(password), **REFERRING)
    assert settings is None and found == [
        f"secrets_files: {vault}: cannot be decrypted with the vault password (a wrong password, or the file "
        "changed since it was encrypted)"]
    password.write_text("correct horse\n")
    lines = vault.read_text().splitlines()
    lines[3] = lines[3][:-1] + ("0" if lines[3][-1] != "0" else "1")  # one digit of the ciphertext
    vault.write_text("\n".join(lines) + "\n")
    forget_secrets()
    assert check(secrets_files=[str(vault)], vault_password_file=str(password), **REFERRING)[1] == found
    # No password at all, a failing password program: named, the run stops.
    forget_secrets()
    assert check(secrets_files=[str(vault)], **REFERRING)[1] == [
        "vault_password_file: an Ansible Vault file is in secrets_files, and no password for it is given "
        "(vault_password_file, or ANSIBLE_VAULT_PASSWORD_FILE)"]
    program = tmp_path / "password-program"
    program.write_text("#!/bin/sh\necho 'the keyring is locked' >&2\nexit 3\n")
    program.chmod(0o700)
    assert check(secrets_files=[str(vault)], vault_password_file=str(program), **REFERRING)[1] == [
        f"vault_password_file: the program {program}: failed (exit 3): the keyring is locked"]


def test_a_whole_inventory_with_a_wrong_password_is_refused_before_any_host_is_touched(tmp_path):
    from types import SimpleNamespace

    vault, password = ansible_vault(tmp_path, ROLE_VAULT)
    password.write_text("wrong horse\n")
    data = {**VALID, "secrets_files": [str(vault)], "vault_password_file": str(password), **REFERRING}
    host = SimpleNamespace(name="web1", groups=["web"], data=SimpleNamespace(dict=lambda: data))
    with pytest.raises(DeploySettingsError) as refused:
        validate_inventory([host])
    assert f"host web1:\n  - secrets_files: {vault}: cannot be decrypted" in str(refused.value)
    assert "nothing was changed" in str(refused.value)


def test_an_age_file_is_read_with_the_identity_file(tmp_path):
    identity = pyrage.x25519.Identity.generate()
    keys = tmp_path / "keys.txt"
    keys.write_text(f"# created: now\n# public key: {identity.to_public()}\n{identity}\n")
    secrets = tmp_path / "mysite.age"
    secrets.write_bytes(pyrage.encrypt(ROLE_VAULT.encode(), [identity.to_public()], armored=True))
    settings, found = check(secrets_files=[str(secrets)], age_identity_file=str(keys), **REFERRING)
    assert found == [] and settings.django_environment_variables["DJANGO_DB_PASSWORD"] == DB_PASSWORD
    # Encrypted to another key: named, nothing of it shown.
    other = tmp_path / "other.age"
    other.write_bytes(pyrage.encrypt(ROLE_VAULT.encode(), [pyrage.x25519.Identity.generate().to_public()]))
    forget_secrets()
    assert check(secrets_files=[str(other)], age_identity_file=str(keys), **REFERRING)[1] == [
        f"secrets_files: {other}: cannot be decrypted with the keys of {keys} (not encrypted to them, or the "
        "file changed since it was encrypted)"]
    assert check(secrets_files=[str(secrets)], **REFERRING)[1] == [
        f"age_identity_file: {secrets} in secrets_files is an age file, and no identity to decrypt it is given"]


def test_a_plain_file_of_secrets_is_refused(tmp_path):
    plain = tmp_path / "secrets.yml"
    plain.write_text(ROLE_VAULT)
    assert check(secrets_files=[str(plain)], **REFERRING)[1] == [
        f"secrets_files: {plain} is neither an Ansible Vault file nor an age file: secrets are not kept in the "
        "repository in plain text"]


@pytest.mark.parametrize("printed", [
    json.dumps({"vault_mysite_django_secret_key": SECRET_KEY, "vault_mysite_db_password": DB_PASSWORD}),
    f"# from the password manager\nvault_mysite_django_secret_key={SECRET_KEY}\n\n"
    f"vault_mysite_db_password={DB_PASSWORD}\n",
])
def test_secrets_command_prints_json_or_name_value_lines(tmp_path, printed):
    output = tmp_path / "printed"
    output.write_text(printed)
    settings, found = check(secrets_command=f"cat {output}", **REFERRING)
    assert found == [] and settings.django_environment_variables["DJANGO_SECRET_KEY"] == SECRET_KEY


def test_a_failing_command_or_a_name_no_source_gives_is_named(tmp_path):
    assert check(secrets_command="echo 'pass: mysite/deploy is not in the password store.' >&2; exit 1",
                 **REFERRING)[1] == [
        "secrets_command: failed (exit 1): pass: mysite/deploy is not in the password store."]
    forget_secrets()
    assert check(secrets_command="echo vault_mysite_django_secret_key=x", **REFERRING)[1] == [
        "django_environment_variables: refers to the secret {{ vault_mysite_db_password }}, which no source gives "
        "(secrets_files, secrets_command)"]
    forget_secrets()
    assert check(secrets_command="echo 'not a pair'", **REFERRING)[1] == [
        "secrets_command: line 1 of what it printed is not NAME=value"]


@pytest.mark.parametrize("secret", ["not a host name", "p\\w\"x'y", "line1\nline2"])
def test_a_secret_a_variable_refuses_is_not_shown_escaped_or_not(tmp_path, secret):
    printed = tmp_path / "printed.json"
    printed.write_text(json.dumps({"site_name": secret}))
    settings, found = check(secrets_command=f"cat {printed}", url="{{ site_name }}")
    assert settings is None and len(found) == 1 and found[0].startswith("url: "), found
    assert "(a secret)" in found[0]
    for shown in (secret, repr(secret)[1:-1], json.dumps(secret)[1:-1], *secret.split("\n")):
        assert shown not in found[0], found


def test_a_fleet_wide_value_that_differs_is_not_shown_when_it_is_a_secret(tmp_path):
    from types import SimpleNamespace

    printed = tmp_path / "printed.json"
    printed.write_text(json.dumps({"key_a": "secret-alpha.example.com", "key_b": "secret-beta.example.com"}))
    hosts = []
    for name, reference in (("web1", "{{ key_a }}"), ("web2", "{{ key_b }}")):
        data = {**VALID, "secrets_command": f"cat {printed}", "private_address": f"10.0.0.{len(hosts) + 1}",
                "url": reference}
        hosts.append(SimpleNamespace(name=name, groups=["web"], data=SimpleNamespace(dict=lambda data=data: data)))
    with pytest.raises(DeploySettingsError) as refused:
        validate_inventory(hosts)
    assert "url: must be the same on every host" in str(refused.value)
    assert "secret-alpha" not in str(refused.value) and "secret-beta" not in str(refused.value)


def test_a_source_is_asked_once_for_all_hosts_even_when_it_fails(tmp_path):
    counted = tmp_path / "asked"
    command = f"echo x >> {counted}; exit 2"
    for _ in range(3):
        assert check(secrets_command=command, **REFERRING)[1] == ["secrets_command: failed (exit 2): (nothing on stderr)"]
    assert counted.read_text() == "x\n"


def test_a_command_that_does_not_answer_is_ended_with_what_it_started(tmp_path, monkeypatch):
    import time

    from deploys.djangoapp.settings import secret_sources

    monkeypatch.setattr(secret_sources, "COMMAND_TIMEOUT", 1)
    started = time.monotonic()
    # A child left running with the output open, as an agent a password manager starts may.
    found = check(secrets_command="sleep 30 & sleep 30", **REFERRING)[1]
    assert found == ["secrets_command: gave no answer within 1 s"]
    assert time.monotonic() - started < 10


def test_every_value_of_a_file_is_read_as_the_text_it_is(tmp_path):
    vault, password = ansible_vault(tmp_path, "pin: 0123\nflag: yes\nversion: 1.10\n")
    settings, found = check(secrets_files=[str(vault)], vault_password_file=str(password),
                            django_environment_variables={"A": "{{ pin }}", "B": "{{ flag }}", "C": "{{ version }}"})
    assert found == [] and settings.django_environment_variables == {"A": "0123", "B": "yes", "C": "1.10"}


def test_a_source_given_is_read_even_when_nothing_refers_to_it_yet(tmp_path):
    assert check(secrets_command="exit 1")[1] == ["secrets_command: failed (exit 1): (nothing on stderr)"]
    assert check(secrets_files=[str(tmp_path / "absent")])[1] == [
        f"secrets_files: {tmp_path / 'absent'} is not a file"]
    # Without any source, a value with no reference is taken as it is.
    assert check(django_environment_variables={"DJANGO_SECRET_KEY": "plain {{ value"})[1] == []


def test_a_real_password_store_through_pass_and_a_file_made_by_debians_age(tmp_path):
    import shutil
    import tempfile

    # gpg's sockets live in its home: a short path.
    home = Path(tempfile.mkdtemp(prefix="gpg-", dir="/tmp"))
    env = {**os.environ, "GNUPGHOME": str(home), "PASSWORD_STORE_DIR": str(tmp_path / "store")}

    def run(*command: str, given: str | None = None) -> None:
        done = subprocess.run(command, input=given, capture_output=True, text=True, env=env, timeout=60)
        assert done.returncode == 0, done.stderr
    try:
        home.chmod(0o700)
        run("gpg", "--batch", "--passphrase", "", "--quick-gen-key", "deploy <deploy@example.test>", "ed25519", "cert")
        fingerprint = subprocess.run(["gpg", "--list-keys", "--with-colons"], capture_output=True, text=True,
                                     env=env).stdout.split("fpr:::::::::")[1].split(":")[0]
        run("gpg", "--batch", "--passphrase", "", "--quick-add-key", fingerprint, "cv25519", "encr")
        run("pass", "init", "deploy@example.test")
        run("pass", "insert", "-m", "mysite/deploy", given=f"vault_mysite_django_secret_key={SECRET_KEY}\n"
                                                           f"vault_mysite_db_password={DB_PASSWORD}\n")
        command = f"GNUPGHOME={home} PASSWORD_STORE_DIR={tmp_path / 'store'} pass show mysite/deploy"
        settings, found = check(secrets_command=command, **REFERRING)
        assert found == [] and settings.django_environment_variables["DJANGO_DB_PASSWORD"] == DB_PASSWORD
        forget_secrets()
        assert check(secrets_command=command.replace("mysite/deploy", "mysite/gone"), **REFERRING)[1] == [
            "secrets_command: failed (exit 1): Error: mysite/gone is not in the password store."]
    finally:
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)

    # age-keygen and age, as README's commands make and change the file.
    keys = tmp_path / "keys.txt"
    subprocess.run(["age-keygen", "-o", str(keys)], check=True, capture_output=True)
    public = subprocess.run(["age-keygen", "-y", str(keys)], check=True, capture_output=True, text=True).stdout.strip()
    plain = tmp_path / "secrets.yml"
    plain.write_text(ROLE_VAULT)
    subprocess.run(["age", "-a", "-r", public, "-o", str(tmp_path / "mysite.age"), str(plain)], check=True)
    plain.unlink()
    forget_secrets()
    settings, found = check(secrets_files=[str(tmp_path / "mysite.age")], age_identity_file=str(keys), **REFERRING)
    assert found == [] and settings.django_environment_variables["DJANGO_SECRET_KEY"] == SECRET_KEY


def test_each_way_a_source_cannot_be_read_is_named(tmp_path, monkeypatch):
    vault, password = ansible_vault(tmp_path, ROLE_VAULT)
    empty = tmp_path / "empty-password"
    empty.write_text("\n")
    no_shebang = tmp_path / "password-made-executable"
    no_shebang.write_text("correct horse\n")
    no_shebang.chmod(0o700)
    keys_without_key, bad_key = tmp_path / "no-key.txt", tmp_path / "bad-key.txt"
    keys_without_key.write_text("# public key: age1...\n")
    bad_key.write_text("AGE-SECRET-KEY-1NOTAKEY\n")
    age_file = tmp_path / "mysite.age"
    age_file.write_bytes(pyrage.encrypt(b"a: b\n", [pyrage.x25519.Identity.generate().to_public()]))
    listed = pyrage.x25519.Identity.generate()
    listed_keys = tmp_path / "keys.txt"
    listed_keys.write_text(f"{listed}\n")
    not_a_mapping = tmp_path / "list.age"
    not_a_mapping.write_bytes(pyrage.encrypt(b"- a\n- b\n", [listed.to_public()]))
    not_yaml = tmp_path / "broken.age"
    not_yaml.write_bytes(pyrage.encrypt(b"a: [b\n", [listed.to_public()]))
    cases = [
        ({"secrets_files": [str(vault)], "vault_password_file": str(empty)},
         f"vault_password_file: {empty} gives an empty password"),
        ({"secrets_files": [str(vault)], "vault_password_file": str(tmp_path / "gone")},
         f"vault_password_file: {tmp_path / 'gone'} is not a file"),
        ({"secrets_files": [str(vault)], "vault_password_file": str(no_shebang)},
         f"vault_password_file: the program {no_shebang}: cannot be run (Exec format error)"),
        ({"secrets_files": [str(age_file)], "age_identity_file": str(tmp_path / "gone")},
         f"age_identity_file: {tmp_path / 'gone'} is not a file"),
        ({"secrets_files": [str(age_file)], "age_identity_file": str(keys_without_key)},
         f"age_identity_file: {keys_without_key} holds no age key (AGE-SECRET-KEY-...)"),
        ({"secrets_files": [str(age_file)], "age_identity_file": str(bad_key)},
         f"age_identity_file: {bad_key} holds a key age cannot read"),
        ({"secrets_files": [str(not_a_mapping)], "age_identity_file": str(listed_keys)},
         f"secrets_files: {not_a_mapping}: decrypted, it is not `name: value` lines (YAML)"),
        ({"secrets_files": [str(not_yaml)], "age_identity_file": str(listed_keys)},
         f"secrets_files: {not_yaml}: decrypted, it is not `name: value` lines (YAML)"),
        ({"secrets_command": "echo '{\"a\": '"}, "secrets_command: printed text that starts as JSON and is not"),
    ]
    for data, problem in cases:
        forget_secrets()
        assert check(**data, **REFERRING)[1] == [problem], data
    # Without vault_password_file, the environment's variable is the one named.
    forget_secrets()
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", str(tmp_path / "gone"))
    assert check(secrets_files=[str(vault)], **REFERRING)[1] == [
        f"ANSIBLE_VAULT_PASSWORD_FILE: {tmp_path / 'gone'} is not a file"]


def test_a_value_that_is_one_reference_takes_the_secret_as_it_is_inside_lists_too(tmp_path):
    printed = tmp_path / "printed.json"
    printed.write_text(json.dumps({"names": ["www.mysite.example.com"], "extra": "old.mysite.example.com",
                                   "host": "mysite.example.com"}))
    settings, found = check(secrets_command=f"cat {printed}", acme_extra_domains="{{ names }}",
                            django_build_commands=["compilemessages", "check --deploy # {{ host }}"])
    assert found == [] and settings.acme_extra_domains == ["www.mysite.example.com"]
    assert settings.django_build_commands == ["compilemessages", "check --deploy # mysite.example.com"]
    # A name refused inside a longer value is masked there too.
    settings, found = check(secrets_command=f"cat {printed}", url="https://{{ host }}/")
    assert settings is None and "mysite.example.com" not in found[0] and "(a secret)" in found[0], found
