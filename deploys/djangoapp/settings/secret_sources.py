"""Secrets kept out of group_data in plain text: in encrypted files of the repository (Ansible
Vault, as the role's users keep `vault_vars/<project>`, or age), or in a password manager through
`secrets_command`. They are read on the machine that runs pyinfra, in memory, before the settings
are checked: a variable's text `{{ name }}` (whole, or inside a longer text, as in the role's
group_vars) becomes the secret of that name. A host gets a secret only as the variable holding it
says (the app's secret file, the backup's), as if it had been written there.

Nothing of a secret's value is ever shown: a file that cannot be read or decrypted (a wrong
password, a file changed since it was encrypted) stops the run before any host is touched, naming
the file and why, never its content; a name no source gives is named, with where it was asked
for; a value refused by a variable's check is shown masked.

    secrets_files        files of `name: value` lines (YAML) encrypted with ansible-vault, or age
    vault_password_file  the Ansible Vault password: a file holding it, or a program (an executable
                         file) that prints it, as ansible's --vault-password-file; unset, the
                         ANSIBLE_VAULT_PASSWORD_FILE of the environment, as ansible reads it
    age_identity_file    the age identities (keys) that decrypt the age files, as `age -d -i`
    secrets_command      a command that prints secrets, as a JSON object or `NAME=value` lines (a
                         password manager's CLI: pass, op, bw, aws secretsmanager)
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel

REFERENCE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
SOURCE_VARIABLES = ("secrets_files", "vault_password_file", "age_identity_file", "secrets_command")
VAULT_HEADER = b"$ANSIBLE_VAULT;"
AGE_HEADERS = (b"age-encryption.org/", b"-----BEGIN AGE ENCRYPTED FILE-----")
COMMAND_TIMEOUT = 60


class SecretSourceInputs(BaseModel):
    secrets_files: list[str] = []
    vault_password_file: Optional[str] = None
    age_identity_file: Optional[str] = None
    secrets_command: Optional[str] = None


class SecretsUnavailable(Exception):
    """A source of secrets could not be read: the message names the variable and why (never a value)."""


def _run(command: list[str] | str, what: str) -> str:
    """The output of a program of the operator's (a vault password program, secrets_command); on
    failure, the last line it wrote on stderr. One that does not answer in time is ended with
    every process it started (a password manager's agent holding its output open too)."""
    try:
        process = subprocess.Popen(command, shell=isinstance(command, str), stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    except OSError as error:
        raise SecretsUnavailable(f"{what}: cannot be run ({error.strerror})") from None
    try:
        output, errors = process.communicate(timeout=COMMAND_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise SecretsUnavailable(f"{what}: gave no answer within {COMMAND_TIMEOUT} s") from None
    if process.returncode != 0:
        said = (errors.strip().splitlines() or ["(nothing on stderr)"])[-1]
        raise SecretsUnavailable(f"{what}: failed (exit {process.returncode}): {said}")
    return output


def _vault_password(password_file: Optional[str]) -> bytes:
    path = password_file or os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE")
    variable = "vault_password_file" if password_file else "ANSIBLE_VAULT_PASSWORD_FILE"
    if not path:
        raise SecretsUnavailable("vault_password_file: an Ansible Vault file is in secrets_files, and no "
                                 "password for it is given (vault_password_file, or ANSIBLE_VAULT_PASSWORD_FILE)")
    file = Path(path).expanduser()
    if not file.is_file():
        raise SecretsUnavailable(f"{variable}: {path} is not a file")
    if os.access(file, os.X_OK):
        password = _run([str(file)], f"{variable}: the program {path}").strip()
    else:
        password = file.read_text().strip()
    if not password:
        raise SecretsUnavailable(f"{variable}: {path} gives an empty password")
    return password.encode()


def _decrypt_vault(path: str, content: bytes, password_file: Optional[str]) -> bytes:
    from ansible.errors import AnsibleError
    from ansible.parsing.vault import VaultLib, VaultSecret

    try:
        return VaultLib([("default", VaultSecret(_vault_password(password_file)))]).decrypt(content)
    except AnsibleError:
        raise SecretsUnavailable(f"secrets_files: {path}: cannot be decrypted with the vault password (a wrong "
                                 "password, or the file changed since it was encrypted)") from None


def _decrypt_age(path: str, content: bytes, identity_file: Optional[str]) -> bytes:
    import pyrage

    if not identity_file:
        raise SecretsUnavailable(f"age_identity_file: {path} in secrets_files is an age file, and no identity "
                                 "to decrypt it is given")
    keys = Path(identity_file).expanduser()
    if not keys.is_file():
        raise SecretsUnavailable(f"age_identity_file: {identity_file} is not a file")
    try:
        identities = [pyrage.x25519.Identity.from_str(line.strip()) for line in keys.read_text().splitlines()
                      if line.strip().startswith("AGE-SECRET-KEY-")]
    except pyrage.IdentityError:
        raise SecretsUnavailable(f"age_identity_file: {identity_file} holds a key age cannot read") from None
    if not identities:
        raise SecretsUnavailable(f"age_identity_file: {identity_file} holds no age key (AGE-SECRET-KEY-...)")
    try:
        return pyrage.decrypt(content, identities)
    except pyrage.DecryptError:
        raise SecretsUnavailable(f"secrets_files: {path}: cannot be decrypted with the keys of {identity_file} "
                                 "(not encrypted to them, or the file changed since it was encrypted)") from None


def _names_and_values(path: str, text: bytes) -> dict[str, Any]:
    import yaml

    try:
        # Every value as the text it is (YAML 1.1 would read 0123 as 83, yes as True): secrets are text.
        found = yaml.load(text.decode(), Loader=yaml.BaseLoader)
    except (UnicodeDecodeError, yaml.YAMLError):
        raise SecretsUnavailable(f"secrets_files: {path}: decrypted, it is not `name: value` lines (YAML)") from None
    if found is None:
        return {}
    if not isinstance(found, dict):
        raise SecretsUnavailable(f"secrets_files: {path}: decrypted, it is not `name: value` lines (YAML)")
    return found


def read_file(path: str, password_file: Optional[str], identity_file: Optional[str]) -> dict[str, Any]:
    """The secrets of one file of secrets_files, decrypted in memory."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise SecretsUnavailable(f"secrets_files: {path} is not a file")
    content = file.read_bytes()
    if content.startswith(VAULT_HEADER):
        return _names_and_values(path, _decrypt_vault(path, content, password_file))
    if content.startswith(AGE_HEADERS):
        return _names_and_values(path, _decrypt_age(path, content, identity_file))
    raise SecretsUnavailable(f"secrets_files: {path} is neither an Ansible Vault file nor an age file: secrets "
                             "are not kept in the repository in plain text")


def command_secrets(command: str) -> dict[str, Any]:
    """What secrets_command prints: a JSON object, or NAME=value lines (# comments, blank lines)."""
    output = _run(command, "secrets_command")
    if output.lstrip().startswith("{"):
        try:
            return json.loads(output)  # an object, as it starts with "{"
        except json.JSONDecodeError:
            raise SecretsUnavailable("secrets_command: printed text that starts as JSON and is not") from None
    found = {}
    for number, line in enumerate(output.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, equals, value = line.partition("=")
        if not equals or not REFERENCE.fullmatch(f"{{{{{name.strip()}}}}}"):
            raise SecretsUnavailable(f"secrets_command: line {number} of what it printed is not NAME=value")
        found[name.strip()] = value
    return found


# What the sources gave (or why they could not), by the sources: read once per run for all hosts,
# whose data name the same sources, and a failure said once, not asked again for each host.
_READ: dict[tuple, dict[str, Any] | SecretsUnavailable] = {}


def _all_secrets(files: tuple[str, ...], password_file: Optional[str], identity_file: Optional[str],
                 command: Optional[str], cwd: str) -> dict[str, Any]:
    key = (files, password_file, identity_file, command, cwd)
    if key not in _READ:
        try:
            found: dict[str, Any] = {}
            for path in files:
                found.update(read_file(path, password_file, identity_file))
            if command:
                found.update(command_secrets(command))
            _READ[key] = found
        except SecretsUnavailable as error:
            _READ[key] = error
    if isinstance(_READ[key], SecretsUnavailable):
        raise _READ[key]
    return _READ[key]


def forget_secrets() -> None:
    """Read the sources anew (tests that change a file between reads)."""
    _READ.clear()


def secrets_of(data: dict[str, Any]) -> dict[str, Any]:
    """Every secret the sources in `data` give, by name (later sources over earlier ones)."""
    files = data.get("secrets_files") or []
    if isinstance(files, str):
        files = [files]
    return _all_secrets(tuple(str(path) for path in files), data.get("vault_password_file"),
                        data.get("age_identity_file"), data.get("secrets_command"), os.getcwd())


def references(value: Any) -> set[str]:
    """The names of the secrets `value` refers to (in its texts, its lists' and its dicts' values)."""
    if isinstance(value, str):
        return set(REFERENCE.findall(value))
    if isinstance(value, dict):
        return set().union(*(references(item) for item in value.values()))
    if isinstance(value, (list, tuple)):
        return set().union(*(references(item) for item in value))
    return set()


def _resolve(value: Any, secrets: dict[str, Any]) -> Any:
    """`value` with each reference replaced (every name it refers to is in `secrets`). A value
    that is one reference takes the secret as it is (a list or a number of secrets_command's JSON)."""
    if isinstance(value, str):
        whole = REFERENCE.fullmatch(value.strip())
        if whole:
            return secrets[whole.group(1)]
        return REFERENCE.sub(lambda match: str(secrets[match.group(1)]), value)
    if isinstance(value, dict):
        return {key: _resolve(item, secrets) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_resolve(item, secrets) for item in value)
    return value


def resolve_secrets(given: dict[str, Any], variables) -> tuple[dict[str, Any], list[str], list[str]]:
    """`given` with each `{{ name }}` in the values of `variables` replaced by its secret: (the
    data, the secret values used, to be masked wherever a value is shown, and the problems, each
    naming its variable)."""
    asking = {name: references(given[name]) for name in variables if name in given and name not in SOURCE_VARIABLES}
    asking = {name: names for name, names in asking.items() if names}
    # A source given is read even when nothing refers to it yet: a wrong password shows at once.
    if not asking and not any(given.get(name) for name in SOURCE_VARIABLES):
        return given, [], []
    try:
        secrets = secrets_of(given)
    except SecretsUnavailable as error:
        return given, [], [str(error)]
    problems = [f"{name}: refers to the secret {{{{ {secret} }}}}, which no source gives (secrets_files, "
                "secrets_command)" for name, names in asking.items() for secret in sorted(names - set(secrets))]
    if problems:
        return given, [], problems
    resolved = {**given, **{name: _resolve(given[name], secrets) for name in asking}}
    used = {secret for names in asking.values() for secret in names}
    return resolved, shown_forms(secrets[secret] for secret in used), []


def shown_forms(values) -> list[str]:
    """Each secret value as a message may show it: as it is, and as Python's repr and JSON escape
    it (a validator's "got '...'"), longest first so that none is left half masked."""
    forms = set()
    for value in values:
        text = str(value)
        if text:
            forms |= {text, repr(text)[1:-1], json.dumps(text)[1:-1]}
    return sorted(forms, key=len, reverse=True)
