"""What the settings of every concern check values against: the patterns and the checks they share.

Values reach shell commands, units and configs, so each pattern lets through only the characters
its kind of value needs."""

from __future__ import annotations

import os
import posixpath
import re
import shlex
from typing import Annotated, Any, Optional

from pydantic import AfterValidator, BeforeValidator

SAFE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
DOTTED_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
# app_label.migration_name, as Django names a migration (the migration gate's overrides).
MIGRATION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z0-9_]+$")
RELEASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
UNIX_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
URL_PATH = re.compile(r"^/[A-Za-z0-9._~/?=&%+,:@-]*$")
EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
# Paths and commands reach shell commands, units and configs: letters, digits and . _ - / only.
PLAIN_PATH = re.compile(r"^[A-Za-z0-9._/-]+$")
# What systemd.time(7) calendar events are written with (OnCalendar=): no quotes, no newlines.
CALENDAR = re.compile(r"^[A-Za-z0-9 :*/,.~+-]{1,80}$")
MANAGEMENT_COMMAND = re.compile(r"^[a-z][a-z0-9_]*$")
# A Python version uv can find on the host or install: "3.12", "3.12.4".
PYTHON_VERSION = re.compile(r"^3\.[0-9]{1,2}(\.[0-9]{1,2})?$")
# site_proxy: http(s)://[user:password@]host[:port], the user and password %-encoded. It is written
# into apt's configuration and a shell file: no quotes, backslashes or spaces.
PROXY_URL = re.compile(r"^https?://([A-Za-z0-9._~%!$&()*+,;=:-]+@)?([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?/?$")


def absolute_clean_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"must be an absolute path (got {value!r})")
    if ".." in value.split("/"):
        raise ValueError(f"must not contain '..' (got {value!r})")
    if not PLAIN_PATH.fullmatch(value):
        raise ValueError(f"must be letters, digits, '.', '_', '-' and '/' only: no spaces or quotes (got {value!r})")
    return value.rstrip("/") or "/"


# Folders the kit may never take for one of its own: it makes the deployment root root's (chown,
# chmod), removes a project root whole (rm -rf) and gives a local backup repository to the backup user
# (chown): done to one of these, it would break the host or what other software keeps there.
SYSTEM_FOLDERS = frozenset({
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/media", "/mnt", "/opt", "/proc", "/root", "/run", "/sbin",
    "/srv", "/sys", "/tmp", "/usr", "/var", "/var/backups", "/var/cache", "/var/lib", "/var/local", "/var/lock",
    "/var/log", "/var/mail", "/var/opt", "/var/run", "/var/spool", "/var/tmp",
})
# Trees that hold nothing but the system's (and the kit's own state): no folder of a project lives
# anywhere in them; nor in /lib and its kin (LIBRARY_TREE).
SYSTEM_TREES = ("/bin", "/boot", "/dev", "/etc", "/proc", "/run", "/sbin", "/sys", "/usr",
                "/opt/django-deploy-tools", "/var/lib/django-deploy", "/var/backups/django-deploy")
LIBRARY_TREE = re.compile(r"^/lib(32|64|x32)?(/|$)")


def system_folder_problem(path: str) -> Optional[str]:
    """Why `path` (absolute, clean) cannot be a folder the kit makes its own, or None."""
    if path in SYSTEM_FOLDERS:
        return (f"{path} is a folder of the system, which the kit would take over (change its owner, or "
                "remove it with the project); use a folder of its own, e.g. /srv/www")
    library = LIBRARY_TREE.match(path)
    tree = next((tree for tree in SYSTEM_TREES if path == tree or path.startswith(tree + "/")),
                library and library.group(0).rstrip("/"))
    if tree:
        return (f"{path} is {'' if path == tree else 'inside '}{tree}, which holds the system's files (or the "
                "kit's own), not a project's; use a folder of its own, e.g. /srv/www")
    return None


def inside_release_problem(path: str) -> Optional[str]:
    """Why `path` (of django_linked_dirs/files) is not a path inside the release, or None. The
    release's own links (.venv, .static) lead out of it: nothing is linked through them."""
    if path.startswith("/") or ".." in path.split("/"):
        return f"entries must be paths inside the release, without '..' (got {path!r})"
    normal = posixpath.normpath(path or ".")
    if normal == "." or normal.split("/")[0] in (".venv", ".static"):
        return f"entries must name something inside the release, not the release itself or its links (got {path!r})"
    return None


def command_problem(command: Any) -> Optional[str]:
    """Why a management command line (its name, then its arguments as a shell would split them)
    is refused, or None."""
    if not isinstance(command, str) or any(ord(character) < 32 for character in command):
        return "must be one line of text without control characters"
    try:
        words = shlex.split(command)
    except ValueError as error:
        return f"cannot be split into words ({error})"
    if not words or not MANAGEMENT_COMMAND.fullmatch(words[0]):
        return "must start with the name of a management command, e.g. createsuperuser"
    return None


def positive_int(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"must be a positive whole number (got {value!r})")
    return value


def dotted_module(value: Any) -> Any:
    if value is not None and not DOTTED_MODULE.fullmatch(value):
        raise ValueError(f"must be a dotted Python module path such as mysite.settings (got {value!r})")
    return value


def host_names(value: list[str]) -> list[str]:
    bad = [name for name in value if not HOSTNAME.fullmatch(name)]
    if bad:
        raise ValueError(f"must be host names (got {bad!r})")
    return value


def one_line(value: Any) -> Any:
    if value is not None and (not value or any(ord(character) < 32 for character in value)):
        raise ValueError("must be some text on one line")
    return value


def text_or_file(value: str, marker: str, kind: str) -> str:
    """`value` itself when it holds `marker` (it is the text), else the content of the file on the
    control machine it names (read now)."""
    if marker in value:
        return value
    if not os.path.isfile(value):
        raise ValueError(f"must be {kind} text or the path of a file holding it on this machine")
    with open(value, encoding="utf-8") as text_file:
        return text_file.read()


def one_or_many(value: Any) -> Any:
    """A list variable given one value as text (`--data name=value`): a list of that one."""
    return [value] if isinstance(value, str) else value


def pem_or_file(value: Any, kind: str) -> Any:
    """PEM text, or the path of a PEM file on the control machine (read now): the text."""
    if value is None:
        return None
    text = text_or_file(value, "-----BEGIN", "PEM")
    if not re.search(rf"-----BEGIN [A-Z ]*{kind}-----.+-----END [A-Z ]*{kind}-----", text, re.S):
        raise ValueError(f"is not a PEM {kind.lower()}")
    return text


def port(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValueError(f"must be a TCP port, 1 to 65535 (got {value!r})")
    return value


def seconds(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"must be a whole number of seconds, 0 or more (got {value!r})")
    return value


# The shapes of value several variables share, each with its check: a field of one of these types
# needs no validator of its own.
PositiveCount = Annotated[int, BeforeValidator(positive_int)]
Seconds = Annotated[int, BeforeValidator(seconds)]
Port = Annotated[int, BeforeValidator(port)]
DottedModule = Annotated[str, AfterValidator(dotted_module)]
OneLine = Annotated[str, AfterValidator(one_line)]
HostNames = Annotated[list[str], AfterValidator(host_names)]
PemCertificate = Annotated[str, AfterValidator(lambda value: pem_or_file(value, "CERTIFICATE"))]
PemPrivateKey = Annotated[str, AfterValidator(lambda value: pem_or_file(value, "PRIVATE KEY"))]
