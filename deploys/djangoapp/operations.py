"""Operations and facts pyinfra does not ship, each checking the host's state when it runs."""

from __future__ import annotations

import json
import shlex

from pyinfra import host
from pyinfra.api import FactBase, operation
from pyinfra.facts.files import Directory, File, Link

q = shlex.quote


class ReleaseInfo(FactBase):
    """The metadata (.release.json) of the release a link points at, or None without one."""

    def command(self, link: str) -> str:
        return f"cat {q(link)}/.release.json 2>/dev/null || true"

    def process(self, output):
        text = "\n".join(output).strip()
        return json.loads(text) if text else None


class ReleaseIds(FactBase):
    """The release folders present on the host, oldest first (ids sort by time)."""

    default = list

    def command(self, releases_dir: str) -> str:
        return f"ls -1 {q(releases_dir)} 2>/dev/null || true"

    def process(self, output):
        return sorted(line for line in output if line and not line.startswith("."))


@operation()
def self_signed_certificate(certificate: str, key: str, common_name: str):
    """Generate a self-signed certificate and its key, unless both exist already."""
    if host.get_fact(File, path=certificate) and host.get_fact(File, path=key):
        host.noop(f"{certificate} exists")
        return
    yield (
        "openssl req -x509 -newkey rsa:2048 -sha256 -days 825 -nodes -batch "
        f"-subj {q('/CN=' + common_name)} -addext {q('subjectAltName=DNS:' + common_name)} "
        f"-keyout {q(key)} -out {q(certificate)} 2>/dev/null"
    )


@operation()
def switch_link(link: str, target: str):
    """Point `link` at `target` atomically: a new link under a temporary name renamed over the old
    one, so a request never finds `link` missing (files.link removes it first)."""
    current = host.get_fact(Link, path=link)
    if current and current.get("link_target") == target:
        host.noop(f"{link} already points at {target}")
        return
    yield f"ln -sfn {q(target)} {q(link)}.next && mv -Tf {q(link)}.next {q(link)}"


@operation()
def unpack_release(archive: str, release_dir: str, metadata: dict):
    """Unpack a source archive into a new release folder, complete or not at all: it is built under
    a temporary name and renamed into place, with REVISION and .release.json written."""
    existing = host.get_fact(Directory, path=release_dir)
    if existing:
        host.noop(f"{release_dir} exists")
        return
    building = f"{release_dir}.partial"
    yield f"rm -rf {q(building)} && mkdir -p {q(building)}"
    yield f"tar -xzf {q(archive)} -C {q(building)} --no-same-owner"
    yield f"printf '%s\\n' {q(metadata['id'])} > {q(building)}/REVISION"
    yield f"printf '%s\\n' {q(json.dumps(metadata, sort_keys=True))} > {q(building)}/.release.json"
    yield f"chmod -R u=rwX,go=rX {q(building)} && mv -T {q(building)} {q(release_dir)}"


@operation()
def build_virtualenv(path: str, python: str, uv: str, dependencies: list[str], requirements: str | None,
                     env: dict[str, str] | None = None):
    """Build a virtualenv for one dependency set, once. A folder without the `.complete` marker is
    a leftover of a build that died: it is thrown away and built again."""
    if host.get_fact(File, path=f"{path}/.complete"):
        host.noop(f"virtualenv {path} is ready")
        return
    prefix = " ".join(f"{name}={q(value)}" for name, value in (env or {}).items())
    prefix = f"env {prefix} " if prefix else ""
    yield f"rm -rf {q(path)} && {uv} venv --quiet --python {q(python)} {q(path)}"
    packages = " ".join(q(dependency) for dependency in dependencies)
    if requirements:
        packages += f" -r {q(requirements)}"
    if packages.strip():
        yield f"{prefix}{uv} pip install --quiet --compile-bytecode --python {q(path)}/bin/python {packages}"
    yield f"touch {q(path)}/.complete"


@operation(is_idempotent=False)
def activate_release(link: str, release_dir: str, previous_dir: str | None, service: str,
                     health_url: str, resolve: str, release_id: str, timeout: int = 30):
    """Switch `link` to the new release, reload uWSGI gracefully and wait until the webserver
    answers the health check from the new release. If it never does, switch back to the previous
    release (when there is one), reload again and fail."""
    switch = "ln -sfn {target} {link}.next && mv -Tf {link}.next {link}"
    back = (
        f"{switch.format(target=q(previous_dir), link=q(link))} && systemctl reload-or-restart {service}; "
        if previous_dir else f"systemctl stop {service}; rm -f {q(link)}; "
    )
    answer = (
        f"curl -sk -o /dev/null --max-time 5 --resolve {q(resolve)} "
        f"-w '%{{http_code}} %header{{x-release-id}}' {q(health_url)}"
    )
    check = f'[ "$({answer})" = {q("200 " + release_id)} ]'
    yield (
        f"{switch.format(target=q(release_dir), link=q(link))} && systemctl reload-or-restart {service} && "
        f"for attempt in $(seq {timeout * 2}); do if {check}; then exit 0; fi; sleep 0.5; done; "
        f"echo 'health check failed: {health_url} did not answer 2xx from release {release_id}' >&2; "
        f"{back}exit 1"
    )


@operation()
def prune_releases(releases_dir: str, versions_dir: str, venvs_dir: str, link: str, keep: int):
    """Remove releases beyond the newest `keep` (never the live one), their uploaded archives, and
    the virtualenvs no remaining release uses."""
    live = host.get_fact(ReleaseInfo, link=link)
    release_ids = [rid for rid in host.get_fact(ReleaseIds, releases_dir=releases_dir)
                   if not rid.endswith((".partial", ".next"))]
    kept = set(release_ids[-keep:]) | ({live["id"]} if live else set())
    removed = [rid for rid in release_ids if rid not in kept]
    if not removed:
        host.noop(f"at most {keep} releases kept")
        return
    for release_id in removed:
        yield f"rm -rf {q(releases_dir + '/' + release_id)} {q(versions_dir + '/' + release_id)}.tar.gz"
    # A virtualenv is shared by every release with the same dependency set: keep those in use.
    yield (
        f"for venv in {q(venvs_dir)}/*; do [ -d \"$venv\" ] || continue; used=no; "
        f"for release in {q(releases_dir)}/*/; do "
        f"[ \"$(readlink \"$release.venv\")\" = \"$venv\" ] && used=yes; done; "
        f"[ $used = yes ] || rm -rf \"$venv\"; done"
    )


APACHE_ITEMS = {
    # kind: (enabled folder, file suffix, enable tool, disable tool)
    "module": ("mods-enabled", "load", "a2enmod", "a2dismod"),
    "site": ("sites-enabled", "conf", "a2ensite", "a2dissite"),
    "conf": ("conf-enabled", "conf", "a2enconf", "a2disconf"),
}


@operation()
def apache_enabled(kind: str, names: list[str], enabled: bool = True, tool: str | None = None):
    """Enable (or disable) Apache modules, sites or confs with Debian's a2en*/a2dis* tools, only
    those not in that state already. `tool` overrides the enable tool (the seed role's
    apache2_check_binary_name)."""
    folder, suffix, enable, disable = APACHE_ITEMS[kind]
    to_change = [name for name in names
                 if bool(host.get_fact(Link, path=f"/etc/apache2/{folder}/{name}.{suffix}")) != enabled]
    if not to_change:
        host.noop(f"apache {kind}s {', '.join(names)} already {'enabled' if enabled else 'disabled'}")
        return
    yield f"{(tool or enable) if enabled else disable} -q {' '.join(q(name) for name in to_change)}"
