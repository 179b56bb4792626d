"""A release's last step: recorded as live in the history, the releases beyond keep_releases
pruned (with their archives, virtualenvs and snapshots nothing else uses), the deploy lock released."""

from __future__ import annotations


from pyinfra import host
from pyinfra.api import operation

from ..core.host_state import ReleaseInfo, Releases
from ..core.lock import release_lock_command
from ..core.shell import q


@operation(is_idempotent=False)
def finish_release(history: str, history_file: str, release_id: str, releases_dir: str, versions_dir: str,
                   venvs_dir: str, snapshots_dir: str, link: str, keep: int, lock_dir: str, token: str,
                   python_dir: str):
    """Record the release as live, keep the newest `keep` good releases (releases_to_prune),
    release the deploy lock: one command, as nothing here can wait for anything else."""
    live = host.get_fact(ReleaseInfo, link=link)
    releases = host.get_fact(Releases, releases_dir=releases_dir, history=history_file)
    pruned = releases_to_prune(releases, live and live["id"], keep, releasing=release_id)
    yield finish_command(history, release_id, releases_dir, versions_dir, venvs_dir, snapshots_dir, pruned,
                         release_lock_command(lock_dir, token), python_dir)


def finish_command(history: str, release_id: str, releases_dir: str, versions_dir: str, venvs_dir: str,
                   snapshots_dir: str, pruned: list[str], release_lock: str, python_dir: str) -> str:
    """Shell: the release is good and live in the history, the pruned releases go; then the lock
    is released whatever happened before (the command fails if a step did)."""
    # A release re-made under an id that failed or was rolled back before is good now.
    release_dir = f"{releases_dir}/{release_id}"
    steps = [f"rm -f {q(release_dir)}/.failed {q(release_dir)}/.rolled-back",
             f"{history} record {q(release_id)} live",
             *prune_commands(releases_dir, versions_dir, venvs_dir, snapshots_dir, pruned, python_dir)]
    return (" && ".join(f"{{ {step}; }}" for step in steps)
            + f"; finished=$?; {release_lock}; [ $finished -eq 0 ]")


def releases_to_prune(releases: dict[str, str], live_id: str | None, keep: int,
                      releasing: str | None = None) -> list[str]:
    """Of `releases` (id -> state, in the order they went live), those to remove: all but the
    newest `keep` good ones, the live one and the one a plain rollback returns to (the newest good
    release before the live one that was not rolled back). The one being released (`releasing`)
    counts as the newest good one, whatever the fact said of it. Failed releases do
    not count, and only the newest failed one is kept, to look at; builds a killed run left behind
    ("partial", "unreleased") go."""
    if releasing is not None:
        # At the release's end its "live" line is not in the history yet (the fact calls it
        # unreleased, or puts it where it went live before): it is the newest good one now.
        releases = {**{key: state for key, state in releases.items() if key != releasing}, releasing: "ok"}
    good = [release_id for release_id, state in releases.items() if state in ("ok", "rolled-back")]
    failed = [release_id for release_id, state in releases.items() if state == "failed"]
    kept = set(good[-keep:]) | set(failed[-1:]) | {releasing}
    if live_id in releases:
        before_live = list(releases)[:list(releases).index(live_id)]
        kept |= {live_id, *[release_id for release_id in before_live if releases[release_id] == "ok"][-1:]}
    return [release_id for release_id in releases if release_id not in kept]


def prune_commands(releases_dir: str, versions_dir: str, venvs_dir: str, snapshots_dir: str,
                   pruned: list[str], python_dir: str) -> list[str]:
    """Shell: remove the `pruned` releases, with their archives and snapshots, then the virtualenvs
    no remaining release uses, then the interpreters uv installed (`python_dir`) once no virtualenv
    runs on them."""
    if not pruned:
        return []
    # Snapshots by their exact names: release 1's are not release 1.1's.
    commands = [f"rm -rf {q(releases_dir + '/' + release_id)} {q(versions_dir + '/' + release_id)}.tar.gz "
                f"{q(snapshots_dir + '/' + release_id)}.sqlite3 {q(snapshots_dir + '/' + release_id)}.dump"
                for release_id in pruned]
    # A virtualenv is shared by every release with the same dependency set: keep those in use.
    return commands + [
        f"for venv in {q(venvs_dir)}/*; do [ -d \"$venv\" ] || continue; used=no; "
        f"for release in {q(releases_dir)}/*/; do "
        f"[ \"$(readlink \"$release.venv\")\" = \"$venv\" ] && used=yes; done; "
        f"[ $used = yes ] || rm -rf \"$venv\"; done",
        # A virtualenv names the interpreter it runs on in its pyvenv.cfg (home = ...).
        f"if [ -d {q(python_dir)} ] && ! grep -qsF {q(python_dir + '/')} {q(venvs_dir)}/*/pyvenv.cfg; "
        f"then rm -rf {q(python_dir)}; fi",
    ]
