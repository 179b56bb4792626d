"""The project's own variables, named as in the Ansible role this project grew from: the site, its
source layout, uWSGI and the webservers."""

from __future__ import annotations

import posixpath
from typing import Any, Literal, Optional

from pydantic import BaseModel, field_validator, model_validator

from .checks import (ENV_NAME, HOSTNAME, PLAIN_PATH, PROXY_URL, SAFE_NAME, UNIX_NAME, DottedModule, PemCertificate,
                     PemPrivateKey, PositiveCount, absolute_clean_path, command_problem, inside_release_problem,
                     system_folder_problem)
from .layout import kit_app_user


class ProjectInputs(BaseModel):
    # --- Project (seed role) ---
    websiteproject: str
    url: str
    webserver: Literal["nginx", "apache2"]
    django_deployment_root_folder: str
    django_settings_folder: DottedModule
    django_settings_file: DottedModule
    django_source_folder: str = ""
    django_archives_to_deflate: list[str] = []
    django_dependencies: list[str] = []
    django_pip_install_requirements: bool = False
    django_dependency_file: str = "auto"
    django_linked_dirs: list[str] = []
    django_linked_files: list[str] = []
    django_build_commands: list[str] = []
    django_environment_variables: dict[str, str] = {}
    django_webapplication_additional_environment_settings: dict[str, str] = {}
    django_revision_file_pattern: Optional[str] = None
    application_additional_packages: list[str] = []
    site_certificate: Optional[PemCertificate] = None
    site_key: Optional[PemPrivateKey] = None
    site_proxy: Optional[str] = None

    # --- uWSGI (seed role) ---
    uwsgi_number_workers: PositiveCount = 2
    # None: a user (and group) of the project's own, django-<websiteproject> (app_user.py).
    uwsgi_user: Optional[str] = None
    uwsgi_group: Optional[str] = None
    uwsgi_additional_options: list[str] = []

    # --- Webservers (seed role) ---
    nginx_binary_name: str = "/usr/sbin/nginx"
    nginx_user: str = "www-data"
    nginx_group: str = "www-data"
    apache2_check_binary_name: str = "a2ensite"
    apache2_user: str = "www-data"
    apache2_group: str = "www-data"

    @field_validator("webserver", mode="before")
    @classmethod
    def _apache_alias(cls, value: Any) -> Any:
        return "apache2" if value == "apache" else value

    @field_validator("django_build_commands")
    @classmethod
    def _build_commands(cls, value: list[str]) -> list[str]:
        found = [f"{command!r} {problem}" for command in value if (problem := command_problem(command))]
        if found:
            raise ValueError("; ".join(found))
        return value

    @field_validator("site_proxy")
    @classmethod
    def _proxy_url(cls, value: Optional[str]) -> Optional[str]:
        # Not shown: it may hold the proxy's password.
        if value is not None and not PROXY_URL.fullmatch(value):
            raise ValueError("must be http(s)://host[:port], with user:password@ before the host when the proxy "
                             "wants a login (%-encoded), e.g. http://proxy.internal:3128")
        return value

    @field_validator("websiteproject")
    @classmethod
    def _safe_project_name(cls, value: str) -> str:
        if not SAFE_NAME.fullmatch(value):
            raise ValueError(
                "must be a short safe name: lowercase letters, digits, '_' or '-', starting with a "
                f"letter, at most 32 characters (got {value!r})"
            )
        return value

    @field_validator("url")
    @classmethod
    def _host_name(cls, value: str) -> str:
        if not HOSTNAME.fullmatch(value):
            raise ValueError(f"must be a host name such as app.example.com, no scheme or path (got {value!r})")
        return value

    @field_validator("django_deployment_root_folder", "nginx_binary_name")
    @classmethod
    def _project_absolute(cls, value: str) -> str:
        return absolute_clean_path(value)

    @field_validator("django_deployment_root_folder")
    @classmethod
    def _project_own_folder(cls, value: str) -> str:
        # Its projects' folders are then safe too: websiteproject is one name, no "/", and every
        # system folder's parent is refused here (a test checks it).
        problem = system_folder_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("apache2_check_binary_name")
    @classmethod
    def _command_name(cls, value: str) -> str:
        if not PLAIN_PATH.fullmatch(value) or value.startswith("-"):
            raise ValueError(f"must be a command name or path: letters, digits, '.', '_', '-' and '/' (got {value!r})")
        return value

    @field_validator("django_source_folder")
    @classmethod
    def _relative_inside(cls, value: str) -> str:
        value = value.strip("/") if value else ""
        if value.startswith("~") or ".." in value.split("/"):
            raise ValueError(f"must be a relative path inside the source tree, without '..' (got {value!r})")
        return value

    @field_validator("django_dependency_file")
    @classmethod
    def _dependency_file(cls, value: str) -> str:
        if value in ("auto", "none"):
            return value
        if not value or value.startswith("/") or ".." in value.split("/"):
            raise ValueError(f'must be "auto", "none" or a path inside the source tree (got {value!r})')
        return value

    @field_validator("django_archives_to_deflate", "django_linked_dirs", "django_linked_files")
    @classmethod
    def _paths_inside(cls, value: list[str]) -> list[str]:
        problem = next(filter(None, map(inside_release_problem, value)), None)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("django_environment_variables", "django_webapplication_additional_environment_settings")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not ENV_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a valid environment variable name")
        return value

    @model_validator(mode="before")
    @classmethod
    def _app_user_of_its_own(cls, data: Any) -> Any:
        """No uwsgi_user: the project's own (django-<websiteproject>); no uwsgi_group: the user's
        name (a user the kit makes has a group of that name, and so do most others)."""
        project = data.get("websiteproject") if isinstance(data, dict) else None
        if isinstance(project, str) and SAFE_NAME.fullmatch(project):
            user = data.get("uwsgi_user") or kit_app_user(project)
            named = isinstance(user, str) and UNIX_NAME.fullmatch(user)
            data = {**data, "uwsgi_user": user, "uwsgi_group": data.get("uwsgi_group") or (
                user if named else kit_app_user(project))}
        return data

    @field_validator("uwsgi_user", "uwsgi_group", "nginx_user", "nginx_group", "apache2_user", "apache2_group")
    @classmethod
    def _project_unix_name(cls, value: str) -> str:
        if not UNIX_NAME.fullmatch(value):
            raise ValueError(f"must be a user or group name (got {value!r})")
        return value

    @model_validator(mode="after")
    def _linked_paths_apart(self):
        """A linked path inside a linked folder: the folder is shared whole already, and linking
        the path again through it would put a link in the shared folder in its place."""
        folders = [posixpath.normpath(path) for path in self.django_linked_dirs]
        for path in self.django_linked_dirs + self.django_linked_files:
            inside = [folder for folder in folders if posixpath.normpath(path).startswith(folder + "/")]
            if inside:
                raise ValueError(f"django_linked_dirs: {path!r} is inside {inside[0]!r}, which is shared whole "
                                 "already: leave it out")
        return self

    @model_validator(mode="after")
    def _certificate_pair(self):
        if (self.site_certificate is None) != (self.site_key is None):
            missing = "site_key" if self.site_key is None else "site_certificate"
            raise ValueError(f"{missing}: site_certificate and site_key go together; give both or neither")
        return self
