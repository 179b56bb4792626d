"""A release: build the new version beside the live one, then switch to it only once it is ready.

    prepare   upload the source archive, unpack it into releases/<id>
    build     virtualenv (shared by releases with the same dependencies), bytecode
    check     manage.py check --deploy
    migrate   the database, from the new release
    static    collectstatic into the release
    switch    `current` -> releases/<id> atomically, graceful uWSGI reload, health check;
              if the new release does not answer, switch back to the previous one and fail
    clean up  releases beyond keep_releases

Until the switch the live release serves as before; a failing step stops the run there.
"""

import getpass
import shlex
import socket
from datetime import datetime, timezone

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files, server

from .context import current_settings, proxy_environment
from .host_prep import UV
from .operations import (
    ReleaseInfo,
    activate_release,
    build_virtualenv,
    prune_releases,
    switch_link,
    unpack_release,
)
from .settings import DeploySettingsError
from .source import RUN_RELEASE_ID, dependency_hash, pack_directory


@deploy("Release")
def release():
    settings = current_settings()
    if not settings.django_source_dir:
        raise DeploySettingsError(f"host {host.name}: django_source_dir: is required for a release")

    source = pack_directory(settings.django_source_dir)
    dependencies = dependency_hash(settings, source)
    live = host.get_fact(ReleaseInfo, link=settings.current_link)
    if live and live.get("source_digest") == source.digest and live.get("dependency_hash") == dependencies:
        host.noop(f"release {live['id']} is live and built from this same source")
        return

    release_id = settings.release_id or RUN_RELEASE_ID
    release_dir = f"{settings.releases_dir}/{release_id}"
    manage = f"{settings.manage_command} --release {release_dir}"
    app_dir = f"{release_dir}{settings.app_subdir}"

    # prepare
    archive = f"{settings.versions_dir}/{release_id}.tar.gz"
    files.put(name=f"Upload release {release_id}", src=source.archive, dest=archive, mode="640")
    unpack_release(
        name=f"Unpack release {release_id}",
        archive=archive,
        release_dir=release_dir,
        metadata={
            "id": release_id,
            "source_digest": source.digest,
            "dependency_hash": dependencies,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "operator": f"{getpass.getuser()}@{socket.gethostname()}",
        },
    )

    # build
    venv = f"{settings.venvs_dir}/{dependencies}"
    use_requirements = settings.django_pip_install_requirements and source.requirements is not None
    build_virtualenv(
        name=f"Virtualenv {dependencies}",
        path=venv,
        python=settings.python_interpreter,
        uv=UV,
        dependencies=settings.django_dependencies,
        requirements=f"{release_dir}/requirements.txt" if use_requirements else None,
        env=proxy_environment(settings),
    )
    switch_link(name="Link the virtualenv into the release", link=f"{release_dir}/.venv", target=venv)
    server.shell(
        name="Compile the release's bytecode",
        commands=[f"{release_dir}/.venv/bin/python -m compileall -q -x '/[.]venv/' {shlex.quote(release_dir)}"],
    )

    # check, migrate, static
    server.shell(name="Django deploy checks", commands=[f"{manage} check --deploy --fail-level ERROR"])
    server.shell(name="Migrate the database", commands=[f"{manage} migrate --noinput"])
    server.shell(name="Collect static files",
                 commands=[f"{manage} --user root collectstatic --noinput --verbosity 0"])
    expected_static_root = f"{app_dir}/{settings.django_static_root}"
    server.shell(
        name="STATIC_ROOT is where the webserver serves from",
        commands=[
            f'static_root="$({manage} shell --verbosity 0 -c "from django.conf import settings; print(settings.STATIC_ROOT)" | tail -n 1)"; '
            f'[ "$(realpath -m "$static_root")" = "$(realpath -m {expected_static_root})" ] || '
            f'{{ echo "STATIC_ROOT of the app is $static_root, the webserver serves '
            f'{expected_static_root}: set django_static_root" >&2; exit 1; }}'
        ],
    )

    # switch, verify (or switch back)
    activate_release(
        name=f"Switch to release {release_id} and check its health",
        link=settings.current_link,
        release_dir=release_dir,
        previous_dir=f"{settings.releases_dir}/{live['id']}" if live else None,
        service=settings.uwsgi_service,
        health_url=f"https://{settings.url}{settings.health_check_path}",
        resolve=f"{settings.url}:443:127.0.0.1",
        release_id=release_id,
    )

    # clean up
    prune_releases(
        name=f"Keep the newest {settings.keep_releases} releases",
        releases_dir=settings.releases_dir,
        versions_dir=settings.versions_dir,
        venvs_dir=settings.venvs_dir,
        link=settings.current_link,
        keep=settings.keep_releases,
    )
